#!/usr/bin/env bash
# Install LatentBench and its test tools into a virtual environment kept outside the clone
# (default ~/.cache/latentbench/venv, override with LATENTBENCH_VENV), so later runs reuse it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LATENTBENCH_VENV:-$HOME/.cache/latentbench/venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
# torch and torchvision pinned as a pair that installs here (clean-fid needs torchvision);
# pip skips both quickly when they are already installed.
"$VENV/bin/pip" install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import harness, torch, torchvision, cleanfid, pytorch_msssim" \
  || { echo "setup: installation failed" >&2; exit 1; }
# Fashion-MNIST from Debian's package (used by the Fashion-MNIST protocol and some tests)
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null) \
    || echo "setup: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped" >&2
fi
echo "setup: ready ($VENV)"
