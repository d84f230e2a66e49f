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
    #: (B,) calls per input over its restarts, where inputs may leave early (``stop_at``)
    forward_per_input: Tensor | None = None
    backward_per_input: Tensor | None = None



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


#: step-size schedules of :func:`pgd`
SCHEDULES = ("constant", "apgd")

#: APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
#: diverse parameter-free attacks", §3): momentum, initial step 2 eps, step-halving test threshold
APGD_ALPHA = 0.75
APGD_RHO = 0.75


def apgd_checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD may halve its step: ceil(p_j * steps), p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (Croce & Hein 2020, §3.2)."""
    # exact arithmetic in hundredths: in floats 0.57 * 100 rounds up to 58 (ceil of 57.000...01)
    p = [0, 22]
    while p[-1] < 100:
        p.append(p[-1] + max(p[-1] - p[-2] - 3, 6))
    out = sorted({-(-q * int(steps) // 100) for q in p if q <= 100})
    return [w for w in out if 0 < w < steps]


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
    schedule: str = "constant",
    stop_at: float | None = None,
    check_every: int = 10,
) -> SolverOutput:
    """Projected gradient ascent (or descent) on a per-sample objective, restarts batched.

    ``schedule="constant"``: ``x_{t+1} = project(x_t + step_size * s_t)`` with ``s_t`` the sign of
    the gradient (L-inf) or the L2-normalised gradient (L2). ``schedule="apgd"``: APGD's update
    (Croce & Hein 2020): step 2 eps, momentum 0.75, and at the checkpoints of
    :func:`apgd_checkpoints` a row whose objective rose in fewer than 75% of the steps since the
    last checkpoint (or whose step and best value did not change) halves its step and restarts from
    its best point; ``step_size`` is then unused. The best point per input over all restarts (and,
    with ``keep_best``, over all iterates) is returned.

    ``stop_at``: an input is done once one of its restarts reaches an objective (in the maximised
    direction) >= ``stop_at``, e.g. a success bonus; every ``check_every`` steps the rows of done
    inputs leave the batch, so broken inputs stop costing forward passes. The step loop has no
    other host synchronisation: masks are applied with ``torch.where``.

    ``init`` (R*B rows, restart-major) replaces the random start; it is projected onto the feasible
    set first. Without ``init``, ``random_init`` draws all R*B starts at once; :func:`run_pgd`
    passes per-restart starts instead (see the module docstring) and is what attacks use.
    """
    check_norm(norm)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{schedule}': use one of {', '.join(SCHEDULES)}")
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
    n_rows = x_adv.shape[0]
    eps_f = float(eps)  # a number, not a tensor: see perturbation.project
    bshape = (-1,) + (1,) * (x.dim() - 1)
    apgd = schedule == "apgd"
    checkpoints = set(apgd_checkpoints(steps)) if apgd else set()

    # The working state holds the rows still being optimised, restart-major, in their original order
    # (R * B' rows for the B' inputs not done yet). When inputs reach ``stop_at`` their rows are
    # written to the output buffers and every working tensor is compacted once, at the check, so the
    # steps themselves do no gather or scatter. Every row sees the same arithmetic, in the same batch
    # composition, as without compaction.
    best_val = torch.full((n_rows,), -float("inf"), dtype=x.dtype, device=x.device)
    best_x = x_adv.clone()
    fwd = torch.zeros(n_rows, dtype=torch.long, device=x.device)
    bwd = torch.zeros(n_rows, dtype=torch.long, device=x.device)
    ids: Tensor | None = None  # original row of each working row; None while no row has left
    out: dict[str, Tensor] = {}  # output buffers (all n_rows), created at the first compaction
    history = [] if record_history else None
    nb = B  # inputs in the working set
    pending = 0  # steps since fwd/bwd were last brought up to date (the same for every working row)

    # APGD per-row state
    if apgd:
        eta = torch.full((n_rows,), 2.0 * float(eps), dtype=x.dtype, device=x.device)
        x_prev = x_adv.clone()
        prev_val = torch.full((n_rows,), -float("inf"), dtype=x.dtype, device=x.device)
        n_up = torch.zeros(n_rows, dtype=torch.long, device=x.device)
        last_ck, eta_at_ck = 0, eta.clone()
        best_at_ck = best_val.clone()

    def flush() -> dict[str, Tensor]:
        """Output buffers with the working rows' current results written in."""
        if ids is None:
            return {"val": best_val, "x": best_x, "fwd": fwd, "bwd": bwd}
        for key, t in (("val", best_val), ("x", best_x), ("fwd", fwd), ("bwd", bwd)):
            out[key].index_copy_(0, ids, t)
        return out

    for t in range(steps):
        xa = x_adv.detach().requires_grad_(True)
        val = sign * objective(xa, *ctx)
        (grad,) = torch.autograd.grad(val.sum(), xa)
        with torch.no_grad():
            val = val.detach()
            xa = xa.detach()
            pending += 1  # every working row was evaluated once more; counted into fwd/bwd lazily
            if keep_best or t == 0:
                better = val > best_val
                best_val = torch.where(better, val, best_val)
                best_x = select_rows(better.view(bshape), xa, best_x)
            d = ascent_direction(grad, norm)
            if not apgd:
                x_adv = project(xr, xa + step_size * d, eps_f, norm)
            else:
                n_up = n_up + (val > prev_val).long()
                z = project(xr, xa + eta.view(bshape) * d, eps_f, norm)
                alpha = APGD_ALPHA if t > 0 else 1.0
                x_new = project(xr, xa + alpha * (z - xa) + (1 - alpha) * (xa - x_prev), eps_f, norm)
                x_prev = xa
                if (t + 1) in checkpoints:
                    span = t + 1 - last_ck
                    cond1 = n_up.to(x.dtype) < APGD_RHO * span
                    cond2 = (eta == eta_at_ck) & (best_val <= best_at_ck)
                    halve = cond1 | cond2
                    eta_at_ck = eta  # the step before this checkpoint's decision: cond2 asks "not halved last time"
                    eta = torch.where(halve, eta / 2, eta)
                    # restart a halved row from its best point (momentum reset there)
                    x_new = torch.where(halve.view(bshape), best_x, x_new)
                    x_prev = torch.where(halve.view(bshape), best_x, x_prev)
                    n_up = torch.zeros_like(n_up)
                    best_at_ck = best_val
                    last_ck = t + 1
                prev_val = val
                x_adv = x_new
            if record_history:
                history.append(flush()["val"].view(restarts, B).amax(0))
            if stop_at is not None and (t + 1) % check_every == 0:
                done_in = (best_val >= stop_at).view(restarts, nb).any(0)  # one host sync per check
                keep_in = torch.nonzero(~done_in).flatten()
                if keep_in.numel() < nb:
                    fwd, bwd, pending = fwd + pending, bwd + pending, 0
                    if not out:
                        out = {"val": best_val.clone(), "x": best_x.clone(), "fwd": fwd.clone(), "bwd": bwd.clone()}
                    flush()
                    keep = (keep_in + nb * torch.arange(restarts, device=x.device)[:, None]).flatten()
                    ids = keep if ids is None else ids[keep]
                    nb = keep_in.numel()
                    best_val, best_x, fwd, bwd = best_val[keep], best_x[keep], fwd[keep], bwd[keep]
                    x_adv, xr = x_adv[keep], xr[keep]
                    ctx = [c[keep] for c in ctx]
                    if apgd:
                        eta, x_prev, prev_val, n_up = eta[keep], x_prev[keep], prev_val[keep], n_up[keep]
                        eta_at_ck, best_at_ck = eta_at_ck[keep], best_at_ck[keep]
                    if nb == 0:  # every input is done: nothing left to evaluate
                        break
    # the last iterate (or the start, with no steps) has not been evaluated yet; no rows are left
    # when every input reached stop_at
    fwd, bwd = fwd + pending, bwd + pending
    if x_adv.shape[0]:
        with torch.no_grad():
            final = sign * objective(x_adv, *ctx)
            fwd = fwd + 1
            if keep_best or steps == 0:
                better = final > best_val
                best_val = torch.where(better, final, best_val)
                best_x = select_rows(better.view(bshape), x_adv, best_x)
            else:
                best_val, best_x = final, x_adv
    res = flush()
    if record_history:
        history.insert(0, history[0] if history else res["val"].view(restarts, B).amax(0))
    pick = best_of_restarts(res["val"], restarts)
    hist = torch.stack(history) * sign if record_history else None
    # fwd/bwd: calls per input, summed over its restarts (mean over inputs when inputs left early)
    f_in = res["fwd"].view(restarts, B).sum(0)
    b_in = res["bwd"].view(restarts, B).sum(0)
    return SolverOutput(res["x"][pick], sign * res["val"][pick], int(f_in.max()), int(b_in.max()), hist,
                        forward_per_input=f_in, backward_per_input=b_in)


