"""Shared fixtures for model tests: the digits data, a single-thread switch for tiny networks, and a
registry that can load checkpoints of the built-in models."""

from __future__ import annotations

import pytest
import torch

from harness import hookimpl


@pytest.fixture(scope="session")
def digits_train():
    from plugins.datasets.digits import Digits

    return Digits().load("train")


@pytest.fixture
def single_thread():
    """Tiny networks train faster on one thread than on two (no parallel work to share)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _VAEFamilyPlugin:
    @hookimpl
    def latentbench_models(self):
        from plugins.models import beta_tcvae, gan, lc_vae, mixup_vae, smooth_encoder, vae

        return [*vae.MODELS, *mixup_vae.MODELS, *smooth_encoder.MODELS, *lc_vae.MODELS, *beta_tcvae.MODELS,
                *gan.MODELS]


@pytest.fixture(scope="session")
def model_registry():
    """The built-in registry; while some built-in model module cannot be imported, a registry with
    only the VAE-family models (so checkpoint round trips can still be tested)."""
    from harness.plugins import get_registry, load_registry

    try:
        reg = get_registry()
        if "vae" in reg.names("model"):
            return reg
    except Exception:
        pass
    return load_registry(strict=False, autoload=False, extra_plugins=[_VAEFamilyPlugin()])
