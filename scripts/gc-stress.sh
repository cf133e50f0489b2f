#!/usr/bin/env bash
# GC stress (docs/reliability-hygiene.md): the whole busted suite and the
# embedding tests again, with a full Lua collection before every scheduling
# pass that runs tasks (FDN_GC_STRESS=1; FDN_GC_STRESS=task collects before
# every task resume instead, far slower). Every spec must pass as in a
# normal run, hygiene checks included.
#
# Each spec file runs in its own busted process, $(nproc) at a time: a full
# collection costs time in proportion to the live heap, and one busted
# process keeps every spec file it loaded alive, so in a single process
# each collection would grow slower file after file.
#
# Prints "gc-stress: N of N specs passed, N failed; N full collections" and
# exits non-zero on any failure or missing spec.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/suite-env.sh

export GC_MODE=${FDN_GC_STRESS:-1}
scripts/setup.sh || exit 1
if ! dir=$(scripts/build.sh); then
  echo "gc-stress: build failed"
  exit 1
fi
suite_env "$dir"
export OUT
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
start=$(date +%s)

# A spec file that hangs is stopped after FILE_TIMEOUT seconds and run once
# more; the hang is counted and named in the figure line, never hidden.
run_file() {
  local tap
  tap="$OUT/$(basename "$1").tap"
  FDN_GC_STRESS=$GC_MODE timeout -k 5 "${FILE_TIMEOUT:-240}" \
    busted --lua=luajit -o TAP "$1" >"$tap" 2>&1
  if [ $? -eq 124 ]; then
    echo "$1" >>"$OUT/hung"
    FDN_GC_STRESS=$GC_MODE timeout -k 5 "${FILE_TIMEOUT:-240}" \
      busted --lua=luajit -o TAP "$1" >"$tap" 2>&1
  fi
}
export -f run_file
suite_files | xargs -P "$(nproc)" -I{} bash -c 'run_file "$@"' _ {}

expected=$(busted --lua=luajit --list spec/ | grep -c '^spec/.*:[0-9]*: ')
passed=0 failed=0 collections=0
for tap in "$OUT"/*.tap; do
  read -r ok notok _ < <(tap_count "$tap")
  passed=$((passed + ok))
  failed=$((failed + notok))
  n=$(sed -n 's/^# hygiene:.* collections=\([0-9]*\);.*/\1/p' "$tap")
  collections=$((collections + ${n:-0}))
  if [ "$notok" -gt 0 ]; then
    echo "== $(basename "$tap" .tap)"
    grep -vE '^ok ' "$tap"
  fi
done

# The embedding tests: engines made through fdn_lua_new get the hook too.
FDN_GC_STRESS=$GC_MODE "$dir/fdn-embed-tests" >"$OUT/embed.out" 2>&1
embed_rc=$?
embed=$(tail -1 "$OUT/embed.out")
[ $embed_rc -ne 0 ] && cat "$OUT/embed.out"

hung=none
[ -f "$OUT/hung" ] && hung="$(tr '\n' ' ' <"$OUT/hung")(rerun)"
echo "gc-stress (FDN_GC_STRESS=$GC_MODE): $passed of $expected specs passed," \
  "$failed failed; $collections full collections; embed tests: $embed;" \
  "files that hung: $hung; $(($(date +%s) - start)) s"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$expected" ] && [ $embed_rc -eq 0 ]
