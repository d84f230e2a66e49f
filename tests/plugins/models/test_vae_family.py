"""VAE / beta-VAE mathematics against torch.distributions and direct formulas, and training and
checkpoint round trips for every VAE-family model (vae, beta_vae, mixup_vae, smooth_encoder,
lc_vae, beta_tcvae, gan)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from latentbench.checkpoint import load_checkpoint, save_checkpoint
from latentbench.training import TrainConfig, train
from latentbench.plugins.models.beta_tcvae import BetaTCVAE, BetaTCVAEConfig
from latentbench.plugins.models.gan import GAN, GANConfig
from latentbench.plugins.models.lc_vae import LCVAE, LCVAEConfig
from latentbench.plugins.models.mixup_vae import MixupVAE, MixupVAEConfig
from latentbench.plugins.models.smooth_encoder import SmoothEncoder, SmoothEncoderConfig
from latentbench.plugins.models.vae import BETA_SWEEP, VAE, BetaVAE, BetaVAEConfig, VAEConfig, reconstruction_nll

TINY = dict(hidden=[32, 32], latent_dim=4, backbone="mlp")
FAMILY = [(VAE, VAEConfig), (BetaVAE, BetaVAEConfig), (MixupVAE, MixupVAEConfig), (LCVAE, LCVAEConfig),
          (BetaTCVAE, BetaTCVAEConfig), (SmoothEncoder, SmoothEncoderConfig)]


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g)


def test_defaults_follow_spec():
    c = VAEConfig()
    assert (c.latent_dim, c.hidden, c.activation, c.batchnorm, c.lr) == (32, [256, 256, 512], "tanh", True, 3e-3)
    lc = LCVAEConfig()
    assert (lc.latent_dim, lc.lipschitz_weight, lc.clip, lc.lr, lc.backbone) == (10, 30.0, 0.3, 1e-3, "conv")
    assert lc.conv_channels == [128, 256, 512, 1024] and lc.activation == "relu"
    se = SmoothEncoderConfig()
    assert (se.hidden, se.activation, se.latent_dim, se.decoder_variance, se.gamma) == ([200] * 4, "relu", 32, 0.5, 1.0)
    assert (se.selection_eps, se.selection_norm, se.selection_steps) == (0.1, "linf", 20)
    assert BetaTCVAEConfig().beta == 6.0
    assert MixupVAEConfig().mixup_a == MixupVAEConfig().mixup_b == 0.5


def test_beta_sweep_is_50_log_spaced_values_from_0_01_to_10():
    b = np.array(BETA_SWEEP)
    assert len(b) == 50 and b[0] == pytest.approx(0.01) and b[-1] == pytest.approx(10.0)
    steps = np.diff(np.log10(b))
    assert np.allclose(steps, 3.0 / 49)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    m = VAE(VAEConfig(**TINY)).double().eval()
    x = _batch().double()
    t = m.elbo_terms(x)
    q = Normal(t["mean"], t["std"])
    ref = kl_divergence(q, Normal(torch.zeros_like(t["mean"]), torch.ones_like(t["std"]))).sum(1)
    assert torch.allclose(t["kl"], ref, rtol=1e-10, atol=1e-12)
    assert (t["std"] > 0).all()


@pytest.mark.parametrize("std_param", ["logvar", "softplus"])
def test_std_link(std_param):
    torch.manual_seed(0)
    m = VAE(VAEConfig(**TINY, std_param=std_param)).double().eval()
    x = _batch().double()
    raw = m.encoder(x)[:, 4:]
    want = torch.exp(0.5 * raw) if std_param == "logvar" else torch.log1p(torch.exp(raw)) + 1e-5
    assert torch.allclose(m.encode(x).std, want, rtol=1e-12)


def test_bernoulli_nll_matches_torch_distributions_on_binary_and_formula_on_grey():
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 8, 8, dtype=torch.float64) * 3
    xb = (torch.rand(5, 1, 8, 8, dtype=torch.float64) > 0.5).double()
    ref = -Bernoulli(logits=logits).log_prob(xb).sum((1, 2, 3))
    assert torch.allclose(reconstruction_nll(logits, xb, "bernoulli", 1.0), ref, rtol=1e-12)
    xg = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    p = torch.sigmoid(logits)
    ref_g = -(xg * torch.log(p) + (1 - xg) * torch.log(1 - p)).sum((1, 2, 3))
    assert torch.allclose(reconstruction_nll(logits, xg, "bernoulli", 1.0), ref_g, rtol=1e-10)


def test_gaussian_nll_matches_torch_distributions():
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    v = 0.3
    ref = -Normal(torch.sigmoid(logits), math.sqrt(v)).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(reconstruction_nll(logits, x, "gaussian", v), ref, rtol=1e-12)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_beta_vae_loss_is_nll_plus_beta_kl_at_the_reparameterised_sample(likelihood):
    torch.manual_seed(0)
    beta = 2.5
    m = BetaVAE(BetaVAEConfig(**TINY, beta=beta, likelihood=likelihood, decoder_variance=0.2)).double().eval()
    x = _batch().double()
    torch.manual_seed(123)
    out = m.loss(x)
    # independent recomputation with the same noise draw
    torch.manual_seed(123)
    with torch.no_grad():
        h = m.encoder(x)
        mean, std = h[:, :4], torch.exp(0.5 * h[:, 4:])
        z = mean + std * torch.randn_like(mean)
        g = torch.sigmoid(m.decoder(z))
    if likelihood == "bernoulli":
        ll = (x * torch.log(g) + (1 - x) * torch.log(1 - g)).sum((1, 2, 3))
    else:
        ll = Normal(g, math.sqrt(0.2)).log_prob(x).sum((1, 2, 3))
    kl = kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).sum(1)
    assert float(out["loss"].detach()) == pytest.approx(float((-ll + beta * kl).mean()), rel=1e-9)
    assert float(out["elbo"].detach()) == pytest.approx(float((ll - kl).mean()), rel=1e-9)


def test_vae_is_beta_vae_with_beta_one():
    torch.manual_seed(0)
    a = VAE(VAEConfig(**TINY)).eval()
    b = BetaVAE(BetaVAEConfig(**TINY, beta=1.0)).eval()
    b.load_state_dict(a.state_dict())
    x = _batch()
    torch.manual_seed(5)
    la = a.loss(x)["loss"]
    torch.manual_seed(5)
    lb = b.loss(x)["loss"]
    assert torch.equal(la, lb)


def test_decode_and_sample_in_unit_box_and_reproducible():
    m = VAE(VAEConfig(**TINY)).eval().requires_grad_(False)
    s1 = m.sample(20, torch.Generator().manual_seed(3))
    s2 = m.sample(20, torch.Generator().manual_seed(3))
    assert s1.shape == (20, 1, 8, 8) and torch.equal(s1, s2)
    assert float(s1.min()) >= 0 and float(s1.max()) <= 1
    big = m.decode(torch.randn(7, 4) * 100)
    assert float(big.min()) >= 0 and float(big.max()) <= 1


@pytest.mark.parametrize("bad, match", [
    (dict(likelihood="poisson"), "likelihood"), (dict(decoder_variance=0.0), "decoder_variance"),
    (dict(std_param="exp"), "std_param"), (dict(activation="gelu"), "activation")])
def test_bad_config_names_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        VAE(VAEConfig(**{**TINY, **bad}))


def test_bad_input_is_rejected_with_the_fix():
    m = VAE(VAEConfig(**TINY))
    with pytest.raises(ValueError, match="input_shape"):
        m.loss(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.loss(torch.rand(4, 1, 8, 8) * 255)


def _fixed_eval_loss(model, x, seed=7):
    model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():  # the smooth encoder's selection still gets the input gradients it needs
        return float(model.loss(x)["loss"])


@pytest.mark.parametrize("cls, cfg_cls", FAMILY, ids=[c.name for c, _ in FAMILY])
def test_short_training_on_digits_lowers_the_loss(cls, cfg_cls, digits_train, single_thread):
    torch.manual_seed(0)
    extra = dict(dataset_size=len(digits_train)) if cls is BetaTCVAE else {}
    model = cls(cfg_cls(**TINY, **extra))
    x = digits_train.x[:256]
    before = _fixed_eval_loss(model, x)
    res = train(model, digits_train, TrainConfig(epochs=4, batch_size=128, lr=3e-3, progress=False))
    after = _fixed_eval_loss(model, x)
    assert res.steps == 4 * 11
    # losses are in nats per image; beta_tcvae's carries a large constant MWS offset, so no relative margin
    assert after < before - 1.0, (before, after)
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert not model.training


def _make(cls, cfg_cls):
    if cls is GAN:
        return GAN(GANConfig(hidden=[16, 16], disc_hidden=[16], pack=2))
    extra = dict(dataset_size=1000) if cls is BetaTCVAE else {}
    return cls(cfg_cls(**{**TINY, "batchnorm": True}, **extra))


@pytest.mark.parametrize("cls, cfg_cls", FAMILY + [(GAN, GANConfig)], ids=[c.name for c, _ in FAMILY] + ["gan"])
def test_checkpoint_round_trip_is_bit_identical(cls, cfg_cls, tmp_path, model_registry, digits_train):
    torch.manual_seed(0)
    model = _make(cls, cfg_cls)
    if cls is not GAN:
        # one step so BatchNorm running statistics differ from their initial values
        train(model, digits_train, TrainConfig(epochs=1, batch_size=64, max_steps=2, progress=False))
    model.eval()
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", registry=model_registry)
    assert type(loaded) is cls and loaded.config == model.config
    sd_a, sd_b = model.state_dict(), loaded.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    z = torch.randn(5, model.latent_dim)
    assert torch.equal(model.decode(z), loaded.decode(z))
    if cls is GAN:
        pts = torch.randn(6, 2)
        assert torch.equal(model.discriminate(pts), loaded.discriminate(pts))
    else:
        x = digits_train.x[:9]
        qa, qb = model.encode(x), loaded.encode(x)
        assert torch.equal(qa.mean, qb.mean) and torch.equal(qa.std, qb.std)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls, cfg_cls", FAMILY + [(GAN, GANConfig)], ids=[c.name for c, _ in FAMILY] + ["gan"])
def test_training_step_on_cuda(cls, cfg_cls, digits_train):
    torch.manual_seed(0)
    model = _make(cls, cfg_cls)
    data = digits_train
    if cls is GAN:
        from latentbench.data import Split
        data = Split(torch.randn(256, 2), None)
    res = train(model, data, TrainConfig(epochs=1, batch_size=64, max_steps=2, device="cuda", progress=False))
    assert res.steps == 2 and math.isfinite(res.history[-1]["loss"])
    assert model.device.type == "cuda"
    assert model.sample(3, torch.Generator().manual_seed(0)).device.type == "cuda"
