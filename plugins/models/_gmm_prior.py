"""Diagonal Gaussian-mixture priors for the regularised deterministic autoencoders (Saseendran (thesis) §4.3.2).

A K-mode mixture in R^D with means mu_k, per-dimension standard deviations sigma_k and weights p_k.
It offers what the KS and covariance losses need in closed form: the marginal CDF of every latent
dimension (Saseendran (thesis) eq. 4.5) and the covariance by the law of total variance (Saseendran (thesis) eq. 4.6), plus
sampling with an explicit generator.

Two choices docs/methods.md §1 fixes against the thesis text: the standardisation divides by the standard
deviation sigma_kj (eq. 4.5 writes the variance [Sigma]_jj; both are 1 for the default prior), and
the centre in eq. 4.6 is the *weighted* mean sum_k p_k mu_k (the thesis writes the plain average,
which is only right for equal weights).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GMMPrior(nn.Module):
    """A diagonal GMM held as non-persistent buffers (rebuilt from the model config, moved by .to()).

    ``means`` (K, D), ``stds`` (K, D) positive, ``weights`` (K,) positive, normalised here.
    """

    def __init__(self, means: Tensor, stds: Tensor, weights: Tensor | None = None):
        super().__init__()
        means = torch.as_tensor(means)
        if not means.is_floating_point():
            means = means.to(torch.get_default_dtype())
        if means.dim() != 2:
            raise ValueError(f"GMM means must have shape (K, D), got {tuple(means.shape)}")
        stds = torch.as_tensor(stds, dtype=means.dtype).expand_as(means).clone()
        if not bool((stds > 0).all()):
            raise ValueError("GMM standard deviations must be > 0")
        k = means.shape[0]
        weights = torch.full((k,), 1.0 / k, dtype=means.dtype) if weights is None else torch.as_tensor(weights, dtype=means.dtype)
        if weights.shape != (k,) or not bool((weights > 0).all()):
            raise ValueError(f"GMM weights must be {k} positive numbers, got {weights.tolist()}")
        self.register_buffer("means", means, persistent=False)
        self.register_buffer("stds", stds, persistent=False)
        self.register_buffer("weights", weights / weights.sum(), persistent=False)

    @classmethod
    def one_hot(cls, n_modes: int, dim: int, scale: float = 1.0, std: float = 1.0) -> "GMMPrior":
        """Saseendran (thesis) §4.4.7: mode k centred at ``scale`` * e_k, isotropic ``std``, equal weights.

        One-hot means need ``dim >= n_modes``; otherwise two modes would share a centre, so this
        raises instead of silently building a mixture with fewer distinct modes.
        """
        if n_modes < 1:
            raise ValueError(f"n_modes must be >= 1, got {n_modes}")
        if dim < n_modes:
            raise ValueError(
                f"one-hot GMM means need latent_dim >= n_modes, got latent_dim {dim} < n_modes {n_modes}: "
                f"raise latent_dim to at least {n_modes} or lower n_modes")
        means = torch.zeros(n_modes, dim)
        means[torch.arange(n_modes), torch.arange(n_modes)] = float(scale)
        return cls(means, torch.full((n_modes, dim), float(std)))

    @classmethod
    def standard_normal(cls, dim: int) -> "GMMPrior":
        """The unimodal N(0, I) prior of Robust-DAE appendix App. A.1 as a one-mode mixture."""
        return cls(torch.zeros(1, dim), torch.ones(1, dim))

    @property
    def n_modes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
        """``n`` draws (n, D): mode index from the weights, then a diagonal Gaussian draw.

        Random numbers are drawn on the CPU (so a CPU generator gives the same codes on every
        device) and moved to ``device`` (default: the prior's device).
        """
        device = self.means.device if device is None else torch.device(device)
        w = self.weights.detach().to("cpu", torch.float64)
        comp = torch.multinomial(w, n, replacement=True, generator=generator)
        eps = torch.randn((n, self.dim), generator=generator, dtype=self.means.dtype)
        z = self.means.cpu()[comp] + self.stds.cpu()[comp] * eps
        return z.to(device)

    def marginal_cdf(self, z: Tensor) -> Tensor:
        """F_GMM,j(z_ij) = sum_k p_k Phi((z_ij - mu_kj) / sigma_kj) for z of shape (N, D)."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"codes have {z.shape[-1]} dimensions but the prior has {self.dim}")
        mu = self.means.to(z)
        sd = self.stds.to(z)
        w = self.weights.to(z)
        # (N, 1, D) against (K, D): Phi via erf keeps gradients well defined everywhere
        u = (z.unsqueeze(-2) - mu) / sd
        phi = 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
        return (phi * w[:, None]).sum(dim=-2)

    def mean(self) -> Tensor:
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """Law of total variance: E[Var(z|k)] + Var(E[z|k]) = sum_k p_k diag(sigma_k^2) + sum_k p_k d_k d_k^T."""
        within = torch.diag(self.weights @ self.stds.pow(2))
        d = self.means - self.mean()
        between = (d * self.weights[:, None]).T @ d
        return within + between
