"""ms_ssim / l2_distance over attack image pairs, and attack_loss, with the registered attacks."""

import numpy as np
import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from latentbench.registry import get_registry
from tests.plugins.metrics.metric_toy_models import TanhMLPAutoencoder
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.metrics.attack_loss import AttackLoss
from latentbench.plugins.metrics._msssim import ms_ssim_pairs, setup_for_size
from latentbench.plugins.metrics.pair_metrics import MSSSIM, L2Distance


class CountingAttack:
    """Wraps an attack to count calls (checks that the metrics share one run per trial)."""

    def __init__(self, attack):
        self.attack, self.calls = attack, 0
        self.targeted, self.name = attack.targeted, attack.name

    def __call__(self, *a, **kw):
        self.calls += 1
        return self.attack(*a, **kw)


@pytest.fixture(scope="module")
def setup():
    s = Digits().load("test")
    model = TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=4, dtype=torch.float32, seed=2).eval()
    return model, s.x[:60], s.y[:60]


def make_ctx(model, x, y, attack_name, **cfg):
    atk = get_registry().attack(attack_name)(model, generator=torch.Generator().manual_seed(0), **cfg)
    return MetricContext(model=model, x=x, y=y, dataset="digits", device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0), seed=4, attack=CountingAttack(atk),
                         attack_name=attack_name)


def test_targeted_pairs_trials_and_values(setup):
    model, x, y = setup
    ctx = make_ctx(model, x, y, "latent_space", eps=1.0, steps=5, restarts=1)
    l2 = L2Distance(images_per_trial=8, trials=3)(ctx)
    ms = MSSSIM(images_per_trial=8, trials=3)(ctx)
    assert ctx.attack.calls == 3  # the second metric reused the pairs
    trials = next(v for k, v in ctx.extra.items() if k[0] == "image_pairs")
    idx_sets = [set(t.indices.tolist()) for t in trials]
    assert all(len(s) == 8 for s in idx_sets) and idx_sets[0] != idx_sets[1]  # new images every trial
    for t in trials:
        assert bool((y[t.target_indices] != y[t.indices]).all())  # targets of another class
    assert set(l2.info["pairs"]) == {"target_vs_adv_recon", "input_vs_adv", "adv_vs_adv_recon"}
    # the L2 of (x, x_a) is the perturbation norm the attack itself reports
    np.testing.assert_allclose(l2.per_sample["input_vs_adv"], l2.per_sample["adv_norm"], rtol=1e-5)
    assert (l2.per_sample["adv_norm"] <= 1.0 + 1e-5).all()
    # (x_t, x~_a) recomputed from the targets and a fresh reconstruction of x_a
    with torch.no_grad():
        expect = np.concatenate([(x[t.target_indices] - model.reconstruct(t.pairs["input_vs_adv"][1]))
                                 .reshape(8, -1).norm(dim=1).numpy() for t in trials])
    np.testing.assert_allclose(l2.per_sample["target_vs_adv_recon"], expect, rtol=1e-5)
    per_trial = l2.per_sample["target_vs_adv_recon"].reshape(3, 8).mean(1)
    assert l2.values["target_vs_adv_recon_mean"] == pytest.approx(per_trial.mean())
    assert l2.values["target_vs_adv_recon_std"] == pytest.approx(per_trial.std())
    # MS-SSIM per sample equals the small-image MS-SSIM of the same pairs, and states its configuration
    a, b = trials[0].pairs["adv_vs_adv_recon"]
    np.testing.assert_allclose(ms.per_sample["adv_vs_adv_recon"][:8], ms_ssim_pairs(a, b).numpy(), rtol=1e-6)
    assert ms.config["ms_ssim_setup"] == setup_for_size(8, 8).to_dict()
    assert ms.config["metric"] == "ms_ssim" and ms.config["trials"] == 3


def test_untargeted_pairs_and_attack_loss(setup):
    model, x, y = setup
    ctx = make_ctx(model, x, y, "max_damage", eps=1.0, steps=3, restarts=1)
    res = L2Distance(images_per_trial=100, trials=2)(ctx)
    assert res.info["images_per_trial_used"] == 60 and res.info["targeted"] is False
    assert "recon_vs_adv_recon_mean" in res.values and "target_vs_adv_recon_mean" not in res.values
    loss = AttackLoss(batch_size=25)(ctx)
    assert loss.per_sample["attack_loss"].shape == (60,)
    assert loss.values["attack_loss_mean"] == pytest.approx(loss.per_sample["attack_loss"].mean())
    # max_damage's objective is the decoder-output change ||f(z(x_a)) - f(z(x))||, positive after an attack
    assert (loss.per_sample["attack_loss"] >= 0).all() and loss.values["attack_loss_mean"] > 0


def test_targeted_attack_loss_and_errors(setup):
    model, x, y = setup
    ctx = make_ctx(model, x[:20], y[:20], "latent_space", eps=0.5, steps=3, restarts=1)
    loss = AttackLoss()(ctx)
    assert loss.info["targeted"] is True and loss.per_sample["attack_loss"].shape == (20,)
    ctx.y = None
    with pytest.raises(LatentBenchError, match="targeted"):
        AttackLoss()(ctx)
    ctx.attack = None
    with pytest.raises(LatentBenchError, match="attack"):
        L2Distance(trials=1)(ctx)
