"""The threat model every attack shares: norms, projection onto ball ∩ box, random starts, restart
layout and the steepest-ascent direction.

One implementation for all attacks (and for models that attack themselves during training, such as
the smooth encoder and the robust autoencoders). Images live in [0, 1]; perturbations are kept
inside the box and the budget after every update (docs/methods.md §0). The optimisers that use these
pieces (batched PGD, L-BFGS-B) are in :mod:`latentbench.solvers`; the attack base class that ties
them to a config is :class:`latentbench.attack.Attack`.
"""

from __future__ import annotations

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
    onto the intersection (docs/methods.md §0); attacks report the achieved norm.
    """
    if norm == "linf" and isinstance(eps, (int, float)):
        # a clamp with number bounds is several times faster on CPU than minimum/maximum against a
        # tensor (or a clamp with tensor bounds), and gives the same values
        return (x + (x_adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)
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


def repeat_batch(t: Tensor, restarts: int) -> Tensor:
    """(B, ...) -> (R*B, ...) with restart r occupying rows r*B:(r+1)*B (restart-major)."""
    return t.repeat((restarts,) + (1,) * (t.dim() - 1))


def restart_starts(x: Tensor, eps: float, norm: str, restarts: int, random_init: bool,
                   generator: torch.Generator | None) -> Tensor:
    """(R*B, ...) starting points, restart-major, one :func:`random_start` draw per restart.

    Drawing per restart (rather than one draw of R*B rows) makes restart r start from the same point
    whatever R is, so with the same seed more restarts can never return a worse point than one
    (docs/methods.md §0). Without a random start (or with a zero budget) every restart starts at x.
    """
    if not random_init or eps <= 0:
        return repeat_batch(x, restarts).clone()
    return torch.cat([random_start(x, eps, norm, generator) for _ in range(restarts)], dim=0)


def ascent_direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm for the threat model (sign for L-inf, normalised for L2)."""
    if norm == "linf":
        return grad.sign()
    n = flat_norm(grad, "l2").clamp_min(1e-12)
    return grad / _bcast(n, grad)

