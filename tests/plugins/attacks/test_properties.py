"""Property tests for every attack: box and budget at every evaluated point, determinism, restarts,
more steps (hypothesis over shapes, budgets and seeds; tiny float64 MLP autoencoders)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentbench.plugins.attacks import (DownstreamPGD, EigendirectionAttack, FGSMLatent, LatentSpaceAttack, MaxDamageAttack,
                             PGDWasserstein)
from tests.plugins.attacks.conftest import EncodeRecorder, TinyMLPAE

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True)

shapes = st.sampled_from([(1, 2, 2), (1, 3, 4), (2, 3, 3)])


def _data(shape, B, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((B, *shape), generator=g, dtype=torch.float64)


def _probe(latent_dim, seed, classes=3):
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(latent_dim, classes).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(classes, latent_dim, generator=g, dtype=torch.float64) * 3)
        lin.bias.zero_()
    return lin


def _make(name, model, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    if name == "pgd_wasserstein":
        return PGDWasserstein(model, generator=g, **kw)
    if name == "fgsm_latent":
        kw.pop("steps", None)
        kw.pop("norm", None)
        return FGSMLatent(model, generator=g, **kw)
    if name == "latent_space":
        return LatentSpaceAttack(model, generator=g, **kw)
    if name == "max_damage":
        return MaxDamageAttack(model, generator=g, **kw)
    if name == "downstream_pgd":
        return DownstreamPGD(model, generator=g, classifier=_probe(model.latent_dim, seed), **kw)
    raise KeyError(name)


def _labels(atk, x):
    # the probe's own predictions on even rows, a wrong class on odd rows (already fooled inputs)
    with torch.no_grad():
        pred = atk.classifier(atk.model.encode(x).mean).argmax(1)
    y = pred.clone()
    y[1::2] = (pred[1::2] + 1) % 3
    return y


def _call(atk, x, seed, y=None):
    if atk.name == "latent_space":
        return atk(x, target=_data(x.shape[1:], x.shape[0], seed + 100))
    if atk.name == "downstream_pgd":
        return atk(x, y=_labels(atk, x) if y is None else y)
    return atk(x)


ITERATIVE = ["pgd_wasserstein", "fgsm_latent", "latent_space", "max_damage", "downstream_pgd"]


@pytest.mark.parametrize("name", ITERATIVE)
@SETTINGS
@given(shape=shapes, B=st.integers(1, 4), eps=st.floats(0.01, 1.5), seed=st.integers(0, 2**16),
       norm=st.sampled_from(["linf", "l2"]), steps=st.integers(0, 6), restarts=st.integers(1, 3),
       solver=st.sampled_from(["pgd", "lbfgsb"]), stochastic=st.booleans())
def test_every_evaluated_point_is_in_box_and_budget(name, shape, B, eps, seed, norm, steps, restarts, solver,
                                                   stochastic):
    if name == "fgsm_latent":
        norm, steps = "linf", 1
    model = TinyMLPAE(shape, latent_dim=3, stochastic=stochastic, seed=seed)
    x = _data(shape, B, seed)
    kw = dict(eps=eps, norm=norm, steps=steps, restarts=restarts)
    if name in ("latent_space", "max_damage"):
        kw["solver"] = solver
    atk = _make(name, model, seed, **kw)
    y = _labels(atk, x) if name == "downstream_pgd" else None
    rec = EncodeRecorder(model)
    res = _call(atk, x, seed, y)
    target = _data(shape, B, seed + 100)
    rec.assert_feasible(x, eps, norm, allowed_extra=(target,))
    assert res.x_adv.shape == x.shape
    assert float(res.x_adv.min()) >= 0 and float(res.x_adv.max()) <= 1
    assert torch.all(res.norm <= eps * (1 + 1e-9) + 1e-12)
    assert res.objective.shape == (B,) and bool(torch.isfinite(res.objective).all())
    assert res.forward_passes >= 1 and res.backward_passes >= 0


@pytest.mark.parametrize("name", ITERATIVE + ["eigendirection"])
@SETTINGS
@given(shape=shapes, eps=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_same_seed_same_result(name, shape, eps, seed):
    model = TinyMLPAE(shape, latent_dim=3, seed=seed)
    x = _data(shape, 3, seed)
    if name == "eigendirection":
        runs = [EigendirectionAttack(model, eps=eps, top_k=2)(x) for _ in range(2)]
    else:
        kw = dict(eps=eps, norm="l2", steps=4, restarts=2)
        runs = [_call(_make(name, model, seed, **kw), x, seed) for _ in range(2)]
    torch.testing.assert_close(runs[0].x_adv, runs[1].x_adv, rtol=0, atol=0)
    torch.testing.assert_close(runs[0].objective, runs[1].objective, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["pgd_wasserstein", "fgsm_latent", "latent_space", "max_damage"])
@SETTINGS
@given(shape=shapes, eps=st.floats(0.05, 1.0), seed=st.integers(0, 2**16), norm=st.sampled_from(["linf", "l2"]),
       restarts=st.integers(2, 4))
def test_restarts_never_worse_than_one_start(name, shape, eps, seed, norm, restarts):
    # restart 0 starts where the single start does (same seed), so the best of R can only be better
    model = TinyMLPAE(shape, latent_dim=3, seed=seed)
    x = _data(shape, 4, seed)
    one = _call(_make(name, model, seed, eps=eps, norm=norm, steps=5, restarts=1), x, seed)
    many = _call(_make(name, model, seed, eps=eps, norm=norm, steps=5, restarts=restarts), x, seed)
    if name == "latent_space":  # minimised
        assert torch.all(many.objective <= one.objective + 1e-9)
    else:
        assert torch.all(many.objective >= one.objective - 1e-9)


@SETTINGS
@given(shape=shapes, eps=st.floats(0.05, 1.0), seed=st.integers(0, 2**16), restarts=st.integers(2, 4))
def test_downstream_restarts_never_unfool(shape, eps, seed, restarts):
    model = TinyMLPAE(shape, latent_dim=3, seed=seed)
    x = _data(shape, 6, seed)
    one = _call(_make("downstream_pgd", model, seed, eps=eps, steps=5, restarts=1), x, seed)
    many = _call(_make("downstream_pgd", model, seed, eps=eps, steps=5, restarts=restarts), x, seed)
    assert torch.all(many.extra["fooled"] | ~one.extra["fooled"])


@pytest.mark.parametrize("name,norm", [("pgd_wasserstein", "linf"), ("max_damage", "l2"), ("latent_space", "l2"),
                                       ("downstream_pgd", "linf")])
def test_more_steps_not_worse_on_average(name, norm):
    model = TinyMLPAE((1, 4, 4), latent_dim=3, hidden=24, seed=3)
    x = _data((1, 4, 4), 32, 1)
    eps = 0.3 if norm == "linf" else 1.0
    vals = []
    for steps in (2, 10, 40):
        res = _call(_make(name, model, 7, eps=eps, norm=norm, steps=steps, restarts=1), x, 5)
        if name == "downstream_pgd":  # fooled inputs stop early: their success counts, not their CE
            k = _probe(model.latent_dim, 7).out_features
            success = math.log(k) + 1
            vals.append(torch.where(res.extra["fooled"], success, res.objective).mean().item())
        else:
            vals.append(res.objective.mean().item() if name != "latent_space" else -res.objective.mean().item())
    assert vals[0] <= vals[1] + 1e-9 and vals[1] <= vals[2] + 1e-9, vals


@SETTINGS
@given(shape=shapes, eps=st.floats(0.01, 2.0), seed=st.integers(0, 2**16), top_k=st.integers(1, 4),
       curved=st.booleans(), stochastic=st.booleans())
def test_eigendirection_stays_in_box_and_budget_and_keeps_worse_sign(shape, eps, seed, top_k, curved, stochastic):
    model = TinyMLPAE(shape, latent_dim=3, stochastic=stochastic, seed=seed)
    x = _data(shape, 3, seed)
    res = EigendirectionAttack(model, eps=eps, top_k=top_k, curved=curved)(x)
    assert float(res.x_adv.min()) >= 0 and float(res.x_adv.max()) <= 1
    assert torch.all(res.norm <= eps * (1 + 1e-9))
    with torch.no_grad():
        mu0 = model.encode(x).mean
        change = (model.encode(res.x_adv).mean - mu0).norm(dim=1)
        torch.testing.assert_close(res.objective, change)
        # the kept candidate is at least as bad as the opposite sign of the same direction
        step = res.x_adv - x
        k, s = res.extra["direction"], res.extra["sign"]
        from latentbench.plugins._common.spectral import pullback_spectrum
        v = pullback_spectrum(model, x, curved=curved, eigenvectors=True, top_k=top_k).eigenvectors
        vk = v[torch.arange(3), k]
        other = (x - s.view(-1, 1, 1, 1).double() * eps * vk).clamp(0, 1)
        assert torch.all(change >= (model.encode(other).mean - mu0).norm(dim=1) - 1e-12)
        torch.testing.assert_close(step, (x + s.view(-1, 1, 1, 1).double() * eps * vk).clamp(0, 1) - x)
