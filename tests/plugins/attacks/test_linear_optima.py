"""Attacks on linear encoders reach optima computed independently (SVD, sign enumeration, dense eigh)."""

import itertools

import numpy as np
import pytest
import torch

from latentbench.plugins.attacks import (EigendirectionAttack, FGSMLatent, LatentSpaceAttack, MaxDamageAttack,
                             PGDWasserstein, fgsm_latent_perturb)
from latentbench.perturbation import random_start
from tests.plugins.attacks.conftest import LinearAE

SHAPE = (1, 2, 4)  # n = 8 pixels: small enough to enumerate all 2^8 L-inf vertices
N = 8


def _W(seed, d=3, n=N, scale=1.0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(d, n)) * scale)


def _mid(B=3):
    # the middle of the box: small budgets never touch the [0, 1] constraint, so optima are analytic
    return torch.full((B, *SHAPE), 0.5, dtype=torch.float64)


@pytest.mark.parametrize("solver", ["pgd", "lbfgsb"])
def test_max_damage_reaches_eps_times_top_singular_value(solver):
    W = _W(0)
    model = LinearAE(W, SHAPE)  # identity decoder: the objective is ||W d||_2
    eps = 0.3
    sigma_max = np.linalg.svd(W.numpy(), compute_uv=False)[0]
    res = MaxDamageAttack(model, generator=torch.Generator().manual_seed(0), eps=eps, steps=100, restarts=3,
                          solver=solver)(_mid())
    opt = eps * sigma_max
    assert torch.all(res.objective >= 0.99 * opt)
    assert torch.all(res.objective <= opt * (1 + 1e-9))  # no point in the ball can beat the optimum
    torch.testing.assert_close(res.objective, ((res.x_adv - _mid()).reshape(3, -1) @ W.T).norm(dim=1))


def test_pgd_wasserstein_linf_reaches_vertex_optimum_by_enumeration():
    W = _W(1)
    model = LinearAE(W, SHAPE)  # deterministic: objective ||W d||^2 over ||d||_inf <= eps
    eps = 0.1
    Wn = W.numpy()
    best = max(np.sum((Wn @ np.array(s)) ** 2) for s in itertools.product((-1.0, 1.0), repeat=N))
    opt = eps ** 2 * best  # a convex function on a box peaks at a vertex
    res = PGDWasserstein(model, generator=torch.Generator().manual_seed(0), eps=eps, steps=100, restarts=10)(_mid())
    assert torch.all(res.objective >= 0.99 * opt)
    assert torch.all(res.objective <= opt * (1 + 1e-9))


def test_pgd_wasserstein_on_affine_std_encoder_matches_closed_form_w2():
    # with mean W x and std V x + c the W_2^2 change for a step d is ||W d||^2 + ||V d||^2
    W, V = _W(2), _W(3, scale=0.3)
    model = LinearAE(W, SHAPE, V=V, c=3.0)
    res = PGDWasserstein(model, generator=torch.Generator().manual_seed(0), eps=0.05, steps=100, restarts=10)(_mid())
    d = (res.x_adv - _mid()).reshape(3, -1)
    torch.testing.assert_close(res.objective, (d @ W.T).pow(2).sum(1) + (d @ V.T).pow(2).sum(1))
    A = torch.cat([W, V]).numpy()
    best = max(np.sum((A @ np.array(s)) ** 2) for s in itertools.product((-1.0, 1.0), repeat=N))
    assert torch.all(res.objective >= 0.99 * 0.05 ** 2 * best)


