#!/usr/bin/env bash
# Schedule shuffle (docs/reliability-hygiene.md): the busted suite and the
# embedding tests under FDN_SCHED_SEED, which makes every engine run each
# generation of same-tick ready tasks in a seeded random order instead of
# FIFO (a yielding task still goes after the tasks ready when it yielded,
# as fdn.sleep(0) promises). Specs that assert FIFO order, fdn's contract,
# are tagged #fifo: they are skipped here, counted and listed.
#
#   COUNT=20 (default) seeds from BASE (default: random, printed), or
#   SEEDS="17 42" to replay given seeds. $(nproc) seeds run at a time.
#
# Prints one line per seed and "shuffle: N of N seeds green"; a failing
# seed is printed with the command that replays it. Exits non-zero when a
# seed fails.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/suite-env.sh

count=${COUNT:-20}
base=${BASE:-$(((RANDOM << 15 | RANDOM) % 1000000 + 1))}
seeds=${SEEDS:-$(seq "$base" $((base + count - 1)))}
scripts/setup.sh || exit 1
if ! dir=$(scripts/build.sh); then
  echo "shuffle: build failed"
  exit 1
fi
suite_env "$dir"
export OUT DIR=$dir
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

fifo=$(busted --lua=luajit --list --tags=fifo spec/ | grep '^spec/.*:[0-9]*: ')
nfifo=$(printf '%s\n' "$fifo" | grep -c .)
echo "shuffle: $nfifo specs rely on FIFO order (tagged #fifo) and are skipped:"
printf '%s\n' "$fifo" | sed 's/^/  /'

run_seed() {
  FDN_SCHED_SEED=$1 timeout -k 5 "${SEED_TIMEOUT:-900}" busted --lua=luajit -o TAP --exclude-tags=fifo spec/ \
    >"$OUT/$1.tap" 2>&1
  FDN_SCHED_SEED=$1 "$DIR/fdn-embed-tests" >"$OUT/$1.embed" 2>&1
  echo $? >"$OUT/$1.embed_rc"
}
export -f run_seed
start=$(date +%s)
printf '%s\n' $seeds | xargs -P "$(nproc)" -I{} bash -c 'run_seed "$@"' _ {}

green=0 total=0 failing=""
for seed in $seeds; do
  total=$((total + 1))
  read -r ok notok _ < <(tap_count "$OUT/$seed.tap")
  embed_rc=$(cat "$OUT/$seed.embed_rc")
  if [ "$notok" -eq 0 ] && [ "$embed_rc" -eq 0 ]; then
    green=$((green + 1))
    echo "seed $seed: $ok specs passed; embed tests: $(tail -1 "$OUT/$seed.embed")"
  else
    failing="$failing $seed"
    echo "seed $seed: FAILED: $ok passed, $notok failed; embed tests: $(tail -1 "$OUT/$seed.embed")"
    grep -vE '^ok ' "$OUT/$seed.tap" | grep -v '^# hygiene:'
    [ "$embed_rc" -ne 0 ] && cat "$OUT/$seed.embed"
    echo "replay: SEEDS=$seed make shuffle   (or: FDN_SCHED_SEED=$seed busted --lua=luajit --exclude-tags=fifo spec/)"
  fi
done
echo "shuffle: $green of $total seeds green (seeds: $(echo $seeds | tr '\n' ' '));" \
  "$nfifo #fifo specs skipped; $(($(date +%s) - start)) s"
[ -z "$failing" ] || echo "shuffle: failing seeds:$failing"
[ "$green" -eq "$total" ]
