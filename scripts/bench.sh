#!/usr/bin/env bash
# Installs what the peers need (Debian packages, where missing), builds a
# release into build-release/, and runs the benchmarks (bench/run.lua).
# Environment (make bench VAR=…): RUNS (default 5), ONLY (e.g. W1,W3),
# PEERS (e.g. fdn,luv), SCALE (size factor), N (one size for all),
# CALLGRIND=only|no (default: the callgrind section too), JSON (a file for
# every sample), BENCH_ARGS (more bench/run.lua options).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
peer_packages=(lua-luv python3 python3-uvloop python3-tenacity nodejs node-p-limit valgrind)
if ! scripts/setup.sh "${peer_packages[@]}"; then
  # One by one, so that one package this system lacks costs only its peer.
  for pkg in "${peer_packages[@]}"; do
    scripts/setup.sh "$pkg" ||
      echo "bench: could not install $pkg; its peer will show as absent" >&2
  done
fi

dir=build-release
FDN_BUILD_DIR=$dir FDN_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DFDN_BUILD_BENCH=ON" \
  scripts/build.sh >/dev/null

# p-limit for the Node peer: Debian's node-p-limit is found through
# NODE_PATH; failing that, an npm install into the build folder (p-limit 3
# is the last release loadable with require()); failing that, the Node
# program uses a hand-written limiter and says so in the table.
if command -v node >/dev/null &&
  ! NODE_PATH="$PWD/$dir/bench-node/node_modules:/usr/share/nodejs" \
    node -e "require('p-limit')" 2>/dev/null; then
  if command -v npm >/dev/null; then
    mkdir -p "$dir/bench-node"
    npm install --silent --no-audit --no-fund --prefix "$dir/bench-node" p-limit@3 >&2 ||
      echo "bench: npm install p-limit failed; Node's W2 uses a hand-written limiter" >&2
  fi
fi

args=(--build "$dir" --runs "${RUNS:-5}")
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
[ -n "${PEERS:-}" ] && args+=(--peers "$PEERS")
[ -n "${SCALE:-}" ] && args+=(--scale "$SCALE")
[ -n "${N:-}" ] && args+=(--n "$N")
[ -n "${JSON:-}" ] && args+=(--json "$JSON")
case "${CALLGRIND:-}" in
only) args+=(--callgrind) ;;
no) args+=(--no-callgrind) ;;
esac
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options on purpose
exec luajit bench/run.lua "${args[@]}" ${BENCH_ARGS:-}
