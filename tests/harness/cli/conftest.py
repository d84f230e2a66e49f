import pytest

import latentbench.registry as hp


@pytest.fixture
def toy_cli(toy_registry, monkeypatch):
    """The CLI's process-wide registry replaced by the toy one (toy_ae, toy_latent, toy_recon, ...)."""
    monkeypatch.setattr(hp, "_REGISTRY", toy_registry)
    return toy_registry
