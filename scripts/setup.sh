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
# the adapters' libraries (diffusers, pythae) too: their tests run in CI
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test,ray,diffusers,pythae]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import latentbench, torch, torchvision, cleanfid, pytorch_msssim" \
  || { echo "setup: installation failed" >&2; exit 1; }
# Debian packages: Fashion-MNIST (the Fashion-MNIST protocol and some tests) and headless Chromium
# (the leaderboard page test). Without root or apt they are skipped and so are the tests that need them.
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing ${missing[*]} (Debian)"
  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null) \
    || echo "setup: could not install ${missing[*]}; the tests that need them will be skipped" >&2
fi
echo "setup: ready ($VENV)"
