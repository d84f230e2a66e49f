"""Optimisers over the threat model of :mod:`latentbench.perturbation`: batched-restart PGD and a
batched L-BFGS-B (scipy) whose every evaluated point is feasible.

Both maximise (or minimise) a per-row objective ``objective(x_adv, *context) -> (rows,)``. Restarts
are an extra batch dimension (R*B rows, restart-major); ``context`` tensors share the batch
dimension with ``x`` and are repeated with it. :func:`run_pgd` and :func:`run_lbfgsb` draw each
restart's start with its own :func:`latentbench.perturbation.random_start` call
(:func:`~latentbench.perturbation.restart_starts`), so restart r starts from the same point whatever
the number of restarts: more restarts can never return a worse point than one start with the same
seed. :class:`latentbench.attack.Attack` runs them with its config's settings; use this module
directly only outside an attack (e.g. a model that attacks itself during training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from latentbench.errors import NonFiniteError
from latentbench.perturbation import ascent_direction, check_norm, project, random_start, repeat_batch, restart_starts

#: values of the ``solver`` field of :class:`latentbench.attack.SolverAttackConfig`
SOLVERS = ("pgd", "lbfgsb")

#: default PGD step relative to eps / steps (Madry et al.; Cemgil et al. §3.1, docs/methods.md §2)
PGD_STEP_FACTOR = 2.5


@dataclass
class SolverOutput:
    x_adv: Tensor  # (B, ...) best point per input over restarts and steps
    objective: Tensor  # (B,) objective at x_adv
    forward_passes: int  # per input
    backward_passes: int  # per input
    history: Tensor | None = None  # (steps + 1, B) best objective so far, when requested



def default_step_size(eps: float, steps: int, step_size: float | None, factor: float = PGD_STEP_FACTOR) -> float:
    """``step_size`` if given, else ``factor * eps / steps`` (2.5: Madry et al.'s PGD step, docs/methods.md §2)."""
    if step_size is not None:
        return float(step_size)
    return factor * float(eps) / max(int(steps), 1)


def best_of_restarts(scores: Tensor, restarts: int) -> Tensor:
    """Rows (B,) of the best restart per input in restart-major (R*B,) ``scores`` (larger is better)."""
    B = scores.shape[0] // restarts
    idx = scores.view(restarts, B).argmax(0)
    return idx * B + torch.arange(B, device=scores.device)


def check_finite(label: str, values: Tensor) -> None:
    """Raise :class:`NonFiniteError` naming ``label`` (the attack or solver) if ``values`` has NaN/inf."""
    if not bool(torch.isfinite(values).all()):
        raise NonFiniteError(
            f"attack '{label}' produced a non-finite objective; check the model for NaN/inf outputs "
            f"(e.g. a log of zero std) on perturbed inputs")


def pgd(
    objective: Callable[..., Tensor],
    x: Tensor,
    eps: float,
    norm: str,
    steps: int,
    step_size: float,
    restarts: int = 1,
    random_init: bool = True,
    generator: torch.Generator | None = None,
    context: Sequence[Tensor] = (),
    maximize: bool = True,
    keep_best: bool = True,
    record_history: bool = False,
    init: Tensor | None = None,
) -> SolverOutput:
    """Projected gradient ascent (or descent) on a per-sample objective, restarts batched.

    ``x_{t+1} = project(x_t + step_size * s_t)`` with ``s_t`` the sign of the gradient (L-inf) or
    the L2-normalised gradient (L2). The best point per input over all restarts (and, with
    ``keep_best``, over all iterates) is returned.

    ``init`` (R*B rows, restart-major) replaces the random start; it is projected onto the feasible
    set first. Without ``init``, ``random_init`` draws all R*B starts at once; :func:`run_pgd`
    passes per-restart starts instead (see the module docstring) and is what attacks use.
    """
    check_norm(norm)
    B = x.shape[0]
    x = x.detach()
    xr = repeat_batch(x, restarts)
    ctx = [repeat_batch(c.detach(), restarts) for c in context]
    sign = 1.0 if maximize else -1.0
    if init is not None:
        if init.shape != xr.shape:
            raise ValueError(f"init must have shape {tuple(xr.shape)} (restarts * batch rows), got {tuple(init.shape)}")
        x_adv = project(xr, init.detach().to(device=x.device, dtype=x.dtype), eps, norm)
    elif random_init and eps > 0:
        x_adv = random_start(xr, eps, norm, generator)
    else:
        x_adv = xr.clone()

    def evaluate(z: Tensor) -> Tensor:
        return objective(z, *ctx)

    with torch.no_grad():
        best_val = sign * evaluate(x_adv).detach()
    best_x = x_adv.clone()
    fwd, bwd = 1, 0
    history = [best_val.view(restarts, B).amax(0)] if record_history else None
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        val = sign * evaluate(x_adv)
        (grad,) = torch.autograd.grad(val.sum(), x_adv)
        fwd += 1
        bwd += 1
        with torch.no_grad():
            if keep_best:
                better = val.detach() > best_val
                best_val = torch.where(better, val.detach(), best_val)
                best_x[better] = x_adv.detach()[better]
            x_adv = project(xr, x_adv.detach() + step_size * ascent_direction(grad, norm), eps, norm)
        if record_history:
            history.append(best_val.view(restarts, B).amax(0))
    with torch.no_grad():
        final = sign * evaluate(x_adv)
        fwd += 1
        if keep_best:
            better = final > best_val
            best_val = torch.where(better, final, best_val)
            best_x[better] = x_adv[better]
        else:
            best_val, best_x = final, x_adv
    rows = best_of_restarts(best_val, restarts)
    hist = torch.stack(history) * sign if record_history else None
    # fwd/bwd count batched calls; each call evaluates every restart of every input once
    return SolverOutput(best_x[rows], sign * best_val[rows], fwd * restarts, bwd * restarts, hist)


def run_pgd(objective: Callable[..., Tensor], x: Tensor, *, eps: float, norm: str, steps: int,
            step_size: float | None, restarts: int, random_init: bool, generator: torch.Generator | None,
            context: Sequence[Tensor] = (), maximize: bool = True, keep_best: bool = True) -> SolverOutput:
    """:func:`pgd` with per-restart random starts and the default step size (``step_size`` None)."""
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
               context: Sequence[Tensor] = (), maximize: bool = True) -> SolverOutput:
    """L-BFGS-B (scipy) on the objective summed over all rows of all restarts.

    Variables are pixels v with box bounds [0, 1] (L-BFGS-B's own bounds). The budget is kept by a
    parametrisation: the evaluated point is ``project(x, v)`` (for L2 a radial rescale of v - x into
    the ball, for L-inf a clamp), so every point the objective sees is inside box and budget, and
    the returned point is the final rescale of the best v. Outside the ball the objective depends
    only on the direction of v - x, so v would drift outwards until it hits the pixel bounds, which
    would then wrongly constrain the direction; a penalty rho * (dist(v, ball) / eps)^2 pulls it back.
    The penalty's gradient is normal to the ball and vanishes on it, so it does not move the
    constrained optima; rho is the mean |objective| at the start (only the conditioning depends on
    it). The rows are independent, so minimising the sum minimises each row; only the line search is
    shared (the reference evaluation of Saseendran (thesis) §5.4 optimised a batch the same way).
    ``steps`` is L-BFGS-B's ``maxiter``; the best evaluated point per input over all iterations and
    restarts is returned.
    """
    # scipy is imported here, not at module level: only this solver needs it, and `import latentbench`
    # should not pay for scipy.optimize
    from scipy.optimize import Bounds, minimize

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
    rows = best_of_restarts(best.score, restarts)
    return SolverOutput(best.x[rows], sign * best.score[rows], calls[0] * restarts, calls[0] * restarts)