def test_fgsm_latent_step_matches_hand_computed_step():
    W = _W(4)
    model = LinearAE(W, SHAPE)
    x, eps = _mid(), 0.2
    res = FGSMLatent(model, generator=torch.Generator().manual_seed(11), eps=eps)(x)
    # the same start the attack draws, then d = clip(d0 + 1.25 eps sign(W^T W d0)) by hand in numpy
    d0 = (random_start(x, eps, "linf", torch.Generator().manual_seed(11)) - x).reshape(3, -1).numpy()
    Wn = W.numpy()
    d = np.clip(d0 + 1.25 * eps * np.sign(d0 @ Wn.T @ Wn), -eps, eps)
    np.testing.assert_allclose((res.x_adv - x).reshape(3, -1).numpy(), d, atol=1e-12)
    np.testing.assert_allclose(res.objective.numpy(), np.linalg.norm(d @ Wn.T, axis=1), rtol=1e-10)
    fn = fgsm_latent_perturb(lambda t: model.encode(t).mean, x, eps, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(fn, res.x_adv)


@pytest.mark.parametrize("solver", ["pgd", "lbfgsb"])
def test_latent_space_attack_reaches_a_reachable_target(solver):
    W = _W(5)
    model = LinearAE(W, SHAPE)
    x, eps = _mid(2), 0.4
    g = np.random.default_rng(6)
    d_star = g.normal(size=(2, N))
    d_star *= 0.5 * eps / np.linalg.norm(d_star, axis=1, keepdims=True)
    # the target image differs from the reachable point by a null-space vector of W: same code,
    # but far outside the budget, so the attack must find d* (or its equivalents), not copy x_t
    _, _, vt = np.linalg.svd(W.numpy())
    null = vt[3:].T @ g.normal(size=(N - 3, 2))
    null = 0.6 * null / np.linalg.norm(null, axis=0)
    target = x + torch.from_numpy(d_star + null.T).reshape(2, *SHAPE)
    assert float(target.min()) >= 0 and float(target.max()) <= 1
    assert torch.all((target - x).reshape(2, -1).norm(dim=1) > eps)
    res = LatentSpaceAttack(model, generator=torch.Generator().manual_seed(0), eps=eps, steps=200, restarts=2,
                            solver=solver)(x, target=target)
    if solver == "pgd":
        # fixed-length normalised steps circle the optimum within one step alpha = 2.5 eps / steps
        tol = np.linalg.svd(W.numpy(), compute_uv=False)[0] * 2.5 * eps / 200
    else:
        tol = 1e-6
    assert torch.all(res.objective <= tol)
    # the reported objective is the latent distance at x_adv, recomputed here
    torch.testing.assert_close(res.objective, (model.encode(res.x_adv).mean - model.encode(target).mean).norm(dim=1))


def _dense_top_eigvec(G):
    w, v = np.linalg.eigh(G)
    return w[::-1], v[:, ::-1]


@pytest.mark.parametrize("stochastic,curved", [(False, False), (True, False), (False, True), (True, True)])
def test_eigendirection_budget_step_is_top_eigenvector_and_reaches_analytic_change(stochastic, curved):
    W = _W(7)
    V = _W(8, scale=0.5) if stochastic else None
    D = _W(9, d=5, n=3) if curved else None
    model = LinearAE(W, SHAPE, V=V, c=3.0, D=D)
    Wn = W.numpy()
    S = D.numpy().T @ D.numpy() if curved else np.eye(3)
    G = Wn.T @ S @ Wn + (V.numpy().T @ S @ V.numpy() if stochastic else 0)
    lam, vec = _dense_top_eigvec(G)
    eps = 0.2
    x = _mid()
    res = EigendirectionAttack(model, eps=eps, curved=curved)(x)
    step = (res.x_adv - x).reshape(3, -1).numpy()
    np.testing.assert_allclose(np.linalg.norm(step, axis=1), eps, rtol=1e-9)
    np.testing.assert_allclose(np.abs(step @ vec[:, 0]) / eps, 1.0, rtol=1e-8)
    np.testing.assert_allclose(res.extra["eigenvalues"][:, 0].numpy(), lam[0], rtol=1e-8)
    np.testing.assert_allclose(res.objective.numpy(), eps * np.linalg.norm(Wn @ vec[:, 0]), rtol=1e-8)
    if not stochastic and not curved:
        # flat deterministic metric W^T W: the step is the top right singular vector, change eps * sigma_max
        _, s, vt = np.linalg.svd(Wn)
        np.testing.assert_allclose(res.objective.numpy(), eps * s[0], rtol=1e-10)
        np.testing.assert_allclose(np.abs(step @ vt[0]) / eps, 1.0, rtol=1e-8)


def test_eigendirection_paper_mode_curve_matches_closed_form():
    W = _W(10, scale=0.2)
    model = LinearAE(W, SHAPE, D=_W(11, d=N, n=3))  # image-shaped decoder output for the recon MSE
    _, s, _ = np.linalg.svd(W.numpy())
    x = _mid(2)
    atk = EigendirectionAttack(model, mode="paper", top_k=2, delta_min=0.05, delta_max=0.5, num_deltas=6)
    res = atk(x)
    deltas = np.logspace(np.log10(0.05), np.log10(0.5), 6)
    lam = s[:2] ** 2
    assert float(lam[0] * deltas[-1]) < 0.5  # no clamping at this grid: the curve is linear in delta
    # latent change of x + delta lambda_k v_k is delta * lambda_k * ||W v_k|| = delta * sigma_k^3
    expect = deltas[:, None] * (s[:2] ** 3)[None, :]
    np.testing.assert_allclose(res.extra["latent_change"].numpy(), np.repeat(expect[:, :, None], 2, axis=2),
                               rtol=1e-8)
    np.testing.assert_allclose(res.extra["deltas"].numpy(), deltas, rtol=1e-12)
    np.testing.assert_allclose(res.objective.numpy(), deltas[-1] * s[0] ** 3, rtol=1e-8)
    with pytest.raises(ValueError, match="paper"):
        atk.sweep(x, [0.1])
