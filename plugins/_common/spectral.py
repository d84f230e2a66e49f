"""Eigen-spectrum of the encoder's stochastic pullback metric (Khan & Storkey §3.1-3.2, App. B; docs/methods.md §3).

For an encoder x -> (mu(x), sigma(x)) the stochastic pullback metric is

    G_x = J_mu^T G_z J_mu + J_sigma^T G_z J_sigma          (N x N, N = input size)

with G_z = I (flat latent, Khan & Storkey eq. 4) or G_z = J_g^T J_g, the pullback of the decoder mean g at
z = mu(x) (Khan & Storkey App. B, eq. 11). J_sigma is absent for deterministic encoders (``std is None``).

The N x N matrix is never built. Writing G_x = A^T A with A = [S J_mu; S J_sigma] (2d x N, S = I or
the symmetric square root of G_z), the non-zero eigenvalues of G_x are those of the 2d x 2d Gram
matrix A A^T, and an eigenvector u of A A^T with eigenvalue lambda > 0 maps to the unit-norm input
eigenvector v = A^T u / sqrt(lambda). (The public reference code decomposes J_mu J_mu^T +
J_sigma J_sigma^T instead, which is not A A^T and has the wrong eigenvalues; docs/methods.md §6.)

docs/methods.md §3 suggests stacking A = [J_g J_mu; J_g J_sigma] for the curved case; that matrix has 2D rows
(D = decoder output size, e.g. 784), so its Gram matrix would be 2D x 2D. Using S = G_z^{1/2}
(d x d, from ``eigh``) gives the same A^T A = G_x with only 2d rows, which is what we do.

Choices the papers leave open:
- Per-sample Jacobians come from ``torch.func.vmap(jacrev(...))`` with the model in eval mode, each
  sample encoded alone as a batch of one (so BatchNorm uses running statistics and no sample's
  Jacobian sees another's). The decoder Jacobian uses ``jacfwd`` (d input directions << D outputs).
- The Gram matrix is formed in the Jacobians' dtype and eigendecomposed in float64 whatever the
  model dtype: the eigenproblem is small (2d x 2d) and this keeps round-off of the eigenvalues at the
  Jacobians' own level (float64 models get a float64 Gram matrix).
- Eigenvalues are returned in descending order, clamped at 0 (G_x is PSD; tiny negatives are
  round-off). The number r of eigenvalues is min(rows of A, N): the remaining N - r eigenvalues of
  G_x are exactly zero.
- Eigenvectors whose eigenvalue is numerically zero (<= ``NULL_RTOL`` * largest) are not determined
  by A (any unit vector of the null space would do); they are returned as zero vectors so that a
  caller never mistakes round-off noise for a direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

from latentbench.attack import frozen
from latentbench.errors import LatentBenchError

#: eigenvalues at or below this fraction of the largest one count as zero (eigenvector undefined)
NULL_RTOL = 1e-10


@dataclass
class PullbackSpectrum:
    """Eigen-decomposition of G_x for a batch of B inputs.

    ``eigenvalues``: (B, r), descending, >= 0. ``eigenvectors``: (B, r, *input_shape) unit-norm
    input-space eigenvectors (zero where the eigenvalue is numerically 0), or None if not requested.
    ``stochastic``: whether J_sigma was included. ``curved``: whether G_z is the decoder pullback.
    """

    eigenvalues: Tensor
    eigenvectors: Optional[Tensor] = None
    stochastic: bool = False
    curved: bool = False

    @property
    def spectral_radius(self) -> Tensor:
        """Largest eigenvalue per sample (Khan & Storkey eq. 8), shape (B,)."""
        return self.eigenvalues[:, 0]


def _encoder_jacobian_fn(model, stochastic: bool):
    """Per-sample function x_i -> stacked [mu; sigma] (2d,) or mu (d,), for jacrev."""

    def f(xi: Tensor) -> Tensor:
        post = model.encode(xi.unsqueeze(0))
        if stochastic:
            return torch.cat([post.mean[0], post.std[0]])
        return post.mean[0]

    return f


def _decoder_fn(model):
    def g(zi: Tensor) -> Tensor:
        return model.decode(zi.unsqueeze(0)).reshape(-1)

    return g


def _sqrt_psd(m: Tensor) -> Tensor:
    """Symmetric square root of a batch of PSD matrices (eigh; negative round-off clamped)."""
    w, q = torch.linalg.eigh(m)
    return (q * w.clamp_min(0).sqrt().unsqueeze(-2)) @ q.transpose(-1, -2)


def pullback_factor(model, x: Tensor, curved: bool = False) -> tuple[Tensor, bool]:
    """A with G_x = A^T A for each sample: (B, rows, N) in the model's dtype, and whether J_sigma is in it.

    rows = 2d for stochastic encoders, d for deterministic ones.
    """
    stochastic = model.encode(x[:1]).std is not None
    B = x.shape[0]
    jac = vmap(jacrev(_encoder_jacobian_fn(model, stochastic)))(x)  # (B, rows, *input_shape)
    A = jac.reshape(B, jac.shape[1], -1)
    if curved:
        mu = model.encode(x).mean.detach()
        d = mu.shape[1]
        jg = vmap(jacfwd(_decoder_fn(model)))(mu)  # (B, D, d)
        gz = (jg.transpose(1, 2) @ jg).to(torch.float64)
        s = _sqrt_psd(gz).to(A.dtype)  # (B, d, d)
        blocks = [s @ A[:, :d]]
        if stochastic:
            blocks.append(s @ A[:, d:])
        A = torch.cat(blocks, dim=1)
    return A, stochastic


def _spectrum_of_factor(A: Tensor, eigenvectors: bool, top_k: Optional[int]) -> tuple[Tensor, Optional[Tensor]]:
    rows, n = A.shape[1], A.shape[2]
    # The Gram product runs in the Jacobians' own dtype: its round-off (~eps * ||a_i|| ||a_j||) is at
    # the level of the Jacobians' own error, and in float64 it cost as much as the Jacobians themselves
    # on CPU. Only the small eigenproblem is solved in float64.
    gram = (A @ A.transpose(1, 2)).to(torch.float64)  # (B, rows, rows) -- never the (N, N) matrix
    r = min(rows, n)
    if top_k is not None:
        r = min(r, top_k)
    if not eigenvectors:  # eigvalsh skips the eigenvector back-substitution (about half the eigh time)
        return torch.linalg.eigvalsh(gram).flip(-1)[:, :r].clamp_min(0.0).to(A.dtype), None
    w, u = torch.linalg.eigh(gram)  # ascending
    w, u = w.flip(-1)[:, :r].clamp_min(0.0), u.flip(-1)[:, :, :r]
    vecs = None
    if eigenvectors:
        v = u.transpose(1, 2) @ A.to(torch.float64)  # (B, r, N): row k is (A^T u_k)^T, norm sqrt(lambda_k)
        norms = v.norm(dim=2, keepdim=True)
        defined = w.unsqueeze(-1) > NULL_RTOL * w[:, :1].unsqueeze(-1).clamp_min(torch.finfo(w.dtype).tiny)
        vecs = torch.where(defined, v / norms.clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v))
        vecs = vecs.to(A.dtype)
    return w.to(A.dtype), vecs


def pullback_spectrum(model, x: Tensor, curved: bool = False, eigenvectors: bool = False,
                      top_k: Optional[int] = None, chunk_size: Optional[int] = None) -> PullbackSpectrum:
    """Eigenvalues (and optionally eigenvectors) of G_x for every sample of ``x`` (B, *input_shape).

    :param curved: use the decoder-curved metric of Khan & Storkey App. B instead of the flat latent G_z = I.
    :param eigenvectors: also return unit-norm input-space eigenvectors (B, r, *input_shape).
    :param top_k: keep only the k largest eigenpairs.
    :param chunk_size: process at most this many samples at a time; peak memory is then
        O(chunk_size * 2d * N) whatever the batch size (use it for 64x64 RGB conv encoders).
    """
    if x.dim() < 2 or x.shape[0] == 0:
        raise LatentBenchError(f"pullback_spectrum needs a non-empty batch (B, *input_shape); got shape {tuple(x.shape)}")
    if top_k is not None and top_k < 1:
        raise LatentBenchError(f"top_k must be >= 1 (or None for all eigenpairs), got {top_k}")
    if chunk_size is not None and chunk_size < 1:
        raise LatentBenchError(f"chunk_size must be >= 1 (or None for one chunk), got {chunk_size}")
    was_training = getattr(model, "training", False)
    model.eval()  # BatchNorm on running statistics, no dropout: the metric of the deployed encoder
    try:
        step = chunk_size or x.shape[0]
        vals, vecs, stochastic = [], [], False
        # the Jacobians are taken with respect to the input only: with the parameters frozen and
        # autograd's recording off, torch.func still differentiates (it enables its own grad mode) but
        # records nothing for the parameters -- same Jacobians bit for bit, about 7% less time
        with frozen(model), torch.no_grad():
            for i in range(0, x.shape[0], step):
                xc = x[i:i + step].detach()
                A, stochastic = pullback_factor(model, xc, curved=curved)
                w, v = _spectrum_of_factor(A.detach(), eigenvectors, top_k)
                del A
                vals.append(w)
                if eigenvectors:
                    vecs.append(v.reshape(v.shape[0], v.shape[1], *x.shape[1:]))
    finally:
        if was_training:
            model.train()
    return PullbackSpectrum(
        eigenvalues=torch.cat(vals),
        eigenvectors=torch.cat(vecs) if eigenvectors else None,
        stochastic=stochastic,
        curved=curved,
    )


def von_neumann_entropy(eigenvalues: Tensor, normalization: str = "trace") -> Tensor:
    """Entropy -sum_k p_k log p_k of a spectrum (Khan & Storkey §3.2), per row; 0 log 0 = 0.

    ``trace``: p = lambda / sum(lambda), the von Neumann entropy of rho = G / tr(G) (docs/methods.md §3 default;
    log(rank) for an isotropic metric). ``max``: p = lambda / max(lambda), as the paper's figures
    (not a probability vector; kept only to reproduce them).
    """
    if normalization == "trace":
        denom = eigenvalues.sum(-1, keepdim=True)
    elif normalization == "max":
        denom = eigenvalues.amax(-1, keepdim=True)
    else:
        raise LatentBenchError(f"unknown entropy normalization '{normalization}': use 'trace' or 'max'")
    p = eigenvalues / denom.clamp_min(torch.finfo(eigenvalues.dtype).tiny)
    return -xlogx(p).sum(-1)


def xlogx(p: Tensor) -> Tensor:
    """p log p element-wise with 0 log 0 = 0 (the entropy terms; also the matrix-free estimator's)."""
    return torch.where(p > 0, p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), torch.zeros_like(p))
