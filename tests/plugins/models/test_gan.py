"""2D-grid GAN (Manoj §3.1): gradient separation of the one-optimiser loss, the non-saturating
generator gradient, no encoder, and generators trained on k modes covering those k modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latentbench.data import DatasetConfig
from latentbench.training import TrainConfig, train
from latentbench.plugins.datasets.grid2d import Grid2D, grid_means, nearest_mode
from latentbench.plugins.models.gan import GAN, GANConfig


def _gan(**kw):
    torch.manual_seed(0)
    return GAN(GANConfig(**{"hidden": [16, 16], "disc_hidden": [16, 16], **kw}))


def test_encode_raises_a_clear_error():
    with pytest.raises(NotImplementedError, match="no encoder"):
        _gan().encode(torch.randn(3, 2))


def test_sample_and_decode():
    m = _gan().eval()
    s = m.sample(50, torch.Generator().manual_seed(0))
    assert s.shape == (50, 2) and torch.equal(s, m.sample(50, torch.Generator().manual_seed(0)))
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, m.decode(z))


@pytest.mark.parametrize("pack", [1, 2])
def test_each_player_gets_gradients_only_from_its_own_loss(pack):
    m = _gan(pack=pack)
    x = torch.randn(8, 2)
    d_params, g_params = list(m.discriminator.parameters()), list(m.generator.parameters())
    params = d_params + g_params
    torch.manual_seed(1)
    out = m.loss(x)
    grads = {k: torch.autograd.grad(out[k], params, allow_unused=True, retain_graph=True)
             for k in ("loss", "d_loss", "g_loss")}
    nd = len(d_params)
    for i in range(len(params)):
        total, gd, gg = grads["loss"][i], grads["d_loss"][i], grads["g_loss"][i]
        if i < nd:  # discriminator: only L_D
            assert gg is None and gd is not None and torch.equal(total, gd)
        else:  # generator: only L_G
            assert gd is None and gg is not None and torch.equal(total, gg)


def test_generator_gradient_is_the_non_saturating_one():
    """Reference: -log sigmoid(D(G(z))) through the ordinary discriminator, same z."""
    m = _gan(pack=2)
    g_params = list(m.generator.parameters())
    x = torch.randn(6, 2)
    torch.manual_seed(2)
    out = m.loss(x)
    got = torch.autograd.grad(out["g_loss"], g_params)
    torch.manual_seed(2)
    z = torch.randn(6, 2)
    fake = m.generator(z).reshape(3, 4)  # pack 2: pairs of consecutive points
    ref_loss = -F.logsigmoid(m.discriminator(fake)).mean()
    want = torch.autograd.grad(ref_loss, g_params)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)
    # and L_D is the real/fake cross-entropy on packed groups
    with torch.no_grad():
        d_ref = -F.logsigmoid(m.discriminator(x.reshape(3, 4))).mean() - F.logsigmoid(-m.discriminator(fake)).mean()
    assert float(out["d_loss"].detach()) == pytest.approx(float(d_ref), rel=1e-6)


def test_bad_config_and_batch():
    with pytest.raises(ValueError, match="pack"):
        GAN(GANConfig(pack=0))
    with pytest.raises(ValueError, match="mlp"):
        GAN(GANConfig(backbone="conv"))
    with pytest.raises(ValueError, match="batch size >= pack"):
        _gan(pack=4).loss(torch.randn(3, 2))
    with pytest.raises(ValueError, match="input_shape"):
        _gan().loss(torch.randn(3, 3))


@pytest.mark.parametrize("k", [1, 2])
def test_generator_trained_on_k_modes_covers_those_modes(k, single_thread):
    """Manoj's 2D grid (n = 1: 9 modes, spacing 2, std 0.05) restricted to k modes. PacGAN-2 packing
    keeps this short run from collapsing onto one mode."""
    ds = Grid2D(DatasetConfig(options={"n": 1, "modes": k, "train_size": 2048}))
    data = ds.load("train")
    modes = data.y.unique()
    assert len(modes) == k
    torch.manual_seed(0)
    m = GAN(GANConfig(hidden=[64, 64], disc_hidden=[64, 64], lr=1e-3, pack=2))
    train(m, data, TrainConfig(epochs=120, batch_size=128, max_steps=1920, progress=False, seed=0))
    with torch.no_grad():
        s = m.sample(2000, torch.Generator().manual_seed(1))
    near = torch.cdist(s, grid_means(1)[modes]).min(1).values < 0.5  # 10 data std, a quarter of the spacing
    assert float(near.float().mean()) > 0.8
    share = torch.bincount(nearest_mode(s, 1), minlength=9).float() / len(s)
    covered = set(torch.nonzero(share > 0.1).flatten().tolist())
    assert covered == set(modes.tolist()), (share, modes)
