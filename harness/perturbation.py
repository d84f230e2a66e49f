"""Threat-model utilities shared by every attack: norms, projection, random starts, batched PGD.

One implementation for all attacks (and for models that attack themselves during training, such as
the smooth encoder and the robust autoencoders). Images live in [0, 1]; perturbations are kept
inside the box and the budget after every update (SPEC §0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

NORMS = ("linf", "l2")


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}': use one of {', '.join(NORMS)}")
    return norm


def flat_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample norm over all non-batch dimensions (all channels, in [0, 1] pixel units)."""
    flat = delta.reshape(delta.shape[0], -1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l2":
        return flat.norm(dim=1)
    raise ValueError(f"unknown norm '{norm}'")


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def project(x: Tensor, x_adv: Tensor, eps: float | Tensor, norm: str) -> Tensor:
    """Project ``x_adv`` onto {x + d : ||d|| <= eps} ∩ [0, 1]^n.

    L-inf: element-wise clamping is the exact projection onto the intersection of two boxes.
    L2: clip to the box, then rescale d into the ball. Rescaling x + d towards x keeps the point in
    the (convex) box, so the result is always feasible, although not the exact Euclidean projection
    onto the intersection (SPEC §0); attacks report the achieved norm.
    """
    eps_t = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
    if norm == "linf":
        e = _bcast(eps_t.expand(x.shape[0]), x) if eps_t.dim() else eps_t
        delta = torch.maximum(torch.minimum(x_adv - x, e), -e)
        return (x + delta).clamp(0.0, 1.0)
    if norm == "l2":
        delta = x_adv.clamp(0.0, 1.0) - x
        n = flat_norm(delta, "l2")
        e = eps_t.expand(x.shape[0]) if eps_t.dim() == 0 else eps_t
        scale = torch.where(n > e, e / n.clamp_min(1e-12), torch.ones_like(n))
        return x + delta * _bcast(scale, delta)
    raise ValueError(f"unknown norm '{norm}'")


def random_start(x: Tensor, eps: float | Tensor, norm: str, generator: torch.Generator | None = None) -> Tensor:
    """A point drawn uniformly from the eps-ball around each x, then made feasible for the box.

    L2 uses direction ~ N(0, I) normalised and radius eps * U^(1/n), which is uniform in the ball
    (``U * eps`` over-samples the centre; torchattacks issue #161).
    """
    shape = x.shape
    dev = x.device
    eps_t = torch.as_tensor(eps, dtype=x.dtype)
    eps_b = (eps_t.expand(shape[0]) if eps_t.dim() == 0 else eps_t.cpu()).to(torch.float64)
    if norm == "linf":
        u = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
        delta = u * eps_b.reshape((-1,) + (1,) * (len(shape) - 1))
    elif norm == "l2":
        n = int(torch.tensor(shape[1:]).prod())
        d = torch.randn(shape, generator=generator, dtype=torch.float64).reshape(shape[0], -1)
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        r = eps_b * torch.rand(shape[0], generator=generator, dtype=torch.float64) ** (1.0 / n)
        delta = (d * r[:, None]).reshape(shape)
    else:
        raise ValueError(f"unknown norm '{norm}'")
    return project(x, x + delta.to(dtype=x.dtype, device=dev), eps, norm)


def ascent_direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm for the threat model (sign for L-inf, normalised for L2)."""
    if norm == "linf":
        return grad.sign()
    n = flat_norm(grad, "l2").clamp_min(1e-12)
    return grad / _bcast(n, grad)


@dataclass
class PGDOutput:
    x_adv: Tensor  # (B, ...) best point per input over restarts and steps
    objective: Tensor  # (B,) objective at x_adv
    forward_passes: int  # per input
    backward_passes: int  # per input
    history: Tensor | None = None  # (steps + 1, B) best objective so far, when requested


def repeat_batch(t: Tensor, restarts: int) -> Tensor:
    """(B, ...) -> (R*B, ...) with restart r occupying rows r*B:(r+1)*B."""
    return t.repeat((restarts,) + (1,) * (t.dim() - 1))


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
) -> PGDOutput:
    """Projected gradient ascent (or descent) on a per-sample objective, restarts batched.

    ``objective(x_adv, *context)`` returns one value per row; ``context`` tensors share the batch
    dimension with ``x`` and are repeated with it, so restarts run as one batch of R*B rows. The
    best point per input over all restarts (and, with ``keep_best``, over all iterates) is returned.

    ``init`` (R*B rows, restart-major) replaces the random start; it is projected onto the feasible
    set first. Attacks draw one start per restart with :func:`random_start` so that restart r sees
    the same start whatever R is (restarts can then never do worse than a single start).
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
    vals = best_val.view(restarts, B)
    idx = vals.argmax(0)
    rows = idx * B + torch.arange(B, device=x.device)
    out_x = best_x[rows]
    out_val = sign * vals.max(0).values
    hist = torch.stack(history) * sign if record_history else None
    # fwd/bwd count batched calls; each call evaluates every restart of every input once
    return PGDOutput(out_x, out_val, fwd * restarts, bwd * restarts, hist)
