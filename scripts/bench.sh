#!/usr/bin/env bash
# Speed benchmarks (tests/benchmarks/) with a saved baseline, for catching slow-downs.
#
#   bash scripts/bench.sh                 # run all; compare with the last saved run of this machine; save this run
#   bash scripts/bench.sh -k torchattacks # any pytest arguments select or configure the run
#   BENCH_FAIL=median:40% bash scripts/bench.sh   # a looser threshold (default median:25%)
#
# Two guards, both needed on a shared, noisy runner:
# - inside one run, every benchmark times its subject and its reference interleaved, round by round,
#   and asserts on the ratio of their medians (tests/benchmarks/_versus.py): machine-independent;
# - across runs, pytest-benchmark saves each run under .benchmarks/<machine>/ (--benchmark-autosave)
#   and fails when a subject's median got slower than the last saved run by more than BENCH_FAIL
#   (--benchmark-compare-fail). The threshold is wide because other jobs on a shared 2-core runner move
#   absolute times by 10-20% between runs; the ratios above catch smaller regressions.
# Attack strength is not a timing question: the strength goldens (tests/harness/test_strength_goldens.py,
# in the default test suite) fail when an attack gets weaker.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LATENTBENCH_VENV:-$HOME/.cache/latentbench/venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "bench: no environment at $VENV; run 'bash scripts/setup.sh' first" >&2; exit 2; }
# torchattacks is the reference of test_bench_torchattacks.py only; it pins an old requests, hence --no-deps
"$PY" -c "import torchattacks" 2>/dev/null || "$VENV/bin/pip" install -q --no-deps torchattacks
# one thread per process: the shipped numbers and the references are measured this way
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
args=(tests/benchmarks --benchmark-only --benchmark-autosave -q -s -p no:cacheprovider)
if compgen -G ".benchmarks/*/*.json" >/dev/null; then
  args+=(--benchmark-compare "--benchmark-compare-fail=${BENCH_FAIL:-median:25%}")
else
  echo "bench: no saved baseline yet; this run becomes the baseline (.benchmarks/)"
fi
exec "$PY" -m pytest "${args[@]}" "$@"
