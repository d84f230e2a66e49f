"""The analytic reference rows of the headline score: ``identity`` (r(x) = x) and ``constant``
(r(x) = the mean training image), built from the registry and trained by the generic trainer."""

from __future__ import annotations

import pytest
import torch

from latentbench.checkpoint import load_checkpoint, save_checkpoint
from latentbench.data import Split
from latentbench.training import TrainConfig, train


def _data(n, shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return Split(torch.rand((n, *shape), generator=g), torch.randint(0, 3, (n,), generator=g))


def _build(registry, name, shape=(1, 8, 8)):
    cls = registry.model(name)
    return cls(cls.config_class(input_shape=shape))


def test_both_build_from_the_registry_and_have_nothing_to_train(registry):
    for name in ("identity", "constant"):
        model = _build(registry, name)
        assert model.name == name and type(model).__module__.endswith("models.reference")
        assert not any(p.requires_grad for p in model.parameters())
    assert registry.model("identity").generative is False
    assert registry.model("constant").generative is True


def test_identity_reconstructs_exactly_and_its_code_is_the_image(registry):
    model = _build(registry, "identity", (2, 3, 5))
    x = torch.rand((4, 2, 3, 5), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    q = model.encode(x)
    assert q.std is None and model.latent_dim == 30
    assert torch.equal(q.mean, x.reshape(4, 30))
    assert torch.equal(model.reconstruct(x), x)
    # its input gradient is the identity: d sum(v * r(x)) / dx = v
    xr = x.clone().requires_grad_(True)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (g,) = torch.autograd.grad((model.reconstruct(xr) * v).sum(), xr)
    assert torch.equal(g, v)
    with pytest.raises(NotImplementedError):
        model.sample(2)
    result = train(model, _data(20, (2, 3, 5)), TrainConfig(epochs=2, batch_size=8, progress=False))
    assert result.steps == 0 and torch.equal(model.reconstruct(x), x)


@pytest.mark.parametrize("n,batch_size", [(96, 32), (50, 128), (80, 32)])
def test_constant_learns_the_mean_training_image_through_the_trainer(registry, n, batch_size):
    data = _data(n)
    model = _build(registry, "constant")
    assert torch.equal(model.image, torch.full((1, 8, 8), 0.5))  # mid-grey before training
    result = train(model, data, TrainConfig(epochs=3, batch_size=batch_size, progress=False))
    assert result.steps == 0  # no optimisation: the image is a closed form
    mean = data.x.double().mean(0)  # the closed form, in float64
    torch.testing.assert_close(model.image.double(), mean, rtol=0, atol=1e-6)
    x = torch.rand((5, 1, 8, 8), generator=torch.Generator().manual_seed(3))
    r = model.reconstruct(x)
    assert torch.equal(r, model.image.expand(5, 1, 8, 8))
    torch.testing.assert_close(model.sample(2), model.image.expand(2, 1, 8, 8), rtol=0, atol=0)
    # the reconstruction stays on the input's graph with a zero gradient (not a missing one)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.reconstruct(xr).sum(), xr, allow_unused=False)
    assert torch.equal(g, torch.zeros_like(x))
    # its loss is the squared error to the image, minimal at the mean image
    torch.testing.assert_close(model.loss(data.x)["loss"], (data.x - model.image).pow(2).mean())


def test_constant_sees_every_training_image_when_the_last_batch_is_short(registry):
    # 70 images in batches of 64: the last 6 would be dropped by the training loader
    data = _data(70)
    model = _build(registry, "constant")
    train(model, data, TrainConfig(epochs=1, batch_size=64, progress=False))
    torch.testing.assert_close(model.image.double(), data.x.double().mean(0), rtol=0, atol=1e-6)


def test_checkpoints_round_trip(registry, tmp_path):
    data = _data(40)
    const = _build(registry, "constant")
    train(const, data, TrainConfig(epochs=1, batch_size=40, progress=False))
    back = load_checkpoint(save_checkpoint(const, tmp_path / "c"), registry)
    assert type(back) is type(const) and torch.equal(back.image, const.image)
    ident = _build(registry, "identity")
    back = load_checkpoint(save_checkpoint(ident, tmp_path / "i"), registry)
    assert torch.equal(back.reconstruct(data.x), data.x)