def select_rows(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``torch.where(mask, a, b)`` for a row mask broadcast over rows of finite values.

    On CPU ``torch.where`` with a broadcast boolean mask costs about four element-wise passes;
    ``lerp(b, a, w)`` with weights 0 or 1 costs one and is exact: ATen evaluates it as
    ``b + w * (a - b)`` for w < 0.5 and ``a - (a - b) * (1 - w)`` otherwise, i.e. ``b + 0`` or ``a - 0``.
    """
    return torch.lerp(b, a, mask.to(a.dtype))


def run_pgd(objective: Callable[..., Tensor], x: Tensor, *, eps: float, norm: str, steps: int,
            step_size: float | None, restarts: int, random_init: bool, generator: torch.Generator | None,
            context: Sequence[Tensor] = (), maximize: bool = True, keep_best: bool = True,
            schedule: str = "constant", stop_at: float | None = None) -> SolverOutput:
    """:func:`pgd` with per-restart random starts and the default step size (``step_size`` None)."""
    init = restart_starts(x, eps, norm, restarts, random_init, generator)
    return pgd(objective, x, eps, norm, steps, default_step_size(eps, steps, step_size), restarts=restarts,
               random_init=False, generator=generator, context=context, maximize=maximize,
               keep_best=keep_best, init=init, schedule=schedule, stop_at=stop_at)


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
