#!/usr/bin/env bash
# CUDA end to end, on a machine with an NVIDIA GPU (run it when one is lent; nothing else needs one):
#   1. the quick start on CUDA and on the CPU, each phase timed;
#   2. the CUDA-marked tests (tests/harness/test_cuda.py: attacks, metrics and training on CUDA against
#      the CPU on the same inputs and seeds, within the tolerances stated there);
#   3. a shipped digits-v2 entry re-run on CUDA from its committed checkpoint (`verify --full`): every
#      number that differs from the CPU entry is printed with its difference (the CPU-vs-CUDA noise).
# On a machine without CUDA it says so and exits 0 without running anything.
#   bash scripts/gpu_check.sh [cuda|cuda:N]
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${LATENTBENCH_VENV:-$HOME/.cache/latentbench/venv}"
PY="$VENV/bin/python"
LB="$VENV/bin/latentbench"
DEVICE="${1:-cuda}"
[ -x "$PY" ] || { echo "gpu_check: no environment at $VENV; run 'bash scripts/setup.sh' first" >&2; exit 2; }
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA device (torch.cuda.is_available() is False on this machine); nothing to check"
  exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
OUT=runs/gpu_check
rm -rf "$OUT"; mkdir -p "$OUT"
status=0
phase() {  # phase NAME COMMAND...: run, print its wall time and exit status (PHASE_INFO=1: not a failure)
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  printf 'phase %-24s %8.1f s  exit %d  (log %s)\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$rc" "$OUT/$name.log"
  [ "$rc" -eq 0 ] || [ -n "${PHASE_INFO:-}" ] || status=1
}
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
phase quickstart-cpu  "$LB" run quickstart --device cpu --work-dir "$OUT/quickstart-cpu" --no-progress
phase quickstart-cuda "$LB" run quickstart --device "$DEVICE" --work-dir "$OUT/quickstart-cuda" --no-progress
phase cuda-tests      "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/harness/test_cuda.py
# the quick start trains its models on each device, so its numbers differ by training noise; the fixed
# checkpoint below isolates the evaluation's CPU-vs-CUDA differences
"$PY" - "$OUT/quickstart-cpu/results.json" "$OUT/quickstart-cuda/results.json" <<'PYEOF'
import json, sys
def cells(p):
    out = {}
    for r in json.load(open(p)):
        k = (r.get("model"), r.get("attack"), r.get("budget"), r.get("metric"))
        for name, v in (r.get("values") or {}).items():
            out[k + (name,)] = v
    return out
a, b = cells(sys.argv[1]), cells(sys.argv[2])
common = sorted(set(a) & set(b), key=str)
rel = [abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in common if isinstance(a[k], (int, float)) and isinstance(b[k], (int, float))]
rel.sort()
if rel:
    print(f"quick start, CPU vs CUDA (models trained on each device): {len(rel)} values, median relative difference "
          f"{rel[len(rel) // 2]:.2e}, largest {rel[-1]:.2e}")
PYEOF
# exit 1 here only means CUDA rounds differently from the CPU entry (tolerances are same-machine ones)
PHASE_INFO=1 phase verify-digits-v2-vae "$LB" leaderboard verify leaderboard/digits-v2/vae.json --full --device "$DEVICE" --work-dir "$OUT/verify"
echo "CPU-vs-CUDA differences of the digits-v2 vae entry (same checkpoint):"
grep -E "differ|mismatch|reproduced|tolerance" "$OUT/verify-digits-v2-vae.log" | head -40
exit $status
