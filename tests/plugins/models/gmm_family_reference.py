"""Independent float64 reference computations (numpy/scipy) of the KS and covariance losses, for tests."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


def ref_gmm_cdf(means: np.ndarray, stds: np.ndarray, weights: np.ndarray, z: np.ndarray) -> np.ndarray:
    """sum_k p_k Phi((z - mu_kj) / sigma_kj) with scipy, one dimension and one mode at a time."""
    out = np.zeros(z.shape, dtype=np.float64)
    for j in range(z.shape[1]):
        for k in range(len(weights)):
            out[:, j] += weights[k] * norm.cdf(z[:, j], loc=means[k, j], scale=stds[k, j])
    return out


def ref_ks(params, z: np.ndarray) -> float:
    """Mean over dimensions of the MSE between rank/N (ranks 1..N) and the prior CDF at the sorted values."""
    n, d = z.shape
    total = 0.0
    for j in range(d):
        col = np.sort(z[:, j])
        ecdf = np.arange(1, n + 1) / n
        full = np.zeros((n, d))
        full[:, j] = col
        total += np.mean((ecdf - ref_gmm_cdf(*params, full)[:, j]) ** 2)
    return total / d


def ref_two_point(params, z: np.ndarray, za: np.ndarray) -> float:
    return float(np.mean((ref_gmm_cdf(*params, np.sort(z, axis=0)) - ref_gmm_cdf(*params, np.sort(za, axis=0))) ** 2))


def ref_adv_ks(params, z: np.ndarray, za: np.ndarray, coupled: bool) -> float:
    aug = 0.5 * ref_ks(params, z) + 0.5 * ref_ks(params, za)
    return 2 / 3 * aug + 1 / 3 * ref_two_point(params, z, za) if coupled else aug


def ref_cov_loss(z: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean((np.cov(z.T, ddof=1) - target) ** 2))


def one_hot_gmm_cov(k: int, d: int, std: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """Closed form for modes scale * e_k, equal weights: s^2 I + scale^2 (I_K / K - 1 1^T / K^2) on the first K dims."""
    cov = std * std * np.eye(d)
    cov[:k, :k] += scale * scale * (np.eye(k) / k - np.ones((k, k)) / k**2)
    return cov
