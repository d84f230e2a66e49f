"""CUDA end to end: the same attacks, metrics and training on CUDA as on the CPU (skipped without a GPU;
`scripts/gpu_check.sh` runs these on an accelerator machine).

Starts and per-image randomness are drawn on the CPU in float64 and moved to the device
(latentbench.perturbation.random_start), so both devices attack from the same points; what differs is
float rounding in the kernels. Tolerances: float64 models 1e-9 relative (the kernels agree to
rounding), float32 1e-3 relative on objectives after 20 PGD steps (rounding compounds over steps).
"""

from __future__ import annotations

import os

import pytest
import torch

from latentbench.plugins._common.spectral import pullback_spectrum
from latentbench.plugins.attacks import LatentSpaceAttack, MaxDamageAttack
from tests.plugins.attacks.conftest import TinyMLPAE

#: LATENTBENCH_TEST_DEVICE=cpu runs these tests' logic on a machine without a GPU (the comparison is then trivial)
CUDA = torch.device(os.environ.get("LATENTBENCH_TEST_DEVICE", "cuda"))
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(),
                                 reason="no CUDA device (scripts/gpu_check.sh on a GPU machine)")]


def _inputs(B=16, shape=(1, 6, 6), seed=0, dtype=torch.float64):
    return 0.1 + 0.8 * torch.rand((B, *shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-9), (torch.float32, 1e-3)])
def test_pgd_attacks_agree_with_the_cpu(dtype, rtol):
    model = TinyMLPAE((1, 6, 6), latent_dim=4, hidden=16, stochastic=True, seed=3, dtype=dtype).eval()
    x, target = _inputs(dtype=dtype), _inputs(seed=1, dtype=dtype)
    for cls, kw in ((MaxDamageAttack, {}), (LatentSpaceAttack, {"target": None})):
        res = {}
        for dev in ("cpu", CUDA):
            m = model.to(dev)
            atk = cls(m, generator=torch.Generator().manual_seed(5), eps=0.6, norm="l2", steps=20, restarts=2)
            out = atk(x.to(dev), **({"target": target.to(dev)} if "target" in kw else {}))
            assert out.x_adv.device.type == torch.device(dev).type  # the result stays on the device
            res["cpu" if dev == "cpu" else "device"] = out.objective.cpu()
        torch.testing.assert_close(res["device"], res["cpu"], rtol=rtol, atol=rtol)


def test_spectra_agree_with_the_cpu():
    model = TinyMLPAE((1, 6, 6), latent_dim=4, hidden=16, stochastic=True, seed=3).eval()
    x = _inputs()
    cpu = pullback_spectrum(model, x).eigenvalues
    gpu = pullback_spectrum(model.to(CUDA), x.to(CUDA)).eigenvalues
    assert gpu.device.type == CUDA.type
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-12)


def test_training_runs_on_cuda(tmp_path):
    from latentbench.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""
name: cuda-smoke
output_dir: {tmp_path / 'out'}
device: {CUDA}
dataset: {{name: digits, eval_subset: 64}}
models:
  - name: vae
    plugin: vae
    config: {{latent_dim: 4, backbone: mlp, hidden: [32]}}
    train: {{epochs: 1, batch_size: 64}}
attacks:
  - name: max_damage
    plugin: max_damage
    config: {{steps: 5, restarts: 1}}
    budgets: [0.5]
metrics: [{{plugin: l2_distance}}, {{plugin: spectral_radius}}]
progress: false
""")
    assert main(["run", str(cfg)]) == 0
