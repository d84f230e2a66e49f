"""The GMM prior and the KS / covariance losses against independent computations (scipy, numpy, sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from tests.plugins.models.gmm_family_reference import one_hot_gmm_cov, ref_gmm_cdf, ref_ks, ref_two_point
from latentbench.plugins.models._gmm_prior import GMMPrior
from latentbench.plugins.models._latent_losses import (adversarial_ks, coupled_covariance_loss, coupled_covariance_target,
                                          covariance_loss, empirical_covariance, ks_loss, two_point_ks)


def _random_prior(seed: int, k: int = 3, d: int = 4) -> GMMPrior:
    rng = np.random.default_rng(seed)
    means = torch.tensor(rng.normal(0, 2, (k, d)))
    stds = torch.tensor(rng.uniform(0.3, 1.5, (k, d)))
    weights = torch.tensor(rng.uniform(0.2, 1.0, k))
    return GMMPrior(means, stds, weights)


def _params(prior: GMMPrior):
    return prior.means.numpy(), prior.stds.numpy(), prior.weights.numpy()


def _ref_cdf(prior: GMMPrior, z: np.ndarray) -> np.ndarray:
    return ref_gmm_cdf(*_params(prior), z)


def _ref_ks(prior: GMMPrior, z: np.ndarray) -> float:
    return ref_ks(_params(prior), z)


def _ref_two_point(prior: GMMPrior, z: np.ndarray, za: np.ndarray) -> float:
    return ref_two_point(_params(prior), z, za)


def test_gmm_marginal_cdf_matches_scipy():
    prior = _random_prior(0)
    z = np.random.default_rng(1).normal(0, 3, (50, 4))
    got = prior.marginal_cdf(torch.tensor(z)).numpy()
    np.testing.assert_allclose(got, _ref_cdf(prior, z), rtol=1e-12, atol=1e-14)


def test_ks_loss_matches_direct_scipy_computation():
    prior = _random_prior(2)
    z = np.random.default_rng(3).normal(0, 2, (9, 4))
    got = float(ks_loss(torch.tensor(z), prior.marginal_cdf))
    assert got == pytest.approx(_ref_ks(prior, z), rel=1e-12)


def test_ks_loss_closed_form_at_prior_midpoint_quantiles():
    # z_(i) = Phi^-1((i - 1/2) / N) makes every residual i/N - (i - 1/2)/N = 1/(2N): loss 1/(4N^2)
    n, d = 20, 3
    q = norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    z = np.stack([np.random.default_rng(j).permutation(q) for j in range(d)], axis=1)
    got = float(ks_loss(torch.tensor(z), GMMPrior.standard_normal(d).double().marginal_cdf))
    assert got == pytest.approx(1.0 / (4 * n * n), rel=1e-10)


def test_ks_loss_gradient_matches_finite_differences():
    prior = _random_prior(4, d=3)
    z = torch.tensor(np.random.default_rng(5).normal(0, 2, (7, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ks_loss(t, prior.marginal_cdf), (z,))


def test_two_point_ks_matches_scipy_and_vanishes_for_permutations():
    prior = _random_prior(6)
    rng = np.random.default_rng(7)
    z, za = rng.normal(0, 2, (11, 4)), rng.normal(1, 1, (11, 4))
    got = float(two_point_ks(torch.tensor(z), torch.tensor(za), prior.marginal_cdf))
    assert got == pytest.approx(_ref_two_point(prior, z, za), rel=1e-12)
    assert got > 0
    perm = rng.permutation(11)
    assert float(two_point_ks(torch.tensor(z), torch.tensor(z[perm]), prior.marginal_cdf)) == 0.0


def test_adversarial_ks_weights_of_eq_5_4_and_augmented_eq_5_2():
    prior = _random_prior(8)
    rng = np.random.default_rng(9)
    z, za = rng.normal(0, 1, (10, 4)), rng.normal(0.5, 1, (10, 4))
    aug = 0.5 * _ref_ks(prior, z) + 0.5 * _ref_ks(prior, za)
    coupled = 2 / 3 * aug + 1 / 3 * _ref_two_point(prior, z, za)
    tz, tza = torch.tensor(z), torch.tensor(za)
    assert float(adversarial_ks(tz, tza, prior.marginal_cdf, coupled=True)) == pytest.approx(coupled, rel=1e-12)
    assert float(adversarial_ks(tz, tza, prior.marginal_cdf, coupled=False)) == pytest.approx(aug, rel=1e-12)


def test_gmm_covariance_law_of_total_variance_matches_sampling():
    prior = _random_prior(10, k=3, d=4)
    n = 200_000
    z = prior.sample(n, torch.Generator().manual_seed(11)).numpy()
    c = z - z.mean(axis=0)
    emp = c.T @ c / (n - 1)
    # CLT: each covariance entry is a mean of n products; its standard error comes from their spread
    prods = c[:, :, None] * c[:, None, :]
    se = prods.std(axis=0) / np.sqrt(n)
    exact = prior.covariance().numpy()
    assert np.all(np.abs(emp - exact) < 5 * se), np.abs(emp - exact) / se
    mean_se = z.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(z.mean(axis=0) - prior.mean().numpy()) < 5 * mean_se)
    # mixing is what makes off-diagonal entries non-zero: a diagonal-only formula would fail above
    assert np.abs(exact - np.diag(np.diag(exact))).max() > 20 * se.max()


def test_one_hot_prior_covariance_closed_form():
    # K modes at e_k in D dims, std s: I s^2 + (1/K) P - (1/K^2) P 1 1^T P with P the first K coordinates
    k, d, s = 4, 6, 0.7
    cov = GMMPrior.one_hot(k, d, std=s).double().covariance().numpy()
    np.testing.assert_allclose(cov, one_hot_gmm_cov(k, d, s), atol=1e-12)


def test_covariance_losses_match_numpy():
    rng = np.random.default_rng(12)
    z, za = rng.normal(0, 1, (15, 3)), rng.normal(0, 2, (15, 3))
    s = rng.normal(0, 1, (3, 3))
    s = s @ s.T
    tz, tza, ts = torch.tensor(z), torch.tensor(za), torch.tensor(s)
    np.testing.assert_allclose(empirical_covariance(tz).numpy(), np.cov(z.T, ddof=1), atol=1e-12)
    assert float(covariance_loss(tz, ts)) == pytest.approx(np.mean((np.cov(z.T) - s) ** 2), rel=1e-12)
    a = 0.95
    target = np.block([[s, a * s], [a * s, s]])
    ref = np.mean((np.cov(np.hstack([z, za]).T) - target) ** 2)
    assert float(coupled_covariance_loss(tz, tza, ts, a)) == pytest.approx(ref, rel=1e-12)


def test_coupled_target_structure_and_its_meaning():
    rng = np.random.default_rng(13)
    a = rng.normal(0, 1, (3, 3))
    s = torch.tensor(a @ a.T + np.eye(3))
    alpha = 0.8
    t = coupled_covariance_target(s, alpha)
    assert t.shape == (6, 6)
    assert torch.equal(t[:3, :3], s) and torch.equal(t[3:, 3:], s)
    assert torch.allclose(t[:3, 3:], alpha * s) and torch.allclose(t[3:, :3], alpha * s)
    assert torch.equal(t, t.T)
    # it is the covariance of (z, alpha z + sqrt(1 - alpha^2) z') for independent z, z' ~ N(0, S)
    n = 100_000
    g = torch.Generator().manual_seed(14)
    chol = torch.linalg.cholesky(s)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64) @ chol.T
    zp = torch.randn(n, 3, generator=g, dtype=torch.float64) @ chol.T
    joint = torch.cat([z, alpha * z + (1 - alpha**2) ** 0.5 * zp], dim=1).numpy()
    c = joint - joint.mean(axis=0)
    se = (c[:, :, None] * c[:, None, :]).std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(c.T @ c / (n - 1) - t.numpy()) < 5 * se)
    assert torch.equal(coupled_covariance_target(s, 0.0)[:3, 3:], torch.zeros(3, 3, dtype=s.dtype))


def test_bad_inputs_give_clear_errors():
    prior = GMMPrior.standard_normal(3)
    with pytest.raises(ValueError, match="at least 2"):
        ks_loss(torch.zeros(1, 3), prior.marginal_cdf)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        ks_loss(torch.zeros(4), prior.marginal_cdf)
    with pytest.raises(ValueError, match="alpha"):
        coupled_covariance_target(torch.eye(3), 1.5)
    with pytest.raises(ValueError, match="same shape"):
        two_point_ks(torch.zeros(4, 3), torch.zeros(5, 3), prior.marginal_cdf)
    with pytest.raises(ValueError, match="latent_dim >= n_modes"):
        GMMPrior.one_hot(10, 8)
    with pytest.raises(ValueError, match="prior has 3"):
        prior.marginal_cdf(torch.zeros(4, 5))
