"""Solvers shared by the built-in attacks: batched-restart PGD (through latentbench.perturbation) and a
batched L-BFGS-B (scipy) whose every evaluated point is feasible.

Restarts are an extra batch dimension (R*B rows, restart-major). Each restart's start is drawn with
its own call to :func:`latentbench.perturbation.random_start`, so restart r starts from the same point
whatever the number of restarts: more restarts can never return a worse point than one start with
the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import Bounds, minimize
from torch import Tensor

from latentbench.errors import NonFiniteError
from latentbench.perturbation import PGDOutput, pgd, project, random_start, repeat_batch

SOLVERS = ("pgd", "lbfgsb")


def default_step_size(eps: float, steps: int, step_size: float | None) -> float:
    """PGD step: 2.5 * eps / steps unless given (Madry et al.; 001 §3.1 and SPEC §2)."""
    if step_size is not None:
        return float(step_size)
    return 2.5 * float(eps) / max(int(steps), 1)


def restart_starts(x: Tensor, eps: float, norm: str, restarts: int, random_init: bool,
                   generator: torch.Generator | None) -> Tensor:
    """(R*B, ...) starting points, restart-major, one :func:`random_start` draw per restart."""
    if not random_init or eps <= 0:
        return repeat_batch(x, restarts).clone()
    return torch.cat([random_start(x, eps, norm, generator) for _ in range(restarts)], dim=0)


def check_finite(attack: str, values: Tensor) -> None:
    if not bool(torch.isfinite(values).all()):
        raise NonFiniteError(
            f"attack '{attack}' produced a non-finite objective; check the model for NaN/inf outputs "
            f"(e.g. a log of zero std) on perturbed inputs")


def run_pgd(objective: Callable[..., Tensor], x: Tensor, *, eps: float, norm: str, steps: int,
            step_size: float | None, restarts: int, random_init: bool, generator: torch.Generator | None,
            context: Sequence[Tensor] = (), maximize: bool = True, keep_best: bool = True) -> PGDOutput:
    """latentbench.perturbation.pgd with per-restart random starts and the default step size."""
    init = restart_starts(x, eps, norm, restarts, random_init, generator)
    return pgd(objective, x, eps, norm, steps, default_step_size(eps, steps, step_size), restarts=restarts,
               random_init=False, generator=generator, context=context, maximize=maximize,
               keep_best=keep_best, init=init)


@dataclass
class _Best:
    score: Tensor  # (R*B,) best score so far (larger is better)
    x: Tensor  # (R*B, ...) feasible point achieving it


def run_lbfgsb(objective: Callable[..., Tensor], x: Tensor, *, eps: float, norm: str, steps: int,
               restarts: int, random_init: bool, generator: torch.Generator | None,
               context: Sequence[Tensor] = (), maximize: bool = True) -> PGDOutput:
    """L-BFGS-B (scipy) on the objective summed over all rows of all restarts.

    Variables are pixels v with box bounds [0, 1] (L-BFGS-B's own bounds). The budget is kept by a
    parametrisation: the evaluated point is ``project(x, v)`` (for L2 a radial rescale of v - x into
    the ball, for L-inf a clamp), so every point the objective sees is inside box and budget, and
    the returned point is the final rescale of the best v. Outside the ball the objective depends
    only on the direction of v - x, so v would drift outwards until it hits the pixel bounds, which
    would then wrongly constrain the direction; a penalty rho * (dist(v, ball) / eps)^2 pulls it back.
    The penalty's gradient is normal to the ball and vanishes on it, so it does not move the
    constrained optima; rho is the mean |objective| at the start (only the conditioning depends on it). The rows are independent, so minimising
    the sum minimises each row; only the line search is shared (003 §5.4's reference evaluation
    optimised a batch the same way). ``steps`` is L-BFGS-B's ``maxiter``; the best evaluated point
    per input over all iterations and restarts is returned.
    """
    B = x.shape[0]
    x = x.detach()
    xr = repeat_batch(x, restarts)
    ctx = [repeat_batch(c.detach(), restarts) for c in context]
    v0 = restart_starts(x, eps, norm, restarts, random_init, generator)
    shape, dtype, dev = xr.shape, x.dtype, x.device
    sign = 1.0 if maximize else -1.0
    best = _Best(score=torch.full((xr.shape[0],), -float("inf"), dtype=dtype, device=dev), x=xr.clone())
    calls = [0]
    rho = [0.0]

    def fun(v_np: np.ndarray) -> tuple[float, np.ndarray]:
        v = torch.from_numpy(v_np).to(device=dev, dtype=dtype).view(shape).requires_grad_(True)
        xa = project(xr, v, eps, norm)
        score = sign * objective(xa, *ctx)
        if calls[0] == 0:
            rho[0] = float(score.detach().abs().mean()) + 1e-12
        outside = (v - xa).reshape(v.shape[0], -1).norm(dim=1) / max(eps, 1e-12)
        loss = -score.sum() + rho[0] * outside.pow(2).sum()
        (grad,) = torch.autograd.grad(loss, v)
        calls[0] += 1
        with torch.no_grad():
            s = score.detach()
            check_finite("lbfgsb", s)
            better = s > best.score
            best.score = torch.where(better, s, best.score)
            best.x[better] = xa.detach()[better]
        return float(loss.detach()), grad.detach().to(torch.float64).cpu().numpy().ravel()

    n = int(np.prod(shape))
    if steps > 0 and eps > 0:
        minimize(fun, v0.detach().to(torch.float64).cpu().numpy().ravel(), jac=True, method="L-BFGS-B",
                 bounds=Bounds(np.zeros(n), np.ones(n)),
                 # run to the iteration budget: the summed objective is float32, tolerances would stop early
                 options={"maxiter": int(steps), "maxfun": 2 * int(steps) + 10, "ftol": 1e-15, "gtol": 1e-12})
    else:
        with torch.enable_grad():
            fun(v0.detach().to(torch.float64).cpu().numpy().ravel())
    scores = best.score.view(restarts, B)
    idx = scores.argmax(0)
    rows = idx * B + torch.arange(B, device=dev)
    return PGDOutput(best.x[rows], sign * scores.max(0).values, calls[0] * restarts, calls[0] * restarts)
