#!/usr/bin/env bash
# Embedding churn (docs/reliability-hygiene.md): a host creates and
# destroys an engine CYCLES times (default 10000) with work pending; RSS
# drift must stay within LIMIT_MB (default 2) and no callback may run after
# the engine is destroyed. Prints the figures; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
if ! dir=$(scripts/build.sh); then
  echo "churn: build failed"
  exit 1
fi
"$dir/bench/fdn-churn" "${CYCLES:-10000}" "${LIMIT_MB:-2}"
