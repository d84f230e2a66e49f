"""APGD's step schedule and ``stop_at`` of :func:`latentbench.solvers.pgd`, against the paper's recursion
written here, closed-form optima on the L2 ball, and the same run without ``stop_at``."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from latentbench.perturbation import flat_norm
from latentbench.solvers import apgd_checkpoints, pgd


def paper_checkpoints(n_iter: int) -> list[int]:
    """Croce & Hein 2020 §3.2 in exact arithmetic: p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), w_j = ceil(p_j * N_iter) (checkpoints inside the run)."""
    p = [Fraction(0), Fraction(22, 100)]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - Fraction(3, 100), Fraction(6, 100))
        if nxt > 1:
            break
        p.append(nxt)
    return sorted({math.ceil(q * n_iter) for q in p} - {0, n_iter})


def test_paper_recursion_written_out():
    # the p_j by hand: 0, .22, .41, .57, .70, .80, .87, .93, .99 (then 1.05 > 1)
    assert paper_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


@pytest.mark.parametrize("n", [100, 1000, 200, 50, 37, 20, 10, 7, 3])
def test_apgd_checkpoints_follow_the_paper(n):
    assert apgd_checkpoints(n) == paper_checkpoints(n)


def _ball_setup(B=5, d=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(B, d, generator=g, dtype=dtype)  # interior: the box never binds for eps <= 0.3
    w = torch.randn(B, d, generator=g, dtype=dtype)
    return x, w, g


def test_apgd_reaches_the_linear_maximum_on_the_l2_ball():
    # max_{||d|| <= eps} w.(x + d) = w.x + eps ||w||, at d = eps w / ||w||
    x, w, g = _ball_setup()
    eps = 0.25
    out = pgd(lambda xa, ww: (xa * ww).sum(1), x, eps, "l2", steps=20, step_size=0.0, restarts=2,
              generator=g, context=(w,), schedule="apgd")
    expect_x = x + eps * w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out.objective, (x * w).sum(1) + eps * w.norm(dim=1), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(out.x_adv, expect_x, rtol=0, atol=1e-3)  # objective error ~ angle^2
    assert bool((flat_norm(out.x_adv - x, "l2") <= eps * (1 + 1e-9)).all())


@pytest.mark.parametrize("inside", [False, True])
def test_apgd_reaches_the_maximum_of_a_concave_quadratic(inside):
    # f(x') = -||x' - c||^2: the maximiser on the ball is c itself (c inside), else the ball's point
    # nearest c, x + eps (c - x)/||c - x||. Inside, the 2 eps first step overshoots: only the step
    # halving at the checkpoints brings the iterates to c.
    x, w, g = _ball_setup(seed=1)
    eps = 0.2
    direction = w / w.norm(dim=1, keepdim=True)
    c = x + (0.5 * eps if inside else 3 * eps) * direction
    out = pgd(lambda xa, cc: -(xa - cc).pow(2).sum(1), x, eps, "l2", steps=60, step_size=0.0, restarts=1,
              generator=g, context=(c,), schedule="apgd")
    best = c if inside else x + eps * direction
    expect = -(best - c).pow(2).sum(1)
    assert bool((out.objective <= expect + 1e-12).all())  # never above the maximum (feasibility)
    torch.testing.assert_close(out.objective, expect, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.x_adv, best, rtol=0, atol=2e-3)


def _stop_setup(dtype=torch.float64):
    # with f = w.(x' - x): rows 0, 1 can reach the threshold 1.0 (max eps ||w|| = 2.0), rows 2, 3 cannot (0.2)
    g = torch.Generator().manual_seed(3)
    B, d = 4, 9
    x = 0.3 + 0.4 * torch.rand(B, d, generator=g, dtype=dtype)
    w = torch.randn(B, d, generator=g, dtype=dtype)
    w = w / w.norm(dim=1, keepdim=True) * torch.tensor([10.0, 10.0, 1.0, 1.0], dtype=dtype)[:, None]
    return x, w


@pytest.mark.parametrize("schedule", ["apgd", "constant"])
def test_stop_at_drops_inputs_that_reach_it_and_leaves_the_others_unchanged(schedule):
    x, w = _stop_setup()
    eps, steps, R, every = 0.2, 40, 2, 10
    f = lambda xa, ww, xx: ((xa - xx) * ww).sum(1)  # noqa: E731  w.d: maximum eps ||w||

    def run(stop_at):
        return pgd(f, x, eps, "l2", steps=steps, step_size=eps / 4, restarts=R,
                   generator=torch.Generator().manual_seed(11), context=(w, x), schedule=schedule, stop_at=stop_at,
                   check_every=every)

    full, stopped = run(None), run(1.0)
    assert full.forward_per_input.tolist() == [R * (steps + 1)] * 4
    # the reaching rows leave at the first check (after `every` steps, all restarts): no final evaluation
    assert stopped.forward_per_input.tolist()[:2] == [R * every] * 2
    assert stopped.backward_per_input.tolist()[:2] == [R * every] * 2
    assert stopped.forward_per_input.tolist()[2:] == [R * (steps + 1)] * 2
    assert bool((stopped.objective[:2] >= 1.0).all())
    # the rows that never reach it: bit-for-bit the same run as without stop_at
    torch.testing.assert_close(stopped.x_adv[2:], full.x_adv[2:], rtol=0, atol=1e-12)
    torch.testing.assert_close(stopped.objective[2:], full.objective[2:], rtol=0, atol=1e-12)
    # and they are at their (box-free) maximum eps ||w||
    torch.testing.assert_close(full.objective, eps * w.norm(dim=1), rtol=1e-4, atol=1e-6)
    # the returned points of the dropped rows are the feasible points that reached the threshold
    assert bool((flat_norm(stopped.x_adv - x, "l2") <= eps * (1 + 1e-9)).all())
    torch.testing.assert_close(f(stopped.x_adv, w, x), stopped.objective, rtol=0, atol=1e-12)


def test_stop_at_with_every_input_done_stops_the_loop():
    x, w = _stop_setup()
    w = w[:2]
    x = x[:2]
    out = pgd(lambda xa, ww, xx: ((xa - xx) * ww).sum(1), x, 0.2, "l2", steps=100, step_size=0.0, restarts=3,
              generator=torch.Generator().manual_seed(0), context=(w, x), schedule="apgd", stop_at=1.0, check_every=5)
    assert out.forward_per_input.tolist() == [3 * 5] * 2 and out.forward_passes == 15


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        pgd(lambda xa: xa.sum(1), torch.zeros(1, 2), 0.1, "l2", steps=1, step_size=0.1, schedule="cosine")
