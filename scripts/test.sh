#!/usr/bin/env bash
# The test command: the default suite (CPU, no network, benchmarks and `slow` tests skipped).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LATENTBENCH_VENV:-$HOME/.cache/latentbench/venv}"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider "$@"
