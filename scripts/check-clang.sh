#!/usr/bin/env bash
# The suite under clang's AddressSanitizer + UndefinedBehaviorSanitizer
# (docs/reliability-hygiene.md): built with clang into build-clang-asan with
# -fsanitize=address,undefined -fno-sanitize-recover=all, leak detection on.
#
# - C tests (ctest): fully fdn's code; LeakSanitizer checks every test.
# - busted specs: stock luajit with the ASan runtime preloaded. LuaJIT's own
#   memory comes from its built-in mmap allocator, which the sanitizer does
#   not see, so what LeakSanitizer reports at exit (busted ends with
#   lua_close, so every finalizer ran) is what fdn's C code and libuv
#   allocated through malloc: fdn's. Programs the specs start inherit the
#   runtime: fdn-lua and host programs report their own leaks; the system C
#   compiler (install_spec builds a host with it) runs without it.
# - fdn-churn (embedding churn, CHURN_CYCLES cycles, default 300).
#
# Any sanitizer report fails the run. Prints
# "check-clang: N passed, N failed; N sanitizer reports".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/suite-env.sh

scripts/setup.sh clang libclang-rt-14-dev || exit 1
runtime=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
if [ ! -f "$runtime" ]; then
  echo "check-clang: no ASan runtime at $runtime"
  exit 1
fi
# One shared runtime for the C module, the programs and the preload.
link="-shared-libasan"
if ! dir=$(FDN_SANITIZE=1 FDN_BUILD_DIR=build-clang-asan FDN_CMAKE_ARGS="\
-DCMAKE_C_COMPILER=clang -DCMAKE_EXE_LINKER_FLAGS=$link \
-DCMAKE_SHARED_LINKER_FLAGS=$link -DCMAKE_MODULE_LINKER_FLAGS=$link" \
  scripts/build.sh); then
  echo "check-clang: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
export LD_LIBRARY_PATH="$(dirname "$runtime")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export FDN_SANITIZE=1 # specs that run valgrind skip themselves
log=$(mktemp -d)
trap '[ -n "${KEEP_LOG:-}" ] && echo "logs: $log" || rm -rf "$log"' EXIT
passed=0 failed=0

ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure \
  --output-junit "$log/ctest.xml" >"$log/ctest.out" 2>&1
c_total=$(grep -o '<testcase ' "$log/ctest.xml" | wc -l)
c_passed=$(grep -o '<testcase [^>]*status="run"' "$log/ctest.xml" | wc -l)
[ "$c_total" -eq 0 ] && c_total=1
[ "$c_passed" -ne "$c_total" ] && cat "$log/ctest.out"
echo "C tests: $c_passed passed, $((c_total - c_passed)) failed"
passed=$((passed + c_passed))
failed=$((failed + c_total - c_passed))

# The system compiler is not fdn's: a shim runs it without the runtime.
mkdir -p "$log/bin"
for tool in cc gcc; do
  real=$(command -v $tool) || continue
  printf '#!/bin/sh\nexec env -u LD_PRELOAD %s "$@"\n' "$real" >"$log/bin/$tool"
  chmod +x "$log/bin/$tool"
done
suite_env "$dir"
PATH="$log/bin:$PATH" LD_PRELOAD="$runtime" busted --lua=luajit -o TAP spec/ \
  >"$log/busted.out" 2>&1
b_rc=$?
read -r b_ok b_notok _ < <(tap_count "$log/busted.out")
[ "$b_notok" -gt 0 ] && grep -vE '^ok ' "$log/busted.out"
echo "busted specs: $b_ok passed, $b_notok failed (exit $b_rc)"
passed=$((passed + b_ok))
failed=$((failed + b_notok))

"$dir/bench/fdn-churn" "${CHURN_CYCLES:-300}" 64 >"$log/churn.out" 2>&1
churn_rc=$?
tail -1 "$log/churn.out" | cut -c1-160
if [ $churn_rc -ne 0 ]; then
  cat "$log/churn.out"
  failed=$((failed + 1))
fi

reports=$(cat "$log/ctest.out" "$log/busted.out" "$log/churn.out" |
  grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:')
if [ "$reports" -gt 0 ] || [ $b_rc -ne 0 ]; then
  [ "$b_notok" -eq 0 ] && grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log/busted.out"
  [ "$failed" -eq 0 ] && failed=1
fi
echo "check-clang (clang ASan+UBSan, -fno-sanitize-recover=all, leaks detected):" \
  "$passed passed, $failed failed; $reports sanitizer reports"
[ "$failed" -eq 0 ] && [ "$reports" -eq 0 ]
