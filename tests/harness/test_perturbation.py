"""Shared projection, random starts and the batched PGD engine, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from latentbench.perturbation import flat_norm, pgd, project, random_start


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_feasible_and_idempotent(norm):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 4, 4, generator=g)
    far = x + 3 * torch.randn(x.shape, generator=g)
    eps = 0.3
    p = project(x, far, eps, norm)
    assert p.min() >= 0 and p.max() <= 1
    assert (flat_norm(p - x, norm) <= eps + 1e-6).all()
    assert torch.allclose(project(x, p, eps, norm), p, atol=1e-6)
    inside = project(x, x + 0.001 * torch.randn(x.shape, generator=g), eps, norm)
    assert torch.allclose(project(x, inside, eps, norm), inside)


def test_linf_projection_is_the_exact_euclidean_projection():
    # For two boxes the Euclidean projection is coordinate-wise clipping: check against a brute-force grid.
    x = torch.tensor([[0.05, 0.5, 0.97]])
    y = torch.tensor([[-0.4, 0.62, 1.3]])
    p = project(x, y, 0.1, "linf")
    expect = np.clip(np.clip(y.numpy(), x.numpy() - 0.1, x.numpy() + 0.1), 0, 1)
    assert np.allclose(p.numpy(), expect)


def test_l2_random_start_is_uniform_in_the_ball():
    # Uniform in an n-ball: P(||d|| <= eps * t) = t^n, so (||d|| / eps)^n ~ U(0, 1).
    n, eps = 5, 0.1
    x = torch.full((4000, n), 0.5)  # centre of the box: clipping never binds
    d = random_start(x, eps, "l2", torch.Generator().manual_seed(1)) - x
    u = (flat_norm(d, "l2").double() / eps) ** n
    assert stats.kstest(u.numpy(), "uniform").pvalue > 0.01
    # direction is isotropic: mean of unit directions ~ 0
    dirs = d / flat_norm(d, "l2")[:, None]
    assert dirs.mean(0).abs().max() < 0.06
    # the biased U * eps radius would fail the same test
    biased = torch.rand(4000, generator=torch.Generator().manual_seed(2)).double() ** n
    assert stats.kstest(biased.numpy(), "uniform").pvalue < 1e-6


def test_linf_random_start_is_uniform_in_the_box():
    x = torch.full((3000, 2), 0.5)
    d = random_start(x, 0.2, "linf", torch.Generator().manual_seed(3)) - x
    assert stats.kstest((d[:, 0].double().numpy() + 0.2) / 0.4, "uniform").pvalue > 0.01


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_on_a_linear_objective_reaches_the_analytic_optimum(norm):
    # max_d w.d over the ball (box inactive at the centre): eps*||w||_2 (L2) or eps*||w||_1 (L-inf)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 10, generator=g)
    x = torch.full((3, 10), 0.5)
    eps = 0.2
    out = pgd(lambda xa, ww: ((xa - 0.5) * ww).sum(1), x, eps, norm, steps=30, step_size=eps / 5, restarts=2,
              generator=g, context=(w,))
    expect = eps * (w.norm(dim=1) if norm == "l2" else w.abs().sum(1))
    assert torch.allclose(out.objective, expect, rtol=1e-3)
    assert (flat_norm(out.x_adv - x, norm) <= eps + 1e-6).all()
    assert out.forward_passes == (30 + 2) * 2 and out.backward_passes == 30 * 2


def test_pgd_restarts_keep_the_best_per_input():
    # objective with two maxima; with many restarts every input finds the larger one
    x = torch.full((4, 1), 0.5)

    def f(xa):
        t = xa[:, 0] - 0.5
        return torch.where(t > 0, 2 * t, -t)

    one = pgd(f, x, 0.4, "linf", steps=5, step_size=0.1, restarts=1, generator=torch.Generator().manual_seed(0))
    many = pgd(f, x, 0.4, "linf", steps=5, step_size=0.1, restarts=8, generator=torch.Generator().manual_seed(0))
    assert (many.objective >= one.objective - 1e-7).all()
    assert torch.allclose(many.objective, torch.full((4,), 0.8))
