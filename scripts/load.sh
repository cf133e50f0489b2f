#!/usr/bin/env bash
# Reliability under load (docs/reliability-load.md), on a release build in
# build-release/ (the one `make bench` uses):
#   scripts/load.sh soak          1M tasks through fdn-lua, then the same
#                                 shape on bare LuaJIT + luv (SOAK_N, SOAK_LIMIT)
#   scripts/load.sh backpressure  a producer 10x faster than its consumers
#                                 against a bound of 10,000 (BACKPRESSURE_ITEMS)
#   scripts/load.sh shutdown      signals to a busy fdn-lua job (REPEAT runs)
# Each prints its figures and exits non-zero when one falls short.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

what=${1:?usage: scripts/load.sh soak|backpressure|shutdown}
scripts/setup.sh lua-luv
dir=build-release
FDN_BUILD_DIR=$dir FDN_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON" \
  scripts/build.sh >/dev/null
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
export LUA_CPATH="$root/$dir/lua/?.so;;"

case "$what" in
soak)
  n=${SOAK_N:-1000000}
  limit=${SOAK_LIMIT:-1000}
  echo "== soak: $n tasks, limit $limit (fdn-lua, release build)"
  fdn_line=$("$dir/fdn-lua" spec/load/soak.lua "$n" "$limit") || {
    echo "$fdn_line"
    exit 1
  }
  echo "$fdn_line"
  echo "== soak floor: the same shape on bare LuaJIT + luv (bench/luv/sched.lua)"
  floor_line=$(luajit spec/load/soak_luv.lua "$n" "$limit")
  echo "$floor_line"
  fdn_s=$(echo "$fdn_line" | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' | head -1)
  floor_s=$(echo "$floor_line" | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p')
  awk -v a="$fdn_s" -v b="$floor_s" -v n="$n" 'BEGIN {
    printf "soak: %d tasks in %.2f s with fdn, %.2f s on the bare LuaJIT+libuv floor " \
      "(fdn/floor time %.2f)\n", n, a, b, a / b }'
  ;;
backpressure)
  items=${BACKPRESSURE_ITEMS:-1000000}
  echo "== backpressure: $items items per phase, bound 10000"
  luajit spec/load/backpressure.lua "$items"
  ;;
shutdown)
  repeat=${REPEAT:-1}
  for i in $(seq 1 "$repeat"); do
    [ "$repeat" -gt 1 ] && echo "== shutdown run $i of $repeat"
    luajit spec/load/shutdown_test.lua "$dir/fdn-lua" "${GRACE:-3}"
  done
  ;;
*)
  echo "usage: scripts/load.sh soak|backpressure|shutdown" >&2
  exit 2
  ;;
esac
