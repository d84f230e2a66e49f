"""The threat model: projection, random starts and the restart layout, against independent computations
(the solvers that use them are tested in test_solvers.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from latentbench.perturbation import flat_norm, project, random_start, repeat_batch, restart_starts


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


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_restart_starts_draw_once_per_restart_restart_major(norm):
    # restart r gets the r-th random_start draw, whatever the number of restarts (docs/methods.md §0)
    x = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(4)
    draws = [random_start(x, 0.2, norm, g) for _ in range(4)]
    for R in (1, 2, 4):
        s = restart_starts(x, 0.2, norm, R, True, torch.Generator().manual_seed(4))
        assert s.shape == (R * 3, 1, 2, 2)
        assert torch.equal(s, torch.cat(draws[:R]))
    assert torch.equal(restart_starts(x, 0.2, norm, 2, False, None), repeat_batch(x, 2))
    assert torch.equal(restart_starts(x, 0.0, norm, 2, True, torch.Generator()), repeat_batch(x, 2))
