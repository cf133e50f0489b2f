#!/usr/bin/env bash
# The allocation-failure sweep (make oom-sweep, docs/reliability-load.md):
# spec/oom/script.lua run the way fdn-lua runs it, once per allocation it
# makes, with that allocation failing; every run must end in success or a
# clean error, with nothing leaked. Runs the sweep on the normal build, then
# under ASan+UBSan (LeakSanitizer on; the JIT off there, see the doc).
# REPEAT=n sweeps n times (allocation counts vary a little with timing, so
# repeats reach slightly different allocations); SCRIPT=path sweeps another
# script.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
script=${SCRIPT:-spec/oom/script.lua}
repeat=${REPEAT:-1}
dir=$(scripts/build.sh)
asan_dir=$(FDN_SANITIZE=1 scripts/build.sh)
status=0
for i in $(seq 1 "$repeat"); do
  echo "== oom-sweep ($dir, JIT on), run $i of $repeat"
  "$dir/fdn-oom-sweep" "$script" || status=1
  echo "== oom-sweep under ASan+UBSan ($asan_dir, JIT off), run $i of $repeat"
  FDN_OOM_JIT=off ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
    "$asan_dir/fdn-oom-sweep" "$script" || status=1
done
[ "$status" -eq 0 ] && echo "oom-sweep: ok" || echo "oom-sweep: FAILED"
exit $status
