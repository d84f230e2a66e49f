"""plugins/_common/gaussians.py against independent computations (torch.distributions, dense matrix
square roots, 1-D quantile couplings, direct minimisation of the entropic transport functional)."""

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats
import torch
from torch.distributions import Independent, Normal, kl_divergence

from latentbench.plugins._common.gaussians import (kl_diag_gaussian_std_normal, kl_diag_gaussians, posterior_distance,
                                      w2_gamma_diag, w2_squared_diag)


def _pair(seed, B=4, d=5):
    g = torch.Generator().manual_seed(seed)
    ma, mb = torch.randn(B, d, generator=g, dtype=torch.float64), torch.randn(B, d, generator=g, dtype=torch.float64)
    sa = torch.rand(B, d, generator=g, dtype=torch.float64) * 2 + 0.05
    sb = torch.rand(B, d, generator=g, dtype=torch.float64) * 2 + 0.05
    return ma, sa, mb, sb


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_matches_torch_distributions(seed):
    ma, sa, mb, sb = _pair(seed)
    ref_prior = kl_divergence(Independent(Normal(ma, sa), 1), Independent(Normal(0.0, torch.ones_like(sa)), 1))
    torch.testing.assert_close(kl_diag_gaussian_std_normal(ma, sa), ref_prior)
    ref = kl_divergence(Independent(Normal(ma, sa), 1), Independent(Normal(mb, sb), 1))
    torch.testing.assert_close(kl_diag_gaussians(ma, sa, mb, sb), ref)


def test_w2_matches_dense_bures_formula():
    ma, sa, mb, sb = _pair(3)
    got = w2_squared_diag(ma, sa, mb, sb)
    for i in range(ma.shape[0]):
        A, Bm = np.diag(sa[i].numpy() ** 2), np.diag(sb[i].numpy() ** 2)
        rb = scipy.linalg.sqrtm(Bm)
        cross = scipy.linalg.sqrtm(rb @ A @ rb).real
        ref = np.sum((ma[i].numpy() - mb[i].numpy()) ** 2) + np.trace(A + Bm - 2 * cross)  # Cemgil et al. eq. 15
        assert got[i].item() == pytest.approx(ref, rel=1e-10)


def test_w2_matches_one_dimensional_quantile_coupling():
    # in 1-D the optimal coupling is the monotone one: W_2^2 = int_0^1 (F_a^-1(u) - F_b^-1(u))^2 du
    ma, sa, mb, sb = 0.3, 0.7, -1.1, 1.9
    val, _ = scipy.integrate.quad(lambda u: (scipy.stats.norm.ppf(u, ma, sa) - scipy.stats.norm.ppf(u, mb, sb)) ** 2,
                                  0, 1, limit=200)
    t = lambda v: torch.tensor([[v]], dtype=torch.float64)  # noqa: E731
    assert w2_squared_diag(t(ma), t(sa), t(mb), t(sb)).item() == pytest.approx(val, rel=1e-6)


def _entropic_by_minimisation(dm, va, vb, gamma):
    """Minimise Cemgil et al. eq. 19 for one dimension over the cross-covariance psi, then eq. 22."""
    lim = np.sqrt(va * vb) * (1 - 1e-12)
    f = lambda psi: -gamma * psi - 0.5 * np.log(va - psi * psi / vb)  # noqa: E731
    res = scipy.optimize.minimize_scalar(f, bounds=(-lim, lim), method="bounded",
                                         options={"xatol": 1e-13 * max(1.0, lim)})
    return dm ** 2 + va + vb - 2 * res.x


@pytest.mark.parametrize("gamma", [0.1, 1.0, 7.0])
def test_w2_gamma_matches_direct_minimisation_of_the_entropic_functional(gamma):
    ma, sa, mb, sb = _pair(5, B=2, d=3)
    got = w2_gamma_diag(ma, sa, mb, sb, gamma)
    for i in range(2):
        ref = sum(_entropic_by_minimisation(float(ma[i, k] - mb[i, k]), float(sa[i, k] ** 2), float(sb[i, k] ** 2),
                                            gamma) for k in range(3))
        assert got[i].item() == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_w2_gamma_tends_to_exact_w2_as_gamma_grows():
    ma, sa, mb, sb = _pair(7)
    exact = (ma - mb).pow(2).sum(1) + (sa - sb).pow(2).sum(1)  # independent closed form
    errs = [float((w2_gamma_diag(ma, sa, mb, sb, g) - exact).abs().max()) for g in (1.0, 10.0, 1e3, 1e6, 1e9)]
    assert all(b < a for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 1e-8
    # expanding the square root: the gap is 1/gamma per dimension to first order
    gap = float((w2_gamma_diag(ma, sa, mb, sb, 1e4) - exact)[0])
    assert gap == pytest.approx(ma.shape[1] / 1e4, rel=1e-2)


def test_w2_gamma_of_identical_gaussians_is_positive_and_vanishes_only_in_the_limit():
    m = torch.zeros(3, 4, dtype=torch.float64)
    s = torch.full((3, 4), 0.8, dtype=torch.float64)
    vals = [float(w2_gamma_diag(m, s, m, s, g)[0]) for g in (0.5, 5.0, 500.0, 5e6)]
    assert all(v > 0 for v in vals)
    assert all(b < a for a, b in zip(vals, vals[1:]))
    assert vals[-1] < 1e-6
    assert float(w2_squared_diag(m, s, m, s)[0]) == 0.0


def test_deterministic_codes_reduce_to_squared_euclidean_distance():
    ma, _, mb, _ = _pair(9)
    ref = ((ma - mb) ** 2).sum(1)
    torch.testing.assert_close(w2_squared_diag(ma, None, mb, None), ref)
    torch.testing.assert_close(w2_gamma_diag(ma, None, mb, None, 0.3), ref)
    torch.testing.assert_close(posterior_distance(ma, None, mb, None, "w2_gamma", 2.0), ref)


def test_bad_input_names_the_problem():
    m, s = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="deterministic"):
        kl_diag_gaussian_std_normal(m, None)
    with pytest.raises(ValueError, match="gamma"):
        w2_gamma_diag(m, s, m, s, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        w2_squared_diag(m, s, torch.zeros(2, 4), None)
    with pytest.raises(ValueError, match="w2_gamma"):
        posterior_distance(m, s, m, s, "kl")
