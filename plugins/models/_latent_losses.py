"""Latent regularisers of the GMM-regularised and robust deterministic autoencoders.

- ``ks_loss``: the marginal KS loss of Saseendran (thesis) eq. 4.3 / 4.7 (docs/methods.md §1): per latent dimension, sort the
  batch, compare the empirical CDF rank/N (ranks 1..N) with the prior's marginal CDF at the sorted
  values by MSE, and average over dimensions.
- ``two_point_ks``: the two-sample term of Saseendran (thesis) eq. 5.4 / Robust-DAE appendix eq. 6 as docs/methods.md §1 defines it: MSE between
  the prior CDF of the sorted clean codes and of the sorted adversarial codes. (Taken literally, the
  two empirical CDFs evaluated at their own sorted samples are both rank/N and always equal; mapping
  the order statistics through the prior CDF is the differentiable comparison of the two samples.)
- ``adversarial_ks``: 2/3 * (1/2 L_KS(z) + 1/2 L_KS(z_adv)) + 1/3 * two-point (eq. 5.4), or only the
  augmented half-half term (eq. 5.2) for the uncoupled ablation.
- ``covariance_loss`` (eq. 4.4 / 4.8) and ``coupled_covariance_loss`` (eq. 5.5 / Robust-DAE appendix eq. 7) against
  the target [[S, aS], [aS, S]] over the concatenated codes (z, z_adv).

Choices the papers leave open: the empirical covariance is the unbiased one (divisor N - 1), so that its
expectation under the prior is exactly the prior covariance; covariance losses are the mean over
matrix entries, i.e. 1/D^2 and 1/(2D)^2 = 1/(4D^2) as in Saseendran (thesis) eq. 5.5 (Robust-DAE appendix eq. 7 writes 1/(2D^2); the
constant cancels because the loss weight is 1/mean loss on prior samples, Saseendran (thesis) §4.3.3).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

CDF = Callable[[Tensor], Tensor]


def _check_codes(z: Tensor, name: str = "z") -> None:
    if z.dim() != 2:
        raise ValueError(f"{name} must be a batch of codes of shape (N, D), got shape {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"{name} holds {z.shape[0]} code(s); the KS and covariance losses need a batch of at least 2")


def empirical_cdf_levels(n: int, like: Tensor) -> Tensor:
    """Empirical CDF at the sorted samples: rank / N with ranks 1..N, shape (N, 1)."""
    return (torch.arange(1, n + 1, device=like.device, dtype=like.dtype) / n).unsqueeze(1)


def ks_loss(z: Tensor, cdf: CDF) -> Tensor:
    """Saseendran (thesis) eq. 4.7: mean over dimensions j of MSE_n(F_bar_j(z_(n)j), F_j(z_(n)j)) over sorted codes."""
    _check_codes(z)
    z_sorted = z.sort(dim=0).values
    return (empirical_cdf_levels(z.shape[0], z) - cdf(z_sorted)).pow(2).mean()


def two_point_ks(z: Tensor, z_adv: Tensor, cdf: CDF) -> Tensor:
    """1/D sum_d MSE_n(F_d(z_(n)d), F_d(z^adv_(n)d)) with both batches sorted per dimension (docs/methods.md §1)."""
    _check_codes(z)
    _check_codes(z_adv, "z_adv")
    if z.shape != z_adv.shape:
        raise ValueError(f"clean and adversarial codes must have the same shape, got {tuple(z.shape)} and {tuple(z_adv.shape)}")
    return (cdf(z.sort(dim=0).values) - cdf(z_adv.sort(dim=0).values)).pow(2).mean()


def adversarial_ks(z: Tensor, z_adv: Tensor, cdf: CDF, coupled: bool = True) -> Tensor:
    """Saseendran (thesis) eq. 5.4 (coupled) or eq. 5.2 (augmented: the two batches regularised independently)."""
    aug = 0.5 * ks_loss(z, cdf) + 0.5 * ks_loss(z_adv, cdf)
    if not coupled:
        return aug
    return (2.0 / 3.0) * aug + (1.0 / 3.0) * two_point_ks(z, z_adv, cdf)


def empirical_covariance(z: Tensor) -> Tensor:
    """Unbiased sample covariance (D, D) of codes (N, D)."""
    _check_codes(z)
    c = z - z.mean(dim=0, keepdim=True)
    return c.T @ c / (z.shape[0] - 1)


def covariance_loss(z: Tensor, target: Tensor) -> Tensor:
    """Saseendran (thesis) eq. 4.4 / 4.8: mean over entries of (Sigma_bar - Sigma)^2."""
    cov = empirical_covariance(z)
    if target.shape != cov.shape:
        raise ValueError(f"target covariance has shape {tuple(target.shape)} but the codes give {tuple(cov.shape)}")
    return (cov - target.to(cov)).pow(2).mean()


def coupled_covariance_target(cov: Tensor, alpha: float) -> Tensor:
    """[[S, aS], [aS, S]]: the covariance of (z, z_adv) when both follow the prior with correlation alpha."""
    if not -1.0 <= alpha <= 1.0:
        raise ValueError(f"coupling alpha must lie in [-1, 1] (|alpha| <= 1, Saseendran (thesis) §5.3.3), got {alpha}")
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"prior covariance must be a square matrix, got shape {tuple(cov.shape)}")
    off = alpha * cov
    return torch.cat([torch.cat([cov, off], dim=1), torch.cat([off, cov], dim=1)], dim=0)


def coupled_covariance_loss(z: Tensor, z_adv: Tensor, cov: Tensor, alpha: float) -> Tensor:
    """Saseendran (thesis) eq. 5.5 over the concatenated codes (N, 2D); alpha = 0 gives the augmented eq. 5.3."""
    if z.shape != z_adv.shape:
        raise ValueError(f"clean and adversarial codes must have the same shape, got {tuple(z.shape)} and {tuple(z_adv.shape)}")
    return covariance_loss(torch.cat([z, z_adv], dim=1), coupled_covariance_target(cov, alpha))


def estimate_loss_weights(
    regularizers: Callable[..., tuple[Tensor, Tensor]],
    sample: Callable[[int, torch.Generator], Tensor],
    batch_size: int,
    n_batches: int = 64,
    n_inputs: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Saseendran (thesis) eq. 4.10: lambda_KS = 1 / mean_m L_KS(batch_m), lambda_CV = 1 / mean_m L_CV(batch_m).

    Each of the ``n_batches`` batches draws ``n_inputs`` independent prior batches of
    ``batch_size`` codes in order (z, then z' for the robust losses: Robust-DAE appendix eq. 10 samples the clean
    and adversarial codes independently from the prior rather than from the coupled prior).
    ``regularizers(*batches)`` returns (L_KS, L_CV).
    """
    if batch_size < 2:
        raise ValueError(f"loss weights need a batch size of at least 2, got {batch_size}")
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    ks_sum = cv_sum = 0.0
    with torch.no_grad():
        for _ in range(n_batches):
            batches = [sample(batch_size, generator) for _ in range(n_inputs)]
            ks, cv = regularizers(*batches)
            ks_sum += float(ks)
            cv_sum += float(cv)
    ks_mean, cv_mean = ks_sum / n_batches, cv_sum / n_batches
    if ks_mean <= 0 or cv_mean <= 0:
        raise ValueError(f"prior samples gave non-positive mean losses (KS {ks_mean}, CV {cv_mean}); cannot set weights")
    return 1.0 / ks_mean, 1.0 / cv_mean
