"""Strength goldens: a change that makes an attack faster by making it weaker must fail a test.

For fixed seeds, fixed small float64 models and fixed inputs, each built-in attack's achieved
objective (mean over the inputs, in the direction the attack optimises) and the headline score
(robust reconstruction accuracy, which a weaker ensemble raises) are compared with the values stored
in ``strength_goldens.json``. Getting *stronger* passes (and is worth a regenerated golden); getting
weaker by more than the tolerance fails. The last test shows the guard can fail: the same runs with
half the steps (or queries) come out weaker than the goldens.

Regenerate after an intended change: ``LATENTBENCH_UPDATE_GOLDENS=1 python -m pytest tests/harness/test_strength_goldens.py``
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from latentbench.metric import MetricContext
from latentbench.plugins.attacks import (DownstreamPGD, EigendirectionAttack, FGSMLatent, LatentSpaceAttack,
                                         MaxDamageAttack, PGDWasserstein, PhotoGuardEncoder, RandomSearch,
                                         ReconstructionCE)
from latentbench.plugins.metrics.robust_accuracy import RobustAccuracy
from latentbench.plugins.models.reference import IdentityAutoencoder, IdentityConfig
from tests.plugins.attacks.conftest import TinyMLPAE

GOLDENS = Path(__file__).with_name("strength_goldens.json")
SHAPE = (1, 6, 6)
#: relative and absolute slack for BLAS/thread differences between machines (float64 throughout)
REL, ABS = 1e-6, 1e-9
UPDATE = os.environ.get("LATENTBENCH_UPDATE_GOLDENS") == "1"


def _inputs(seed: int = 0, B: int = 12) -> torch.Tensor:
    return 0.1 + 0.8 * torch.rand((B, *SHAPE), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _linear(i: int, o: int, seed: int, scale: float = 3.0) -> torch.nn.Linear:
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(i, o).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(o, i, generator=g, dtype=torch.float64) * scale / i ** 0.5)
        lin.bias.zero_()
    lin.requires_grad_(False)
    return lin


def _image_classifier(classes: int = 3) -> torch.nn.Module:
    # non-linear, so that more steps find more (a linear classifier's optimum is reached in one step)
    n = SHAPE[0] * SHAPE[1] * SHAPE[2]
    return torch.nn.Sequential(torch.nn.Flatten(), _linear(n, 32, seed=11, scale=8.0), torch.nn.Tanh(),
                               _linear(32, classes, seed=12, scale=3.0))


def _model() -> TinyMLPAE:
    return TinyMLPAE(SHAPE, latent_dim=4, hidden=16, stochastic=False, seed=3).eval()


def _identity() -> IdentityAutoencoder:
    # the classifier attacks go through r(x) = x: the tiny random MLP's reconstructions barely depend
    # on x, which would leave those attacks nothing to find
    return IdentityAutoencoder(IdentityConfig(input_shape=SHAPE)).eval()


def _labels(predict, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return predict(x).argmax(1)  # the model's own predictions: every input starts correctly classified


def attack_strength(name: str, scale: float = 1.0) -> float:
    """Mean objective of attack ``name`` in its optimised direction (larger = stronger); ``scale``
    multiplies its steps (or queries)."""
    model, x = _model(), _inputs()
    g = torch.Generator().manual_seed(5)
    steps = max(1, int(round(20 * scale)))
    common = dict(eps=0.6, norm="l2", steps=steps, restarts=2)
    if name == "latent_space":
        atk = LatentSpaceAttack(model, generator=g, **common)
        return -float(atk(x, target=_inputs(seed=1)).objective.mean())  # minimised: a distance to the target
    if name == "max_damage":
        return float(MaxDamageAttack(model, generator=g, **common)(x).objective.mean())
    if name == "photoguard_encoder":  # its own L-inf threat model; minimised: the distance to the grey code
        atk = PhotoGuardEncoder(model, generator=g, eps=0.1, steps=steps, restarts=2)
        return -float(atk(x).objective.mean())
    if name == "pgd_wasserstein":
        return float(PGDWasserstein(model, generator=g, **common)(x).objective.mean())
    if name == "fgsm_latent":
        return float(FGSMLatent(model, generator=g, eps=0.1, restarts=2)(x).objective.mean())
    if name == "eigendirection":
        return float(EigendirectionAttack(model, generator=g, eps=0.6)(x).objective.mean())
    if name == "downstream_pgd":
        probe = _linear(4, 3, seed=7)
        res = DownstreamPGD(model, generator=g, classifier=probe, **common)(
            x, y=_labels(lambda v: probe(model.encode(v).mean), x))
        # what the attack reports is which inputs it fooled: a fooled input counts its success score
        # (log K + 1, above any unfooled cross-entropy), an unfooled one its cross-entropy
        success = torch.log(torch.tensor(3.0, dtype=torch.float64)) + 1
        return float(torch.where(res.extra["fooled"], success, res.objective).mean())
    model, clf = _identity(), _image_classifier()
    y = _labels(lambda v: clf(model.reconstruct(v)), x)
    if name == "reconstruction_ce":
        return float(ReconstructionCE(model, generator=g, classifier=clf, **common)(x, y=y).objective.mean())
    if name == "random_search":
        atk = RandomSearch(model, generator=g, classifier=clf, eps=0.6, steps=max(1, int(round(150 * scale))))
        return float(atk(x, y=y).objective.mean())  # the margin: larger = closer to (or past) a wrong class
    raise KeyError(name)


def headline_robust_accuracy(tmp_path: Path, scale: float = 1.0) -> float:
    """The headline score of the identity autoencoder (the classifier's own robust accuracy) under a
    cheap ensemble (lower = stronger ensemble)."""
    model, x = _identity(), _inputs(B=40)
    clf = _image_classifier()
    y = _labels(lambda v: clf(model.reconstruct(v)), x)
    s = lambda n: max(1, int(round(n * scale)))  # noqa: E731
    metric = RobustAccuracy(budgets=[0.3, 0.6], ce_steps=s(10), ce_restarts=1, latent_targets=1, latent_steps=s(10),
                            max_damage_steps=s(10), random_queries=s(60), check_subset=5, examples=0)
    ctx = MetricContext(model=model, x=x, y=y, dataset="generated", device=torch.device("cpu"),
                        generator=torch.Generator().manual_seed(0), seed=0, num_classes=3,
                        classifier=lambda: clf, cache_dir=tmp_path / f"cache-{scale}")
    return float(metric(ctx).values["robust_accuracy_mean"])


ATTACKS = ["latent_space", "max_damage", "pgd_wasserstein", "fgsm_latent", "eigendirection", "downstream_pgd",
           "reconstruction_ce", "random_search", "photoguard_encoder"]
#: attacks whose strength depends on their number of steps (fgsm_latent and eigendirection take one)
ITERATIVE = ["latent_space", "max_damage", "pgd_wasserstein", "downstream_pgd", "reconstruction_ce", "random_search",
             "photoguard_encoder"]


def _goldens() -> dict:
    return json.loads(GOLDENS.read_text()) if GOLDENS.exists() else {}


def _weaker(value: float, golden: float) -> bool:
    return value < golden - (ABS + REL * abs(golden))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_not_weaker_than_its_golden(name):
    value = attack_strength(name)
    goldens = _goldens()
    if UPDATE:
        goldens.setdefault("attacks", {})[name] = value
        GOLDENS.write_text(json.dumps(goldens, indent=2, sort_keys=True) + "\n")
        return
    golden = goldens["attacks"][name]
    assert not _weaker(value, golden), f"attack '{name}' got weaker: {value!r} < golden {golden!r}"


def test_headline_is_not_weaker_than_its_golden(tmp_path):
    acc = headline_robust_accuracy(tmp_path)
    goldens = _goldens()
    if UPDATE:
        goldens["headline_robust_accuracy_mean"] = acc
        GOLDENS.write_text(json.dumps(goldens, indent=2, sort_keys=True) + "\n")
        return
    # a weaker ensemble leaves more images robust: the accuracy must not rise (up to float slack)
    assert acc <= goldens["headline_robust_accuracy_mean"] + 1e-12
    assert 0.0 < goldens["headline_robust_accuracy_mean"] < 1.0  # a setting where strength shows


#: how much of its step budget each iterative attack keeps in the guard test: half, except APGD-CE,
#: whose step schedule has converged on this small problem by 10 steps (half its budget reaches the
#: same cross-entropy), so one step is its weakened run
WEAKENED = {"latent_space": 0.5, "max_damage": 0.5, "pgd_wasserstein": 0.5, "downstream_pgd": 0.5,
            "random_search": 0.5, "reconstruction_ce": 0.05, "photoguard_encoder": 0.5}


@pytest.mark.skipif(UPDATE, reason="regenerating the goldens")
@pytest.mark.parametrize("name", ITERATIVE)
def test_the_guard_catches_fewer_steps(name):
    """A weakened attack (half its steps or queries) comes out weaker than its golden: the comparison
    above can fail."""
    assert _weaker(attack_strength(name, scale=WEAKENED[name]), _goldens()["attacks"][name])


@pytest.mark.skipif(UPDATE, reason="regenerating the goldens")
def test_the_guard_catches_a_weaker_ensemble(tmp_path):
    assert headline_robust_accuracy(tmp_path, scale=0.25) > _goldens()["headline_robust_accuracy_mean"]
