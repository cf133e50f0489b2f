#!/usr/bin/env bash
# libFuzzer targets (make fuzz, docs/reliability-load.md), built with clang
# and ASan+UBSan into build-fuzz/:
#   fuzz_engine   the C core: random operation sequences on a virtual clock
#   fuzz_ops      the same through the Lua bindings (tasks, semaphores,
#                 queues, batchers, retry, cancellation, errors, GC)
#   fuzz_options  option tables through every constructor
#   fuzz_logfmt   the JSON log writer
# Each target first replays its regression inputs (spec/fuzz/regress/<t>/)
# and its committed corpus (spec/fuzz/corpus/<t>/), then fuzzes for
# FUZZ_TIME seconds (default 60) from that corpus; new inputs go to
# build-fuzz/corpus/<t>/, crashes to build-fuzz/crashes/. Exits non-zero on
# any crash. FUZZ_TARGETS=engine,logfmt picks targets; FUZZ_JOBS runs that
# many fuzzing processes per target (the long form: FUZZ_TIME=600);
# FUZZ_BUILD_DIR builds elsewhere than build-fuzz/ (a long run beside short ones).
#   scripts/fuzz.sh merge   minimises the committed corpus with what the
#                           runs found (-merge=1, edge coverage only),
#                           keeping it small.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh clang libclang-rt-14-dev
dir=${FUZZ_BUILD_DIR:-build-fuzz}
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
flags="$flags -fno-sanitize-recover=all"
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFDN_BUILD_FUZZ=ON \
  -DFDN_BUILD_TESTS=OFF -DFDN_BUILD_BENCH=OFF -DCMAKE_C_FLAGS="$flags" >/dev/null
targets=${FUZZ_TARGETS:-engine,ops,options,logfmt}
IFS=, read -r -a list <<<"$targets"
build_targets=()
for t in "${list[@]}"; do build_targets+=("fuzz_$t"); done
mkdir -p "$dir"
if ! cmake --build "$dir" -j"$(nproc)" --target "${build_targets[@]}" >"$dir/build.log" 2>&1; then
  tail -40 "$dir/build.log"
  echo "fuzz: the build failed (all of it in $dir/build.log)"
  exit 1
fi

# The Lua drivers load cjson.so and read the fdn library from the binary.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Every engine seeded alike, so that an input replays exactly.
export FDN_SEED=${FDN_SEED:-1}

if [ "${1:-}" = merge ]; then
  for t in "${list[@]}"; do
    bin="$dir/spec/fuzz/fuzz_$t"
    mkdir -p "spec/fuzz/corpus/$t" "$dir/corpus/$t"
    fresh=$(mktemp -d)
    # Edges only (no hit-count buckets): the same edge coverage from a
    # tenth of the inputs, so the committed corpus stays a few kB.
    "$bin" -merge=1 -use_counters=0 -detect_leaks=0 "$fresh" "spec/fuzz/corpus/$t" \
      "$dir/corpus/$t" 2>&1 |
      grep -E "MERGE-OUTER: [0-9]+ new files" || true
    rm -rf "spec/fuzz/corpus/$t"
    mv "$fresh" "spec/fuzz/corpus/$t"
    echo "fuzz merge: $t: $(ls "spec/fuzz/corpus/$t" | wc -l) inputs," \
      "$(du -sk "spec/fuzz/corpus/$t" | cut -f1) kB"
  done
  exit 0
fi

time_per=${FUZZ_TIME:-60}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$dir/crashes"
status=0
for t in "${list[@]}"; do
  bin="$dir/spec/fuzz/fuzz_$t"
  mkdir -p "spec/fuzz/corpus/$t" "$dir/corpus/$t"
  regress=()
  [ -d "spec/fuzz/regress/$t" ] && regress=(spec/fuzz/regress/"$t"/*)
  # LeakSanitizer cannot follow LuaJIT's tagged references: per-input leak
  # checks only for the C target (the Lua ones close their state at exit).
  leaks=0
  [ "$t" = engine ] && leaks=1
  if [ ${#regress[@]} -gt 0 ] && [ -e "${regress[0]}" ]; then
    if ! "$bin" -detect_leaks=$leaks "${regress[@]}" >"$dir/$t.regress.log" 2>&1; then
      echo "fuzz $t: a regression input fails again:"
      tail -30 "$dir/$t.regress.log"
      status=1
    else
      echo "fuzz $t: ${#regress[@]} regression inputs pass"
    fi
  fi
  log="$dir/$t.log"
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
  set +e
  # libFuzzer stops an input that runs past -timeout, but its alarm handler
  # can deadlock when the alarm lands inside the unwinder (a Lua error
  # being raised): `timeout` bounds the whole run all the same.
  (cd "$dir" && timeout -k 10 $((time_per + 120)) \
    "$root/$bin" "$root/$dir/corpus/$t" "$root/spec/fuzz/corpus/$t" \
    -max_total_time="$time_per" -detect_leaks=$leaks "${parallel[@]}" -timeout=20 \
    -rss_limit_mb=2048 -artifact_prefix="$root/$dir/crashes/$t-" \
    -print_final_stats=1) >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "fuzz $t: HUNG: still running $((time_per + 120)) s after a ${time_per} s run was asked for (see $log)"
    tail -5 "$log"
    status=1
    continue
  fi
  if [ "$jobs" -gt 1 ]; then
    cat "$dir"/fuzz-*.log >>"$log" 2>/dev/null || true
    rm -f "$dir"/fuzz-*.log
  fi
  runs=$(grep -Eo "stat::number_of_executed_units: *[0-9]+" "$log" |
    awk '{s += $2} END {print s + 0}')
  cov=$(grep -Eo "cov: [0-9]+" "$log" | tail -1 | awk '{print $2}')
  if [ $rc -ne 0 ] || grep -qE "ERROR: |invariant violated|deadly signal" "$log"; then
    echo "fuzz $t: CRASH after $runs runs (see $log; input in $dir/crashes/):"
    grep -E "invariant violated|ERROR: |SUMMARY" "$log" | head -5
    status=1
  else
    echo "fuzz $t: $runs runs in ${time_per}s, 0 crashes, coverage ${cov:-?} edges," \
      "corpus $(ls "spec/fuzz/corpus/$t" | wc -l) + $(ls "$dir/corpus/$t" | wc -l) new"
  fi
done
exit $status
