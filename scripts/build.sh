#!/usr/bin/env bash
# Configures and builds fdn. FDN_SANITIZE=1 builds with ASan+UBSan into
# build-asan; FDN_BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

args=(-DFDN_WERROR=ON)
if [ "${FDN_SANITIZE:-0}" = 1 ]; then
  dir=${FDN_BUILD_DIR:-build-asan}
  args+=(-DFDN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  dir=${FDN_BUILD_DIR:-build}
fi
cmake -S . -B "$dir" "${args[@]}" ${FDN_CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
echo "$dir"
