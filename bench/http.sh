#!/usr/bin/env bash
# HTTP hello-world throughput with keep-alive (docs/http.md, "Performance"):
# medians of RUNS runs of
#   inproc  server and N fdn clients in one fdn-lua process
#   client  the server in one fdn-lua process, N fdn clients in another
#   wrk     the server in fdn-lua, wrk with N connections (if installed)
#   node    Node's own HTTP server under the same wrk load, as a peer (if
#           node is installed): compare the ratio, not the absolute figure
# Usage: bench/http.sh [N=50] [REQUESTS=50000] [RUNS=5]; FDN_LUA overrides
# the interpreter (default build/fdn-lua).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
total=${2:-50000}
runs=${3:-5}
fdn_lua=${FDN_LUA:-build/fdn-lua}
[ -x "$fdn_lua" ] || { echo "no $fdn_lua: run make build first" >&2; exit 1; }

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
rps_of() { sed -n 's/.*"rps":\([0-9.]*\).*/\1/p'; }

start_server() {
  local out
  out=$(mktemp)
  if [ "${1:-fdn}" = node ]; then
    node bench/node/http.js >"$out" 2>&1 &
  else
    "$fdn_lua" bench/http.lua serve >"$out" 2>&1 &
  fi
  server_pid=$!
  for _ in $(seq 50); do
    port=$(awk '/^port/ {print $2}' "$out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  rm -f "$out"
  [ -n "$port" ] || { echo "the server did not start" >&2; exit 1; }
}
stop_server() { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
trap stop_server EXIT

inproc=()
client=()
wrk_rps=()
node_rps=()
for _ in $(seq "$runs"); do
  inproc+=("$("$fdn_lua" bench/http.lua inproc "$n" "$total" | rps_of)")
  start_server
  client+=("$("$fdn_lua" bench/http.lua client "$port" "$n" "$total" | rps_of)")
  if command -v wrk >/dev/null; then
    wrk -t1 -c"$n" -d1s "http://127.0.0.1:$port/" >/dev/null # warm up
    wrk_rps+=("$(wrk -t1 -c"$n" -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')")
  fi
  stop_server
  if command -v wrk >/dev/null && command -v node >/dev/null; then
    start_server node
    wrk -t1 -c"$n" -d1s "http://127.0.0.1:$port/" >/dev/null
    node_rps+=("$(wrk -t1 -c"$n" -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')")
    stop_server
  fi
done
echo "HTTP hello world, keep-alive, $n concurrent clients, median of $runs runs (requests/s):"
printf '  %-34s %s\n' "fdn server + fdn clients, 1 process" "$(printf '%s\n' "${inproc[@]}" | median)"
printf '  %-34s %s\n' "fdn server, fdn clients (2 procs)" "$(printf '%s\n' "${client[@]}" | median)"
if [ ${#wrk_rps[@]} -gt 0 ]; then
  printf '  %-34s %s\n' "fdn server, wrk -t1" "$(printf '%s\n' "${wrk_rps[@]}" | median)"
else
  echo "  (wrk not installed: apt-get install wrk)"
fi
if [ ${#node_rps[@]} -gt 0 ]; then
  printf '  %-34s %s\n' "node http server, wrk -t1 (peer)" "$(printf '%s\n' "${node_rps[@]}" | median)"
fi
