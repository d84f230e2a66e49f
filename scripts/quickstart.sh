#!/usr/bin/env bash
# Set everything up, then train small models on the embedded `digits` data and evaluate them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LATENTBENCH_VENV:-$HOME/.cache/latentbench/venv}"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
"$VENV/bin/latentbench" run quickstart "$@"
