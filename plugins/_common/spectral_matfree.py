"""Top eigenvalues and von Neumann entropy of the pullback metric G_x from Jacobian-vector products only
(Khan & Storkey §3.1-3.2, App. B; docs/methods.md §3 "matrix-free spectrum").

:mod:`latentbench.plugins._common.spectral` forms the encoder Jacobian A (2d x N per sample) with
``vmap(jacrev)``; its peak memory is the reverse pass run for all 2d rows at once, i.e. 2d copies of
every activation per sample, which for a 3x64x64 conv encoder is gigabytes per chunk. Here G_x = A^T A
is only ever applied to vectors:

    G_x v = J_h^T  blockdiag(G_z, G_z)  J_h v,   h(x) = [mu(x); sigma(x)]  (or mu(x) alone),

J_h^T w a reverse pass and J_h v the reverse pass of that reverse pass (``_linear_maps``), over one
forward pass of the whole chunk, and for the decoder-curved metric (G_z = J_g^T J_g at z = mu(x)) one
more such pair through the decoder. The chunk is one batch in eval mode ("batched rows": its
Jacobian is block diagonal, so the products are the per-sample ones). Peak memory per sample is one
forward graph plus the Krylov basis (k vectors of the space Lanczos runs in, see ``_Operator``).

**Top eigenvalues: Lanczos with full reorthogonalisation** (Golub & Van Loan, "Matrix Computations",
§10.1-10.3), k steps, every new vector orthogonalised twice against all previous ones ("twice is
enough"), batched over samples in lockstep. Chosen over a randomised block method (randomised
subspace iteration) because for the same number of products with G the Krylov space K_k(G, q) contains
the block method's power-iteration space of the same size and its top Ritz values converge at the
Chebyshev rate instead of the power rate; the block method's advantage, many products in one call,
we already get from batching the samples. Full reorthogonalisation costs O(k^2 N) per sample,
negligible beside k encoder passes, and removes Lanczos's ghost eigenvalues. For the flat metric with
2d <= N it runs on A A^T (2d x 2d, the same non-zero eigenvalues, no null space; ``_Operator``); below,
"G" is whichever operator it runs on. The start vector is
G g (g Rademacher), which lies in the range of G: when G has rank r <= k with distinct eigenvalues
the Krylov space reaches the whole range after r steps and every non-zero eigenvalue is exact to
round-off. When a step breaks down (the Krylov space is invariant: beta below ``breakdown_tol``) the
next vector is G applied to a fresh random one, orthogonalised against the basis, and the coupling is set to 0
(this also finds further copies of a repeated eigenvalue, which one Krylov space cannot hold).
Each Ritz value theta_i carries the residual bound rho_i = |beta_k y_{k,i}|: an eigenvalue of G lies
within rho_i of theta_i.

**Entropy estimator** (``MatfreeSpectrum.entropy``). With h the converged head (the leading Ritz
values whose residual is <= ``CONVERGED_RTOL`` * theta_1) and the trace of G estimated as

    T^ = tr(Q^T G Q) + (1/m) sum_j ||A P g_j||^2,   P = I - Q Q^T, g_j Rademacher,

(Hutchinson's estimator on the part of G the Krylov basis Q does not hold, as in Hutch++, Meyer,
Musco, Musco & Woodruff 2021; unbiased for tr G, exact when Q holds the range of G), the normalised
head p_i = theta_i / D (D = T^ for ``trace``, theta_1 for ``max``) is exact and the tail carries the
mass t = (T^ - sum_head theta) / D over at most r - h eigenvalues (r = min(rows of A, N)), each at most
c = p_h. Of all tails with that mass and cap, the entropy is largest when the mass is spread evenly
(U = -t log(t / (r - h))) and smallest when it is packed at the cap (L = -q c log c - s log s,
q = floor(t / c), s = t - q c). The estimate is head entropy + (L + U) / 2; its **bias is at most
(U - L) / 2** (stated per sample as ``error``), plus the trace noise: the Hutchinson variance is
2 (||M||_F^2 - sum_i M_ii^2) / m for M = P G P, and its effect is bounded by re-evaluating the
estimate at T^ +- 3 standard errors (the probes' sample standard error) and adding the larger
change. When Q holds the whole range (k > r) t is round-off and the estimate equals the dense entropy.
Assumed, not checked: the converged head holds the *top* h eigenvalues (Lanczos from a random start
finds the extremes first; a missed copy of a repeated top eigenvalue would break the cap c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from latentbench.attack import frozen
from latentbench.errors import LatentBenchError
from latentbench.plugins._common.spectral import xlogx

#: a Ritz value counts as converged when its residual bound is at most this times the largest Ritz
#: value; the same bound is its error (the head eigenvalues of the entropy estimator)
CONVERGED_RTOL = {torch.float64: 1e-9, torch.float32: 1e-4}
#: Lanczos steps when the caller gives none: enough for an exact spectrum up to rank 127, the
#: cost of 128 operator products (two reverse passes each) above that
MAX_DEFAULT_STEPS = 128
#: Hutchinson probes for the tail trace when the caller gives none
DEFAULT_PROBES = 16


@dataclass
class MatfreeSpectrum:
    """Lanczos estimate of the spectrum of G_x for a batch of B inputs.

    ``eigenvalues``: (B, k) Ritz values, descending, >= 0 (the leading ones are the top eigenvalues of
    G_x, each within ``residuals`` of one). ``trace``/``trace_se``: (B,) estimate of tr G_x and its
    standard error (0 when no probes). ``rank_bound``: r = min(rows of A, N). ``steps``/``probes``: k, m.
    """

    eigenvalues: Tensor
    residuals: Tensor
    trace: Tensor
    trace_se: Tensor
    rank_bound: int
    steps: int
    probes: int
    stochastic: bool = False
    curved: bool = False
    #: the space Lanczos ran in: ``rows`` (A A^T) or ``input`` (G_x), see _Operator
    side: str = "input"

    @property
    def spectral_radius(self) -> Tensor:
        return self.eigenvalues[:, 0]

    def converged(self) -> Tensor:
        """(B,) number of leading Ritz values whose residual is within CONVERGED_RTOL of theta_1."""
        tol = CONVERGED_RTOL.get(self.eigenvalues.dtype, 1e-4) * self.eigenvalues[:, :1]
        ok = (self.residuals <= tol).to(torch.int64)
        return ok.cumprod(dim=1).sum(dim=1)

    def entropy(self, normalization: str = "trace") -> tuple[Tensor, Tensor]:
        """(estimate, error bound), each (B,): the module docstring's estimator and its stated error."""
        if normalization not in ("trace", "max"):
            raise LatentBenchError(f"unknown entropy normalization '{normalization}': use 'trace' or 'max'")
        theta = self.eigenvalues.to(torch.float64)
        trace = self.trace.to(torch.float64)
        se = self.trace_se.to(torch.float64)
        h = self.converged()
        mid, half = _entropy_estimate(theta, h, trace, self.rank_bound, normalization)
        lo, _ = _entropy_estimate(theta, h, (trace - 3 * se).clamp_min(0), self.rank_bound, normalization)
        hi, _ = _entropy_estimate(theta, h, trace + 3 * se, self.rank_bound, normalization)
        noise = torch.maximum((hi - mid).abs(), (lo - mid).abs())
        return mid.to(self.eigenvalues.dtype), (half + noise).to(self.eigenvalues.dtype)


