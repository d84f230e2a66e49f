"""ms_ssim / l2_distance over attack image pairs, and attack_loss, with the registered attacks."""

import numpy as np
import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from latentbench.registry import get_registry
from tests.plugins.metrics.metric_toy_models import TanhMLPAutoencoder
from tests.plugins.metrics.test_ms_ssim_independent import reference_ms_ssim
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.metrics.attack_loss import AttackLoss
from latentbench.plugins.metrics._msssim import setup_for_size
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
    # (x, x_a): the pair holds the drawn images themselves, and its L2 is recomputed here from them;
    # the budget (eps 1) is checked on that measured norm, and the attack's reported norm against it
    for t in trials:
        torch.testing.assert_close(t.pairs["input_vs_adv"][0], x[t.indices])
    measured = np.concatenate([(x[t.indices] - t.pairs["input_vs_adv"][1]).reshape(8, -1).norm(dim=1).numpy()
                               for t in trials])
    np.testing.assert_allclose(l2.per_sample["input_vs_adv"], measured, rtol=1e-5)
    assert (measured <= 1.0 + 1e-5).all() and (measured > 0.5).all()  # inside the budget, and really attacked
    np.testing.assert_allclose(l2.per_sample["adv_norm"], measured, rtol=1e-4)
    # (x_t, x~_a) recomputed from the targets and a fresh reconstruction of x_a
    with torch.no_grad():
        expect = np.concatenate([(x[t.target_indices] - model.reconstruct(t.pairs["input_vs_adv"][1]))
                                 .reshape(8, -1).norm(dim=1).numpy() for t in trials])
    np.testing.assert_allclose(l2.per_sample["target_vs_adv_recon"], expect, rtol=1e-5)
    per_trial = l2.per_sample["target_vs_adv_recon"].reshape(3, 8).mean(1)
    assert l2.values["target_vs_adv_recon_mean"] == pytest.approx(per_trial.mean())
    assert l2.values["target_vs_adv_recon_std"] == pytest.approx(per_trial.std())
    # MS-SSIM per sample equals MS-SSIM computed from its definition (numpy/scipy reference, 8 px
    # configuration) on the same pairs, and states its configuration
    a, b = trials[0].pairs["adv_vs_adv_recon"]
    ref = [reference_ms_ssim(a[i, 0].double().numpy(), b[i, 0].double().numpy()) for i in range(8)]
    np.testing.assert_allclose(ms.per_sample["adv_vs_adv_recon"][:8], ref, rtol=1e-4)
    assert ms.config["ms_ssim_setup"] == setup_for_size(8, 8).to_dict()
    assert ms.config["metric"] == "ms_ssim" and ms.config["trials"] == 3


def test_untargeted_pairs_and_attack_loss(setup):
    model, x, y = setup
    ctx = make_ctx(model, x, y, "max_damage", eps=1.0, steps=3, restarts=1)
    res = L2Distance(images_per_trial=100, trials=2)(ctx)
    assert res.info["images_per_trial_used"] == 60 and res.info["targeted"] is False
    assert "recon_vs_adv_recon_mean" in res.values and "target_vs_adv_recon_mean" not in res.values
    # attack_loss reports max_damage's objective ||g(mu(x_a)) - g(mu(x))|| at the points the attack returns:
    # the same attack (same seed, same batches of 25) rerun here, the objective recomputed from the model
    loss = AttackLoss(batch_size=25)(make_ctx(model, x, y, "max_damage", eps=1.0, steps=3, restarts=1))
    atk = get_registry().attack("max_damage")(model, generator=torch.Generator().manual_seed(0), eps=1.0, steps=3,
                                              restarts=1)
    x_adv = torch.cat([atk(x[i:i + 25]).x_adv for i in range(0, 60, 25)])
    with torch.no_grad():
        change = (model.decode(model.encode(x_adv).mean) - model.decode(model.encode(x).mean)).reshape(60, -1).norm(dim=1)
        # and the attack beats a random perturbation of the same norm, on average
        g = torch.Generator().manual_seed(1)
        u = torch.randn(x.shape, generator=g)
        x_rand = (x + u / u.reshape(60, -1).norm(dim=1).view(-1, 1, 1, 1)
                  * (x_adv - x).reshape(60, -1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
        rand_change = (model.decode(model.encode(x_rand).mean) - model.decode(model.encode(x).mean)).reshape(60, -1).norm(dim=1)
    np.testing.assert_allclose(loss.per_sample["attack_loss"], change.numpy(), rtol=1e-4, atol=1e-6)
    assert loss.values["attack_loss_mean"] == pytest.approx(float(change.double().mean()), rel=1e-5)
    assert float(change.mean()) > 1.5 * float(rand_change.mean())


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
