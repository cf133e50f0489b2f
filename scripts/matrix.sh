#!/usr/bin/env bash
# Runs the reliability matrices (docs/reliability-matrices.md): each prints
# its figure line and exits non-zero when it falls short.
#   scripts/matrix.sh sweep|error_matrix|cancel_matrix|yield_matrix|all
# FDN_SANITIZE=1 runs them against the ASan+UBSan build (build-asan/).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh || exit 1
if ! dir=$(scripts/build.sh); then
  echo "build failed"
  exit 1
fi

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
export LUA_CPATH="$root/$dir/lua/?.so;;"
export FDN_BUILD_DIR="$root/$dir" FDN_SOURCE_DIR="$root"
preload=""
if [ "${FDN_SANITIZE:-0}" = 1 ]; then
  preload="$(gcc -print-file-name=libasan.so)"
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
fi

names=("$@")
if [ ${#names[@]} -eq 0 ] || [ "${names[0]}" = all ]; then
  names=(sweep error_matrix cancel_matrix yield_matrix)
fi
status=0
for name in "${names[@]}"; do
  LD_PRELOAD="$preload" luajit "spec/reliability/$name.lua" || status=1
done
exit $status
