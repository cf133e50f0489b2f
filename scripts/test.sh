#!/usr/bin/env bash
# Sets up, builds and runs every test: the C core tests (ctest) and the
# busted specs. Ends with one line "N passed, N failed" and exits non-zero
# on any failure. FDN_SANITIZE=1 runs the same suite under ASan+UBSan.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh || exit 1
if ! dir=$(scripts/build.sh); then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# C tests: one ctest entry per test, counted from ctest's JUnit report.
ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure \
  --output-junit "$log/ctest.xml" >"$log/ctest.out" 2>&1
c_total=$(grep -o '<testcase ' "$log/ctest.xml" | wc -l)
c_passed=$(grep -o '<testcase [^>]*status="run"' "$log/ctest.xml" | wc -l)
c_failed=$((c_total - c_passed))
if [ "$c_total" -eq 0 ]; then
  c_failed=1 # no report at all: ctest itself failed
fi
[ "$c_failed" -gt 0 ] && cat "$log/ctest.out"
passed=$((passed + c_passed))
failed=$((failed + c_failed))
echo "C core tests: $c_passed passed, $c_failed failed"

# busted specs, against the freshly built tree.
if compgen -G "spec/*_spec.lua" >/dev/null; then
  export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
  export LUA_CPATH="$root/$dir/lua/?.so;;"
  export FDN_BUILD_DIR="$root/$dir" FDN_SOURCE_DIR="$root"
  preload=""
  if [ "${FDN_SANITIZE:-0}" = 1 ]; then
    preload="$(gcc -print-file-name=libasan.so)"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  fi
  # A hung spec must fail the run, not hold CI until its time limit.
  LD_PRELOAD="$preload" timeout -k 10 "${FDN_SPEC_TIMEOUT:-1800}" \
    busted --lua=luajit -o TAP spec/ >"$log/busted.out" 2>&1
  b_passed=$(grep -c '^ok ' "$log/busted.out")
  b_failed=$(grep -c '^not ok ' "$log/busted.out")
  if ! grep -q '^1\.\.[0-9]' "$log/busted.out"; then
    # busted died before reporting a plan: count that as a failure.
    b_failed=$((b_failed + 1))
  fi
  [ "$b_failed" -gt 0 ] && grep -vE '^ok ' "$log/busted.out"
  echo "busted specs: $b_passed passed, $b_failed failed"
  passed=$((passed + b_passed))
  failed=$((failed + b_failed))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
