#!/usr/bin/env bash
# Instructions per request of the fdn HTTP server (user space, callgrind):
# the same hello-world server run twice under callgrind, once with no
# request and once with 3000 (+300 warm-up) from a client process; the
# difference over the request count. Repeats within about 1% (how requests
# batch per loop turn varies a little), unlike
# requests/s on a shared machine: the figure to compare between commits.
#   bench/http_callgrind.sh      (needs valgrind and build/fdn-lua)
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" build/fdn-lua bench/http.lua serve > "$tmp/out" 2>"$tmp/err.$1" &
  pid=$!
  for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$tmp/out"); [ -n "$port" ] && break; sleep 0.1; done
  if [ "$1" -gt 0 ]; then build/fdn-lua bench/http.lua client $port 10 $1 >/dev/null; fi
  kill -INT $pid; wait $pid
  grep -o "summary: [0-9]*" "$tmp/cg.$1" | awk '{print $2}'
}
a=$(run 0); b=$(run 3000)
echo "fdn HTTP server: $(( (b - a) / 3300 )) instructions per request (callgrind, user space)"
