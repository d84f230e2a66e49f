"""The solvers: batched PGD and L-BFGS-B on per-row objectives, against closed forms."""

from __future__ import annotations

import pytest
import torch

from latentbench.perturbation import flat_norm, random_start
from latentbench.solvers import best_of_restarts, default_step_size, pgd, run_lbfgsb, run_pgd


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
    assert out.forward_passes == (30 + 1) * 2 and out.backward_passes == 30 * 2


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


def test_run_pgd_restart_r_starts_where_the_r_th_random_start_draw_is():
    # with steps=0 the points returned are the starts: the best of R one-per-restart draws per input
    x = torch.full((5, 4), 0.5, dtype=torch.float64)
    w = torch.randn(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = run_pgd(lambda xa: xa @ w, x, eps=0.3, norm="l2", steps=0, step_size=None, restarts=3, random_init=True,
                  generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    starts = torch.stack([random_start(x, 0.3, "l2", g) for _ in range(3)])
    torch.testing.assert_close(out.objective, (starts @ w).max(0).values, rtol=0, atol=1e-12)
    assert out.forward_passes == 1 * 3 and out.backward_passes == 0  # the start, evaluated once


def test_default_step_size_and_best_of_restarts():
    assert default_step_size(0.4, 10, None) == 2.5 * 0.4 / 10  # Madry et al.'s 2.5 eps / steps
    assert default_step_size(0.4, 0, None) == 2.5 * 0.4  # no division by zero steps
    assert default_step_size(0.4, 10, 0.01) == 0.01
    assert default_step_size(0.4, 1, None, factor=1.25) == 1.25 * 0.4
    scores = torch.tensor([1.0, 5.0, 3.0, 2.0, 0.0, 4.0])  # R = 3 restarts of B = 2 inputs, restart-major
    assert best_of_restarts(scores, 3).tolist() == [2, 1]


@pytest.mark.parametrize("maximize", [True, False])
def test_lbfgsb_on_a_linear_objective_reaches_the_l2_optimum_and_stays_feasible(maximize):
    # max (min) w.d over the L2 ball at the centre of the box: +-eps * ||w||
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 10, generator=g, dtype=torch.float64)
    x = torch.full((3, 10), 0.5, dtype=torch.float64)
    eps = 0.2
    out = run_lbfgsb(lambda xa, ww: ((xa - 0.5) * ww).sum(1), x, eps=eps, norm="l2", steps=50, restarts=2,
                     random_init=True, generator=g, context=(w,), maximize=maximize)
    expect = eps * w.norm(dim=1) * (1 if maximize else -1)
    torch.testing.assert_close(out.objective, expect, rtol=1e-6, atol=0)
    assert (flat_norm(out.x_adv - x, "l2") <= eps * (1 + 1e-12)).all()


def test_select_rows_is_exactly_torch_where():
    # the keep-best update replaces torch.where by a 0/1 lerp for speed; it must give the same bits
    from latentbench.solvers import select_rows

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        a = torch.rand((64, 3, 5, 5), generator=g, dtype=dtype)
        b = torch.rand((64, 3, 5, 5), generator=g, dtype=dtype)
        a[0], b[1] = 0.0, 1.0  # box edges
        a[2], b[2] = 1e-30, 1.0 - 1e-7  # far apart in magnitude
        b[3] = a[3]
        mask = torch.rand(64, generator=g) > 0.5
        mask[:4] = torch.tensor([True, False, True, True])
        m = mask.view(-1, 1, 1, 1)
        assert torch.equal(select_rows(m, a, b), torch.where(m, a, b))
        assert torch.equal(select_rows(m, a, b).view(torch.int64 if dtype == torch.float64 else torch.int32),
                           torch.where(m, a, b).view(torch.int64 if dtype == torch.float64 else torch.int32))
