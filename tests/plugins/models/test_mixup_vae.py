"""Latent-mixup VAE (Khan & Storkey §4.2.2): pairs and alphas, the penalty against a direct loop, and that the
training loss mixes x and z with the SAME pair and the SAME alpha (docs/methods.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from latentbench.plugins.models.mixup_vae import MixupVAE, MixupVAEConfig, mixup_pairs
from latentbench.plugins.models.vae import VAE, VAEConfig


def test_pairs_are_distinct_and_cover_the_batch():
    torch.manual_seed(0)
    for b in (2, 3, 17, 128):
        i, j, alpha = mixup_pairs(b)
        assert (i != j).all()
        assert torch.equal(i.sort().values, torch.arange(b)) and torch.equal(j.sort().values, torch.arange(b))
        assert alpha.shape == (b,) and ((alpha > 0) & (alpha < 1)).all()
    with pytest.raises(ValueError, match="two samples"):
        mixup_pairs(1)


def test_alpha_follows_beta_half_half():
    torch.manual_seed(0)
    alphas = torch.cat([mixup_pairs(100)[2] for _ in range(50)]).numpy().astype(np.float64)
    # the arcsine law Beta(0.5, 0.5); a uniform or Beta(1, 1) alpha would fail this
    assert stats.kstest(alphas, stats.beta(0.5, 0.5).cdf).pvalue > 1e-3
    assert stats.kstest(alphas, stats.uniform().cdf).pvalue < 1e-6


def _model(**kw):
    torch.manual_seed(0)
    return MixupVAE(MixupVAEConfig(hidden=[16, 16], latent_dim=3, **kw)).double().eval()


def test_penalty_matches_a_direct_loop():
    m = _model()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    i = torch.tensor([0, 1, 2, 3, 4, 5])
    j = torch.tensor([3, 0, 5, 1, 2, 4])
    alpha = torch.tensor([0.1, 0.5, 0.9, 0.02, 0.7, 0.33], dtype=torch.float64)
    with torch.no_grad():
        out = m.mixup_penalty(x, m.encode(x).mean, i, j, alpha)
        for k in range(6):
            a, xi, xj = float(alpha[k]), x[i[k]:i[k] + 1], x[j[k]:j[k] + 1]
            x_m = a * xi + (1 - a) * xj
            z_m = a * m.encode(xi).mean + (1 - a) * m.encode(xj).mean
            enc = torch.sqrt(((z_m - m.encode(x_m).mean) ** 2).sum())
            dec = torch.sqrt(((m.decode(z_m) - x_m) ** 2).sum())
            assert float(out["encoder_term"][k]) == pytest.approx(float(enc), rel=1e-10)
            assert float(out["decoder_term"][k]) == pytest.approx(float(dec), rel=1e-10)


def test_training_loss_mixes_codes_of_the_same_pair_with_the_same_alpha():
    """With an affine encoder (no hidden layer), f(alpha x_i + (1-alpha) x_j) = alpha f(x_i) + (1-alpha) f(x_j)
    exactly, so the encoder term vanishes iff z_m uses x_m's pair and alpha. Mixing z with an independent
    permutation or alpha (the public code's bug) leaves a large term."""
    torch.manual_seed(0)
    m = MixupVAE(MixupVAEConfig(hidden=[], batchnorm=False, latent_dim=3)).double().eval()
    x = torch.rand(32, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    with torch.no_grad():
        out = m.loss(x)
    assert float(out["mixup_encoder"]) < 1e-12
    assert float(out["mixup_decoder"]) > 0.1
    # the same model with z mixed from an independent pairing gives a clearly non-zero term
    mean = m.encode(x).mean.detach()
    i, j, alpha = mixup_pairs(32)
    i2, j2, alpha2 = mixup_pairs(32)
    x_m = alpha.view(-1, 1, 1, 1) * x[i] + (1 - alpha.view(-1, 1, 1, 1)) * x[j]
    z_bug = alpha2.view(-1, 1) * mean[i2] + (1 - alpha2.view(-1, 1)) * mean[j2]
    assert float((z_bug - m.encode(x_m).mean.detach()).norm(dim=1).mean()) > 1e-2


def test_loss_adds_weighted_penalty_to_the_elbo():
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    m = _model(mixup_weight=2.0)
    v = VAE(VAEConfig(hidden=[16, 16], latent_dim=3)).double().eval()
    v.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.manual_seed(9)
        out = m.loss(x)
        torch.manual_seed(9)
        ref = v.loss(x)
    assert float(out["nll"]) == pytest.approx(float(ref["nll"]), rel=1e-12)
    want = ref["loss"] + 2.0 * (out["mixup_encoder"] + out["mixup_decoder"])
    assert float(out["loss"]) == pytest.approx(float(want), rel=1e-12)


def test_bad_mixup_config():
    with pytest.raises(ValueError, match="Beta shape"):
        MixupVAE(MixupVAEConfig(mixup_a=0.0))
    with pytest.raises(ValueError, match="mixup_weight"):
        MixupVAE(MixupVAEConfig(mixup_weight=-1.0))
