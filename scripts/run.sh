#!/usr/bin/env bash
# Sets up what is missing, builds, and runs an example job script with
# fdn-lua (examples/spawn_gather.lua unless a script is given).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dir=$(scripts/build.sh)
script=${1:-examples/spawn_gather.lua}
[ $# -gt 0 ] && shift
exec "$dir/fdn-lua" "$script" "$@"
