"""Divergences between diagonal Gaussian posteriors, one value per sample (summed over latent dims).

Used by the ``pgd_wasserstein`` attack and by the smooth-encoder model (Cemgil et al. §3, App. B.2, App. C;
docs/methods.md §1). Every function takes means of shape (B, d) and standard deviations of the same shape,
or ``None`` for a deterministic encoder. A ``None`` std is a point mass (std 0), so for two
deterministic codes every distance here reduces to ``||mu_a - mu_b||^2``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _check_pair(mean_a: Tensor, mean_b: Tensor, std_a: Optional[Tensor], std_b: Optional[Tensor]) -> None:
    if mean_a.shape != mean_b.shape:
        raise ValueError(f"means must have the same shape, got {tuple(mean_a.shape)} and {tuple(mean_b.shape)}")
    for name, s in (("std_a", std_a), ("std_b", std_b)):
        if s is not None and s.shape != mean_a.shape:
            raise ValueError(f"{name} must have the means' shape {tuple(mean_a.shape)}, got {tuple(s.shape)}")


def _sum_dims(t: Tensor) -> Tensor:
    """Sum over every dimension but the first (per-sample value)."""
    return t.reshape(t.shape[0], -1).sum(dim=1) if t.dim() > 1 else t


def _zeros_if_none(s: Optional[Tensor], like: Tensor) -> Tensor:
    return torch.zeros_like(like) if s is None else s


def kl_diag_gaussian_std_normal(mean: Tensor, std: Optional[Tensor]) -> Tensor:
    """KL( N(mean, diag(std^2)) || N(0, I) ) per sample.

    Closed form 0.5 * sum(mean^2 + std^2 - 1 - 2 log std). A deterministic code (std None) has no
    density, so its KL to the prior is infinite: that is reported as an error, not a number.
    """
    if std is None:
        raise ValueError("KL to N(0, I) is undefined for a deterministic encoder (std None): "
                         "use a model with a Gaussian posterior, or a distance such as w2_squared_diag")
    if std.shape != mean.shape:
        raise ValueError(f"std must have the mean's shape {tuple(mean.shape)}, got {tuple(std.shape)}")
    return 0.5 * _sum_dims(mean.pow(2) + std.pow(2) - 1.0 - 2.0 * torch.log(std))


def kl_diag_gaussians(mean_a: Tensor, std_a: Tensor, mean_b: Tensor, std_b: Tensor) -> Tensor:
    """KL( N(mean_a, diag std_a^2) || N(mean_b, diag std_b^2) ) per sample.

    sum_k log(s_b / s_a) + (s_a^2 + (m_a - m_b)^2) / (2 s_b^2) - 1/2. Both stds are required.
    """
    if std_a is None or std_b is None:
        raise ValueError("KL between Gaussians needs both standard deviations; a deterministic code "
                         "(std None) has no density. Use w2_squared_diag for deterministic encoders")
    _check_pair(mean_a, mean_b, std_a, std_b)
    var_b = std_b.pow(2)
    term = torch.log(std_b) - torch.log(std_a) + (std_a.pow(2) + (mean_a - mean_b).pow(2)) / (2.0 * var_b) - 0.5
    return _sum_dims(term)


def w2_squared_diag(mean_a: Tensor, std_a: Optional[Tensor], mean_b: Tensor, std_b: Optional[Tensor]) -> Tensor:
    """Exact squared 2-Wasserstein distance between diagonal Gaussians, per sample.

    Cemgil et al. App. B.1 eq. 15 with commuting (diagonal) covariances: ||m_a - m_b||^2 + ||s_a - s_b||^2.
    """
    _check_pair(mean_a, mean_b, std_a, std_b)
    out = (mean_a - mean_b).pow(2)
    if std_a is not None or std_b is not None:
        sa, sb = _zeros_if_none(std_a, mean_a), _zeros_if_none(std_b, mean_b)
        out = out + (sa - sb).pow(2)
    return _sum_dims(out)


def w2_gamma_diag(mean_a: Tensor, std_a: Optional[Tensor], mean_b: Tensor, std_b: Optional[Tensor],
                  gamma: float) -> Tensor:
    """Entropy-regularised W_{2,gamma} of Cemgil et al. App. B.2 / C for factorised Gaussians, per sample.

    docs/methods.md §1: sum_k (m_a - m_b)^2 + S_a + S_b - (1/gamma)(sqrt(1 + 4 gamma^2 S_a S_b) - 1) with
    S = variances. It tends to the exact W_2^2 as gamma -> infinity and is positive for identical
    non-degenerate Gaussians at any finite gamma (the entropy term).

    The last term is evaluated as 4 gamma P / (sqrt(1 + 4 gamma^2 P) + 1), P = S_a S_b, which is the
    same number without the cancellation of ``sqrt(...) - 1`` for large gamma or tiny variances.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    _check_pair(mean_a, mean_b, std_a, std_b)
    out = (mean_a - mean_b).pow(2)
    if std_a is not None or std_b is not None:
        va = _zeros_if_none(std_a, mean_a).pow(2)
        vb = _zeros_if_none(std_b, mean_b).pow(2)
        p = va * vb
        coupling = 4.0 * gamma * p / (torch.sqrt(1.0 + 4.0 * gamma * gamma * p) + 1.0)
        out = out + va + vb - coupling
    return _sum_dims(out)


def posterior_distance(mean_a: Tensor, std_a: Optional[Tensor], mean_b: Tensor, std_b: Optional[Tensor],
                       distance: str = "w2", gamma: float = 1.0) -> Tensor:
    """Dispatch by name: ``"w2"`` (exact W_2^2) or ``"w2_gamma"`` (entropy-regularised, ``gamma``)."""
    if distance == "w2":
        return w2_squared_diag(mean_a, std_a, mean_b, std_b)
    if distance == "w2_gamma":
        return w2_gamma_diag(mean_a, std_a, mean_b, std_b, gamma)
    raise ValueError(f"unknown posterior distance '{distance}': use 'w2' or 'w2_gamma'")
