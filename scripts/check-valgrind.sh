#!/usr/bin/env bash
# The suite under valgrind memcheck (docs/reliability-hygiene.md):
# --error-exitcode=1 --leak-check=full, counting errors and "definitely
# lost" bytes in every process it runs: the C test runners, busted's luajit
# (one per spec file, $(nproc) at a time) and every program those start
# (fdn-lua, host programs; --trace-children, compilers and build tools
# skipped). memcheck costs about 9 us per task, so:
#
#   scripts/check-valgrind.sh          the CI subset: C tests, the embedding
#                                      tests and VALGRIND_SPECS (a
#                                      representative set of spec files)
#   FULL=1 scripts/check-valgrind.sh   every spec file (long form)
#
# Specs tagged #signals (fdn-lua signalled 0.2-0.5 s after it starts) are left
# out: under memcheck the program is not up by then, so they measure
# valgrind's start-up, not fdn; so are specs tagged #walltime (an example
# that must do some work in a fixed wall-clock time). make check and
# check-clang run them. The logs of the deliberately leaky C self-tests
# (run by hygiene_spec, which expects them to fail) are not counted, and
# valgrind itself (the bench spec runs callgrind) is not traced.
#
# Prints "check-valgrind: N processes, N errors, N bytes definitely lost;
# N specs passed, N failed" and exits non-zero unless all are 0.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/suite-env.sh

# The representative subset: the scheduler and tasks, cancellation, every
# waiting primitive, scopes, retry and the batcher (C and Lua halves),
# the cache, logging, the embedding host, fdn-lua as a subprocess, and
# sockets (memcheck's slowness is what once let a name lookup outlive its
# engine's loop).
subset="task cancel timeout gather with semaphore queue event bulkhead
  task_manager task_pool retry batcher cache context log run fdn_lua tcp"
subset=${VALGRIND_SPECS:-$subset}

scripts/setup.sh valgrind || exit 1
if ! dir=$(scripts/build.sh); then
  echo "check-valgrind: build failed"
  exit 1
fi
suite_env "$dir"
export OUT VG
OUT=$(mktemp -d)
trap '[ -n "${KEEP_LOG:-}" ] && echo "logs: $OUT" || rm -rf "$OUT"' EXIT
VG="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
  --trace-children=yes
  --trace-children-skip=*/cmake,*/ctest,*/make,*/gmake,*/cc,*/gcc,*/cc1,*/as,*/ld,*/collect2,*/x86_64-linux-gnu-*,*/pkg-config,*/valgrind,*/valgrind.bin
  --log-file=$OUT/vg.%p.log"
start=$(date +%s)

if [ "${FULL:-0}" = 1 ]; then
  files=$(suite_files)
else
  files=$(for s in $subset; do echo "spec/${s}_spec.lua"; done)
fi

# C tests first (each runner runs all its tests, hygiene-checked).
$VG "$dir/fdn-core-tests" >"$OUT/core.out" 2>&1
$VG "$dir/fdn-embed-tests" >"$OUT/embed.out" 2>&1
echo "C tests: core $(tail -1 "$OUT/core.out"); embed $(tail -1 "$OUT/embed.out")"

run_file() {
  $VG luajit "$(command -v busted)" --ignore-lua -o TAP --exclude-tags=signals,walltime "$1" \
    >"$OUT/$(basename "$1").tap" 2>&1
}
export -f run_file
printf '%s\n' $files | xargs -P "$(nproc)" -I{} bash -c 'run_file "$@"' _ {}

passed=0 failed=0
for f in $files; do
  tap="$OUT/$(basename "$f").tap"
  read -r ok notok _ < <(tap_count "$tap")
  passed=$((passed + ok))
  failed=$((failed + notok))
  [ "$notok" -gt 0 ] && { echo "== $f"; grep -vE '^ok ' "$tap"; }
done
for runner in core embed; do
  grep -q ' 0 failed$' "$OUT/$runner.out" || { failed=$((failed + 1)); cat "$OUT/$runner.out"; }
done

# Every process's own log: errors and definitely lost bytes.
procs=0 errors=0 lost=0
for log in "$OUT"/vg.*.log; do
  # The deliberately leaky C self-tests: hygiene_spec expects them to fail.
  grep -q '^==[0-9]*== Command: .*fdn-core-tests hygiene_selftest_' "$log" && continue
  procs=$((procs + 1))
  e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d ,)
  l=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
  errors=$((errors + ${e:-0}))
  lost=$((lost + ${l:-0}))
  if [ "${e:-0}" -gt 0 ] || [ "${l:-0}" -gt 0 ]; then
    echo "== $(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1)"
    cat "$log"
  fi
done
echo "check-valgrind ($([ "${FULL:-0}" = 1 ] && echo full || echo subset):" \
  "$(echo $files | wc -w) spec files + C tests): $procs processes, $errors errors," \
  "$lost bytes definitely lost; $passed specs passed, $failed failed;" \
  "$(($(date +%s) - start)) s"
[ "$errors" -eq 0 ] && [ "$lost" -eq 0 ] && [ "$failed" -eq 0 ]