def _entropy_estimate(theta: Tensor, h: Tensor, trace: Tensor, rank_bound: int, normalization: str):
    """Midpoint of [head + L, head + U] and its half-width (module docstring), per sample."""
    tiny = torch.finfo(theta.dtype).tiny
    idx = torch.arange(theta.shape[1], device=theta.device)
    head = idx.unsqueeze(0) < h.unsqueeze(1)
    denom = trace if normalization == "trace" else theta[:, 0]
    p = torch.where(head, theta, torch.zeros_like(theta)) / denom.clamp_min(tiny).unsqueeze(1)
    head_entropy = -xlogx(p).sum(dim=1)
    t = (1 - p.sum(dim=1)).clamp_min(0) if normalization == "trace" else \
        ((trace - (p * denom.unsqueeze(1)).sum(dim=1)) / denom.clamp_min(tiny)).clamp_min(0)
    # cap of each tail value: the smallest head value (1 when nothing converged: p <= 1 under trace)
    last = (h - 1).clamp_min(0).unsqueeze(1)
    c = torch.where(h > 0, p.gather(1, last).squeeze(1), torch.ones_like(t)).clamp_min(tiny)
    slots = (rank_bound - h).clamp_min(0).to(theta.dtype)
    upper = -t * torch.log((t / slots.clamp_min(1)).clamp_min(tiny))
    q = torch.floor(t / c)
    s = (t - q * c).clamp_min(0)
    lower = -q * xlogx(c) - xlogx(s)
    lower = torch.minimum(lower, upper)  # an infeasible cap (head missed an eigenvalue) widens nothing below U
    empty = (slots == 0) | (t <= 0)
    tail_mid = torch.where(empty, torch.zeros_like(t), (lower + upper) / 2)
    half = torch.where(empty, torch.zeros_like(t), (upper - lower) / 2)
    return head_entropy + tail_mid, half


