#!/usr/bin/env bash
# Static checks (docs/reliability-hygiene.md): luacheck with 0 warnings,
# cppcheck with 0 findings at warning, performance and portability level,
# and the C code built with -Werror by both gcc (build/) and clang
# (build-clang/). Prints one line per check; exits non-zero on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh clang || exit 1
status=0

# luacheck: the whole Lua tree, warnings count.
summary=$(luacheck --no-color lua spec examples bench | tail -1)
echo "luacheck: ${summary#Total: }"
case "$summary" in
*" 0 warnings / 0 errors"*) ;;
*)
  luacheck --no-color -q lua spec examples bench
  status=1
  ;;
esac

# -Werror with gcc, then clang (each build fails on any warning).
if dir=$(scripts/build.sh 2>&1); then
  echo "-Werror: gcc build clean ($dir)"
else
  echo "-Werror: gcc build FAILED"
  echo "$dir"
  status=1
  dir=build
fi
if FDN_BUILD_DIR=build-clang FDN_CMAKE_ARGS="-DCMAKE_C_COMPILER=clang" \
  scripts/build.sh >/dev/null 2>"${TMPDIR:-/tmp}/fdn-clang-build.$$"; then
  echo "-Werror: clang build clean (build-clang)"
else
  echo "-Werror: clang build FAILED"
  cat "${TMPDIR:-/tmp}/fdn-clang-build.$$"
  status=1
fi
rm -f "${TMPDIR:-/tmp}/fdn-clang-build.$$"

# cppcheck: fdn's own C (core, bindings, tests, examples, bench programs),
# with the generated headers of the build; one configuration (the one the
# build uses), system headers left out.
sources=(core/src bindings spec/core spec/embed bench/churn bench/floor examples)
files=$(find "${sources[@]}" -name '*.c' | wc -l)
report=$(cppcheck -q --enable=warning,performance,portability --std=c99 \
  --max-configs=1 -j"$(nproc)" --inline-suppr \
  --suppress=missingIncludeSystem -I core/include -I bindings \
  -I bindings/include -I "$dir/gen" "${sources[@]}" 2>&1)
findings=$(printf '%s\n' "$report" | grep -cE '^[^ ].*: (error|warning|performance|portability):')
echo "cppcheck: $findings findings (error, warning, performance, portability) in $files C files"
if [ "$findings" -ne 0 ]; then
  printf '%s\n' "$report"
  status=1
fi
exit $status
