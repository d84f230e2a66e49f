"""downstream_pgd against a plain reference PGD written here; sweeps, registry and config errors."""

import pytest
import torch
import torch.nn.functional as F

from latentbench.errors import ConfigError
from latentbench.registry import get_registry
from latentbench.typed_config import build_dataclass
from latentbench.plugins.attacks import ATTACKS, DownstreamPGD, LatentSpaceAttack
from tests.plugins.attacks.conftest import TinyMLPAE


def _setup(seed=0, B=64):
    model = TinyMLPAE((1, 4, 4), latent_dim=4, hidden=24, stochastic=True, seed=seed)
    g = torch.Generator().manual_seed(seed)
    probe = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        probe.weight.copy_(torch.randn(3, 4, generator=g, dtype=torch.float64) * 4)
        probe.bias.zero_()
    x = torch.rand((B, 1, 4, 4), generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = probe(model.encode(x).mean).argmax(1)
    y[:4] = (y[:4] + 1) % 3  # four inputs the probe already gets wrong
    return model, probe, x, y


def _reference_pgd(model, probe, x, y, eps, steps, seed):
    """Plain single-start L-inf PGD on the cross-entropy, independent of latentbench.perturbation."""
    g = torch.Generator().manual_seed(seed)
    xa = (x + (torch.rand(x.shape, generator=g, dtype=x.dtype) * 2 - 1) * eps).clamp(0, 1)
    alpha = 2.5 * eps / steps
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = F.cross_entropy(probe(model.encode(xa).mean), y)
        (gr,) = torch.autograd.grad(loss, xa)
        xa = torch.min(torch.max(xa.detach() + alpha * gr.sign(), x - eps), x + eps).clamp(0, 1)
    with torch.no_grad():
        return probe(model.encode(xa).mean).argmax(1) != y


@pytest.mark.parametrize("eps", [0.05, 0.15])
def test_downstream_pgd_at_least_as_strong_as_plain_pgd(eps):
    model, probe, x, y = _setup()
    ref_fooled = _reference_pgd(model, probe, x, y, eps, steps=20, seed=1)
    res = DownstreamPGD(model, classifier=probe, generator=torch.Generator().manual_seed(2), eps=eps, steps=20,
                        restarts=5)(x, y=y)
    fooled = res.extra["fooled"]
    assert 0 < ref_fooled.float().mean() < 1  # a budget where the comparison means something
    assert fooled.float().mean() >= ref_fooled.float().mean()  # adversarial accuracy <= the reference's
    with torch.no_grad():  # the fooled flags and the objective describe x_adv, recomputed independently
        logits = probe(model.encode(res.x_adv).mean)
    assert torch.equal(fooled, logits.argmax(1) != y)
    torch.testing.assert_close(res.objective, F.cross_entropy(logits, y, reduction="none"))
    # already misclassified inputs are not attacked: x_adv = x and a single forward pass
    assert torch.equal(res.x_adv[:4], x[:4])
    assert torch.all(res.extra["forward_passes_per_input"][:4] == 1)
    # passes per input: the clean pass, then round 1 (one start, 20 steps + the final evaluation),
    # then restarts 2..R only for inputs round 1 did not fool; a fooled input leaves at the next
    # check (every 10 steps), all its restarts together
    f = res.extra["forward_passes_per_input"]
    one_round = 1 + (20 + 1)
    round1_only = (f > 1) & (f <= one_round)
    assert torch.all(fooled[round1_only])
    assert torch.all(f[round1_only] >= 1 + 10)  # nobody leaves before the first check
    survivors = ~fooled & res.extra["clean_correct"]
    assert survivors.any() and torch.all(f[survivors] == one_round + 4 * (20 + 1))
    later = f > one_round  # entered round 2: every restart ran at least up to the first check
    assert torch.all((f[later] - one_round) % 4 == 0) and torch.all(f[later] >= one_round + 4 * 10)


def test_downstream_pgd_needs_a_probe_and_labels():
    model, probe, x, y = _setup(B=4)
    with pytest.raises(ValueError, match="classifier"):
        DownstreamPGD(model)
    with pytest.raises(ValueError, match="labels"):
        DownstreamPGD(model, classifier=probe)(x)


def test_registry_lists_every_attack_with_typed_config_and_source():
    reg = get_registry()
    for cls in ATTACKS:
        assert reg.attack(cls.name) is cls
        assert cls.source and cls.config_class.__dataclass_fields__


#: attacks whose classifier reads images (through the autoencoder), not codes
IMAGE_CLASSIFIER = ("reconstruction_ce", "random_search")


@pytest.mark.parametrize("cls", ATTACKS, ids=lambda c: c.name)
def test_sweep_runs_every_budget_and_reports_norms_objective_and_passes(cls):
    model, probe, x, y = _setup(B=3)
    kw = dict(steps=3, restarts=2) if cls.name not in ("eigendirection", "fgsm_latent") else {}
    if cls.name == "fgsm_latent":
        kw = dict(restarts=2)
    if cls.name in IMAGE_CLASSIFIER:  # a classifier of reconstructions: the probe on the image's code
        probe = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3).double())
    atk = cls(model, generator=torch.Generator().manual_seed(0), classifier=probe if cls.needs_classifier else None,
              **kw)
    budgets = [0.05, 0.2]
    target = torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=x.dtype) if cls.targeted else None
    out = atk.sweep(x, budgets, y=y, target=target)
    assert sorted(out) == budgets
    for b, res in out.items():
        # the budget measured from x_adv in the attack's norm, and the reported norm checked against it
        d = (res.x_adv - x).reshape(x.shape[0], -1)
        measured = d.abs().amax(1) if atk.config.norm == "linf" else d.norm(dim=1)
        assert res.budget == b and torch.all(measured <= b * (1 + 1e-9))
        torch.testing.assert_close(res.norm, measured.to(res.norm.dtype), rtol=1e-6, atol=1e-9)
        assert float(res.x_adv.min()) >= 0 and float(res.x_adv.max()) <= 1
        assert res.objective.shape == (3,) and res.forward_passes > 0
        assert res.config["attack"] == cls.name and res.config["eps"] == b


def test_targeted_attack_refuses_to_run_without_target():
    model, _, x, _ = _setup(B=2)
    with pytest.raises(ValueError, match="target"):
        LatentSpaceAttack(model)(x)


@pytest.mark.parametrize("name,data,match", [
    ("pgd_wasserstein", {"distance": "kl"}, "distance"),
    ("pgd_wasserstein", {"gamma": 0.0}, "gamma"),
    ("fgsm_latent", {"steps": 5}, "one step"),
    ("fgsm_latent", {"norm": "l2"}, "L-inf"),
    ("fgsm_latent", {"random_start": False}, "zero gradient at the clean input.*keep random_start true"),
    ("max_damage", {"random_start": False}, "max_damage needs random_start: true.*zero gradient"),
    ("pgd_wasserstein", {"random_start": False}, "pgd_wasserstein needs random_start: true.*zero gradient"),
    ("latent_space", {"solver": "adam"}, "solver"),
    ("max_damage", {"step_size": -1.0}, "step_size"),
    ("eigendirection", {"mode": "grid"}, "mode"),
    ("eigendirection", {"norm": "linf"}, "l2"),
    ("downstream_pgd", {"norm": "l1"}, "norm"),
    ("latent_space", {"stepz": 3}, "steps"),
])
def test_config_errors_name_the_problem(name, data, match):
    cls = get_registry().attack(name)
    with pytest.raises(ConfigError, match=match):
        build_dataclass(cls.config_class, data, f"attacks.{name}")