def _linear_maps(f, x: Tensor):
    """(v -> J v, u -> J^T u) of the batched function f at x, from one forward pass.

    J^T u is a reverse pass over the saved graph; J v is the reverse pass of the reverse pass
    J^T u0 with respect to its (linear) cotangent u0 (the "double-vjp" trick), so no step runs the
    network forward again. Measured on the 1x32x32 MLP benchmark encoder (batch 8, one thread) a
    Lanczos step cost 7 ms this way against 39 ms for vmap(jvp + vjp) per sample. Plain
    torch.autograd rather than torch.func.vjp: the latter's double backward imports torch._dynamo on
    first use (8-13 s measured on this machine)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = f(xg)
        u0 = torch.zeros_like(out, requires_grad=True)
        back = torch.autograd.grad(out, xg, u0, create_graph=True)[0]  # J^T u0: linear in u0

    def jv(v: Tensor) -> Tensor:
        return torch.autograd.grad(back, u0, v.reshape(x.shape), retain_graph=True)[0]

    def jtu(u: Tensor) -> Tensor:
        return torch.autograd.grad(out, xg, u.reshape(out.shape), retain_graph=True)[0].reshape(x.shape[0], -1)

    return jv, jtu


class _Operator:
    """Products with A (G_x = A^T A) for one batch of samples at once.

    The batch is encoded as one batch in eval mode and differentiated as one function; its Jacobian is
    block diagonal (in eval mode no sample's code depends on another sample), so the products are the
    per-sample ones (batched rows), as the attacks assume too.

    ``side`` is the space Lanczos works in. ``rows``: K = A A^T (rows x rows; flat metric with
    rows <= N), whose eigenvalues are the non-zero ones of G_x and which has no null space, so k = rows
    steps give the whole spectrum even in float32 (in the input space, round-off of the products
    leaks into the N - r null directions and, measured in float32 on a 1x32x32 MLP, rank + 1 steps
    then missed an eigenvalue). ``input``: G_x itself (decoder-curved metric, whose rows
    [J_g J_mu; J_g J_sigma] are the decoder's output size, or rows > N).
    """

    def __init__(self, model, x: Tensor, curved: bool):
        B = x.shape[0]
        post = model.encode(x)
        self.stochastic = post.std is not None
        self.curved = curved
        self.latent_shape = tuple(post.mean.shape[1:])
        self.d = math.prod(self.latent_shape)
        self.parts = 2 if self.stochastic else 1
        self.n = x[0].numel()
        self.side = "rows" if not curved and self.parts * self.d <= self.n else "input"
        self.dim = self.parts * self.d if self.side == "rows" else self.n

        def h(xb: Tensor) -> Tensor:  # [mu; sigma] flattened per sample (spatial latents too)
            p = model.encode(xb)
            return torch.cat([p.mean.reshape(B, -1)] + ([p.std.reshape(B, -1)] if self.stochastic else []), dim=1)

        self.jh, self.jh_t = _linear_maps(h, x)
        if curved:
            z = post.mean.detach()
            self.jg, self.jg_t = _linear_maps(lambda zb: model.decode(zb).reshape(B, -1), z)

    def _split(self, t: Tensor) -> list[Tensor]:
        """(B, parts * d) -> the mu and sigma parts, each shaped as the latent."""
        return [tp.reshape(t.shape[0], *self.latent_shape) for tp in t.split(self.d, dim=1)]

    def apply(self, v: Tensor) -> Tensor:
        """(B, dim) -> (B, dim): the operator Lanczos runs on, A A^T (rows) or G_x (input)."""
        if self.side == "rows":
            return self.jh(self.jh_t(v))
        t = self.jh(v)
        if self.curved:  # blockdiag(G_z, G_z) t, G_z = J_g^T J_g at z = mu(x)
            t = torch.cat([self.jg_t(self.jg(tp)) for tp in self._split(t)], dim=1)
        return self.jh_t(t)

    def quadratic(self, u: Tensor) -> Tensor:
        """(B, dim) -> (B,): u^T (operator) u = ||A^T u||^2 (rows) or ||A u||^2 (input), one product."""
        if self.side == "rows":
            return self.jh_t(u).pow(2).sum(dim=1)
        t = self.jh(u)
        if not self.curved:
            return t.pow(2).sum(dim=1)
        return sum(self.jg(tp).reshape(u.shape[0], -1).pow(2).sum(dim=1) for tp in self._split(t))


def _orthogonalise(w: Tensor, basis: Tensor) -> Tensor:
    """w (B, N) minus its projection on the orthonormal rows of basis (B, j, N), classical
    Gram-Schmidt applied twice (Kahan's "twice is enough")."""
    for _ in range(2):
        w = w - torch.einsum("bj,bjn->bn", torch.einsum("bjn,bn->bj", basis, w), basis)
    return w


def _rademacher(gen: torch.Generator, shape, like: Tensor) -> Tensor:
    # drawn on the CPU so a seed gives the same vectors on every device
    return (torch.randint(0, 2, shape, generator=gen) * 2 - 1).to(device=like.device, dtype=like.dtype)


def lanczos(op_g, v0: Tensor, steps: int, gen: torch.Generator, breakdown_tol: Optional[float] = None):
    """k = ``steps`` Lanczos steps with full reorthogonalisation on the batch of operators ``op_g``
    ((B, N) -> (B, N), symmetric PSD), from start vectors v0 (B, N).

    Returns (Ritz values (B, k) descending in float64, residual bounds (B, k), basis Q (B, k, N)).
    """
    B, N = v0.shape
    eps = torch.finfo(v0.dtype).eps
    tol = breakdown_tol if breakdown_tol is not None else 10 * eps * math.sqrt(N)
    Q = v0.new_zeros(B, steps, N)
    alpha = torch.zeros(B, steps, dtype=torch.float64)
    beta = torch.zeros(B, steps, dtype=torch.float64)
    anorm = torch.zeros(B, dtype=torch.float64)
    Q[:, 0] = v0 / v0.norm(dim=1, keepdim=True).clamp_min(torch.finfo(v0.dtype).tiny)
    for j in range(steps):
        w = op_g(Q[:, j])
        alpha[:, j] = (Q[:, j] * w).sum(dim=1).double().cpu()
        w = _orthogonalise(w, Q[:, :j + 1])  # also removes alpha q_j and beta q_{j-1}
        b = w.norm(dim=1).double().cpu()
        anorm = torch.maximum(anorm, alpha[:, j].abs() + b + (beta[:, j - 1] if j else 0))
        if j == steps - 1:
            beta[:, j] = b  # the residual coupling, only used for the Ritz residual bounds
            break
        broken = b <= tol * anorm
        if bool(broken.any()):
            # invariant subspace found: continue, uncoupled (beta = 0), from a fresh random direction
            # of the range of G (a plain random vector is mostly null space when rank << N: in float32
            # such restarts cost steps and lost eigenvalues)
            fresh = _orthogonalise(op_g(_rademacher(gen, (B, N), w)), Q[:, :j + 1])
            w = torch.where(broken.to(w.device).unsqueeze(1), fresh, w)
            b = torch.where(broken, torch.zeros_like(b), b)
        beta[:, j] = b
        Q[:, j + 1] = w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    T = torch.diag_embed(alpha) + torch.diag_embed(beta[:, :-1], 1) + torch.diag_embed(beta[:, :-1], -1)
    theta, Y = torch.linalg.eigh(T)  # ascending
    theta, Y = theta.flip(-1), Y.flip(-1)
    residual = beta[:, -1:].abs() * Y[:, -1, :].abs()
    return theta, residual, Q


def default_steps(rank_bound: int, n: int) -> int:
    """rank + 1 steps (exact spectrum; one spare for a repeated eigenvalue), at most MAX_DEFAULT_STEPS."""
    return max(1, min(rank_bound + 1, n, MAX_DEFAULT_STEPS))


def _chunk_spectrum(model, x: Tensor, curved: bool, steps: Optional[int], probes: int, gen: torch.Generator):
    op = _Operator(model, x, curved)
    B, n = x.shape[0], op.n
    rank_bound = min(op.parts * op.d, n)  # curved too: J_g J_mu has rank <= d
    k = min(steps if steps is not None else default_steps(rank_bound, n), op.dim)
    like = x.reshape(B, n)
    # start in the range of the operator (module docstring): (operator) g with g Rademacher
    v0 = op.apply(_rademacher(gen, (B, op.dim), like))
    theta, residual, Q = lanczos(op.apply, v0, k, gen)
    head_trace = theta.sum(dim=1)  # = tr T = tr(Q^T G Q), before clamping round-off negatives
    if probes > 0 and k < op.dim:  # k == dim: Q spans the operator's whole space, nothing is left out
        samples = [op.quadratic(_orthogonalise(_rademacher(gen, (B, op.dim), like), Q)).double().cpu()
                   for _ in range(probes)]
        s = torch.stack(samples, dim=1)
        tail = s.mean(dim=1)
        se = s.std(dim=1) / math.sqrt(probes) if probes > 1 else torch.zeros_like(tail)
    else:
        tail = se = torch.zeros(B, dtype=torch.float64)
    return theta.clamp_min(0), residual, head_trace + tail, se, rank_bound, k, op.stochastic, op.side


def matfree_spectrum(model, x: Tensor, curved: bool = False, steps: Optional[int] = None,
                     probes: int = DEFAULT_PROBES, chunk_size: Optional[int] = None,
                     seed: int = 0) -> MatfreeSpectrum:
    """Lanczos top eigenvalues and trace estimate of G_x for every sample of ``x`` (B, *input_shape).

    :param steps: Lanczos steps k (Ritz values returned); default rank bound + 1, at most 128.
    :param probes: Hutchinson probes m for the trace left outside the Krylov basis (0: none, the
        entropy then assumes the basis holds all of G).
    :param chunk_size: samples per batch; peak memory O(chunk_size * (k * N + activations)).
    :param seed: seeds the start and probe vectors (drawn on the CPU: the same on every device).
    """
    if x.dim() < 2 or x.shape[0] == 0:
        raise LatentBenchError(f"matfree_spectrum needs a non-empty batch (B, *input_shape); got shape {tuple(x.shape)}")
    if steps is not None and steps < 1:
        raise LatentBenchError(f"Lanczos steps must be >= 1 (or None for rank + 1), got {steps}")
    if probes < 0:
        raise LatentBenchError(f"trace probes must be >= 0, got {probes}")
    if chunk_size is not None and chunk_size < 1:
        raise LatentBenchError(f"chunk_size must be >= 1 (or None for one chunk), got {chunk_size}")
    gen = torch.Generator().manual_seed(int(seed))
    was_training = getattr(model, "training", False)
    model.eval()  # the metric of the deployed encoder, as the dense path
    try:
        step = chunk_size or x.shape[0]
        parts = []
        with frozen(model), torch.no_grad():
            for i in range(0, x.shape[0], step):
                parts.append(_chunk_spectrum(model, x[i:i + step].detach(), curved, steps, probes, gen))
    finally:
        if was_training:
            model.train()
    dtype = x.dtype
    theta, residual, trace, se, rank_bound, k, stochastic, side = zip(*parts)
    return MatfreeSpectrum(eigenvalues=torch.cat(theta).to(dtype), residuals=torch.cat(residual).to(dtype),
                           trace=torch.cat(trace).to(dtype), trace_se=torch.cat(se).to(dtype),
                           rank_bound=rank_bound[0], steps=k[0], probes=probes, stochastic=stochastic[0],
                           curved=curved, side=side[0])
