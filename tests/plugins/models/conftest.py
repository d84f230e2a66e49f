"""Shared fixtures for model tests: the digits data, a single-thread switch for tiny networks, and a
registry that can load checkpoints of the built-in models."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def digits_train():
    from latentbench.plugins.datasets.digits import Digits

    return Digits().load("train")


@pytest.fixture
def single_thread():
    """Tiny networks train faster on one thread than on two (no parallel work to share)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model_registry():
    """The built-in registry (strict: a built-in model that fails to import fails the tests)."""
    from latentbench.registry import load_registry

    return load_registry(strict=True, autoload=False)
