"""beta-TCVAE: the MWS estimator against a direct float64 loop (scipy densities), the importance
weight counted once per sample (docs/methods.md §6), and the decomposition against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch.distributions import Normal, kl_divergence

from latentbench.plugins.models.beta_tcvae import BetaTCVAE, BetaTCVAEConfig, mws_log_qz, tc_decomposition


def _posteriors(m=5, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(m, d, generator=g, dtype=torch.float64)
    std = 0.3 + torch.rand(m, d, generator=g, dtype=torch.float64)
    z = mean + std * torch.randn(m, d, generator=g, dtype=torch.float64)
    return z, mean, std


def test_mws_matches_a_direct_float64_computation():
    z, mean, std = _posteriors()
    n_data = 1000
    log_qz, log_prod = mws_log_qz(z, mean, std, n_data)
    Z, MU, S = z.numpy(), mean.numpy(), std.numpy()
    M, D = Z.shape
    for i in range(M):
        joint = [sum(stats.norm.logpdf(Z[i, d], MU[j, d], S[j, d]) for d in range(D)) for j in range(M)]
        want_qz = math.log(sum(math.exp(v) for v in joint) / (n_data * M))
        want_prod = sum(math.log(sum(stats.norm.pdf(Z[i, d], MU[j, d], S[j, d]) for j in range(M)) / (n_data * M))
                        for d in range(D))
        assert float(log_qz[i]) == pytest.approx(want_qz, rel=1e-12, abs=1e-12)
        assert float(log_prod[i]) == pytest.approx(want_prod, rel=1e-12, abs=1e-12)


def test_importance_weight_enters_log_qz_once_per_sample():
    """Changing N shifts log q(z) by log(N'/N) once, and the D marginals by D log(N'/N); the buggy
    implementation shifts log q(z) by D log(N'/N) too."""
    z, mean, std = _posteriors(m=6, d=4)
    a_qz, a_prod = mws_log_qz(z, mean, std, 100)
    b_qz, b_prod = mws_log_qz(z, mean, std, 10_000)
    shift = math.log(100)
    assert torch.allclose(a_qz - b_qz, torch.full_like(a_qz, shift), atol=1e-12)
    assert torch.allclose(a_prod - b_prod, torch.full_like(a_prod, 4 * shift), atol=1e-12)


def test_identical_posteriors_give_the_closed_form_aggregate():
    """All M posteriors equal q: the MWS sum is M q(z), so log q(z) = log q(z|x) - log N exactly."""
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(1, 3, generator=g, dtype=torch.float64).repeat(4, 1)
    std = (0.5 + torch.rand(1, 3, generator=g, dtype=torch.float64)).repeat(4, 1)
    z = mean + std * torch.randn(4, 3, generator=g, dtype=torch.float64)
    log_qz, log_prod = mws_log_qz(z, mean, std, 50)
    log_q = Normal(mean, std).log_prob(z)
    assert torch.allclose(log_qz, log_q.sum(1) - math.log(50), atol=1e-12)
    assert torch.allclose(log_prod, (log_q - math.log(50)).sum(1), atol=1e-12)


def test_decomposition_sums_to_the_kl_estimate_per_sample():
    z, mean, std = _posteriors(m=7, d=3, seed=2)
    t = tc_decomposition(z, mean, std, 500)
    total = t["mi"] + t["tc"] + t["dwkl"]
    ref = Normal(mean, std).log_prob(z).sum(1) - Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(total, ref, atol=1e-12)


def test_decomposition_averages_to_the_closed_form_kl():
    """E_{z ~ q(z|x)}[MI + TC + DW-KL] = KL(q(z|x) || p(z)): a Monte Carlo check, 5 standard errors."""
    g = torch.Generator().manual_seed(3)
    m, d = 600, 3
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64).repeat(m, 1)
    std = torch.tensor([[0.7, 1.3, 0.4]], dtype=torch.float64).repeat(m, 1)
    z = mean + std * torch.randn(m, d, generator=g, dtype=torch.float64)
    t = tc_decomposition(z, mean, std, 60_000)
    total = (t["mi"] + t["tc"] + t["dwkl"]).numpy()
    kl = float(kl_divergence(Normal(mean[0], std[0]), Normal(0.0, 1.0)).sum())
    assert abs(total.mean() - kl) < 5 * total.std() / math.sqrt(m)


def test_loss_weights_the_three_terms():
    torch.manual_seed(0)
    cfg = dict(hidden=[16], latent_dim=3, dataset_size=200)
    m = BetaTCVAE(BetaTCVAEConfig(**cfg, beta=6.0, alpha=0.5, gamma=2.0)).double().eval()
    x = torch.rand(12, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.manual_seed(1)
        out = m.loss(x)
        torch.manual_seed(1)
        t = m.elbo_terms(x)
        d = tc_decomposition(t["z"], t["mean"], t["std"], 200)
    want = t["nll"].mean() + 0.5 * d["mi"].mean() + 6.0 * d["tc"].mean() + 2.0 * d["dwkl"].mean()
    assert float(out["loss"]) == pytest.approx(float(want), rel=1e-12)


def test_dataset_size_is_counted_at_train_start_or_required():
    m = BetaTCVAE(BetaTCVAEConfig(hidden=[8], latent_dim=2))
    x = torch.rand(10, 1, 8, 8)
    with pytest.raises(ValueError, match="dataset_size"):
        m.loss(x)
    m.on_train_start(iter([(x, None), (x[:4], None)]))
    assert m.dataset_size == 14
    with pytest.raises(ValueError, match="smaller than the batch"):
        mws_log_qz(torch.zeros(5, 2), torch.zeros(5, 2), torch.ones(5, 2), 3)
