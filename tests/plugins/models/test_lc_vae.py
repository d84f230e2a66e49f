"""LC-VAE (Manoj §4): the pairwise regulariser against a direct loop, and weight clipping after a step."""

from __future__ import annotations

import pytest
import torch

from latentbench.data import Split
from latentbench.training import TrainConfig, train
from latentbench.plugins.models.lc_vae import LCVAE, LCVAEConfig, pairwise_lipschitz_ratio
from latentbench.plugins.models.vae import VAE, VAEConfig

MLP = dict(backbone="mlp", hidden=[16, 16], latent_dim=3, activation="tanh")


def _loop_regulariser(codes, x):
    n = x.shape[0] // 2
    total = 0.0
    for i in range(n):
        num = sum((float(a) - float(b)) ** 2 for a, b in zip(codes[i].flatten(), codes[i + n].flatten()))
        den = sum((float(a) - float(b)) ** 2 for a, b in zip(x[i].flatten(), x[i + n].flatten()))
        total += 0.0 if den == 0 else num / den
    return total


@pytest.mark.parametrize("batch", [8, 9])
def test_regulariser_matches_a_direct_loop(batch):
    g = torch.Generator().manual_seed(batch)
    x = torch.rand(batch, 1, 8, 8, dtype=torch.float64, generator=g)
    codes = torch.randn(batch, 3, dtype=torch.float64, generator=g)
    ratio = pairwise_lipschitz_ratio(codes, x)
    assert ratio.shape == (batch // 2,)
    assert float(ratio.sum()) == pytest.approx(_loop_regulariser(codes, x), rel=1e-12)


def test_identical_pair_counts_zero():
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    x[2] = x[0]
    codes = torch.randn(4, 3, dtype=torch.float64)
    codes[2] = codes[0]
    ratio = pairwise_lipschitz_ratio(codes, x)
    assert float(ratio[0]) == 0.0 and torch.isfinite(ratio).all()


def test_loss_is_elbo_plus_lambda_times_regulariser_over_batch():
    torch.manual_seed(0)
    m = LCVAE(LCVAEConfig(**MLP, lipschitz_weight=30.0)).double().eval()
    v = VAE(VAEConfig(**MLP)).double().eval()
    v.load_state_dict(m.state_dict())
    x = torch.rand(10, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.manual_seed(4)
        out = m.loss(x)
        torch.manual_seed(4)
        ref = v.loss(x)
        reg = _loop_regulariser(m.encode(x).mean, x)
    assert float(out["lipschitz_reg"]) == pytest.approx(reg / 10, rel=1e-10)
    assert float(out["loss"]) == pytest.approx(float(ref["loss"]) + 30.0 * reg / 10, rel=1e-10)


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_encoder_parameters_in_clip_range_after_a_step(backbone, digits_train):
    torch.manual_seed(0)
    cfg = LCVAEConfig(**{**MLP, "backbone": backbone}, conv_channels=[8, 16], clip=0.05)
    m = LCVAE(cfg)
    # BatchNorm weights start at 1 and default init puts some weights beyond 0.05: clipping has work to do
    assert max(float(p.detach().abs().max()) for p in m.encoder.parameters()) > 0.05
    train(m, Split(digits_train.x[:64], None), TrainConfig(epochs=1, batch_size=32, max_steps=1, progress=False))
    c = torch.tensor(0.05, dtype=torch.float32)  # the bound as the float32 weights hold it
    for name, p in m.encoder.named_parameters():
        assert bool((p.detach().abs() <= c).all()), name
    # the decoder is not constrained
    assert max(float(p.detach().abs().max()) for p in m.decoder.parameters()) > 0.05


def test_bad_lc_config():
    with pytest.raises(ValueError, match="clip"):
        LCVAE(LCVAEConfig(**MLP, clip=0.0))
    with pytest.raises(ValueError, match="lipschitz_weight"):
        LCVAE(LCVAEConfig(**MLP, lipschitz_weight=-1.0))
