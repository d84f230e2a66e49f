"""Tiny models for attack tests: linear encoders with closed-form optima and a small tanh MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig


class LinearAE(Autoencoder):
    """z = W vec(x) (+ optional affine std V vec(x) + c), decoder identity or D z.

    With an affine std the stochastic pullback metric is W^T W + V^T V exactly, and with decoder D
    the curved metric is W^T D^T D W (+ V^T D^T D V): both are dense-computable in the tests.
    """

    name = "test_linear_ae"
    generative = False

    def __init__(self, W: torch.Tensor, input_shape, V: torch.Tensor | None = None, c: float = 2.0,
                 D: torch.Tensor | None = None):
        super().__init__(ModelConfig(input_shape=tuple(input_shape), latent_dim=W.shape[0]))
        self.register_buffer("W", W)
        self.register_buffer("V", V if V is not None else torch.empty(0))
        self.c = c
        self.register_buffer("D", D if D is not None else torch.empty(0))

    def encode(self, x):
        flat = x.reshape(x.shape[0], -1)
        mean = flat @ self.W.T
        std = flat @ self.V.T + self.c if self.V.numel() else None
        return LatentGaussian(mean, std)

    def decode(self, z):
        return z @ self.D.T if self.D.numel() else z


class TinyMLPAE(Autoencoder):
    """tanh MLP encoder (mean, optional softplus std) and sigmoid decoder back to the image shape."""

    name = "test_tiny_mlp_ae"

    def __init__(self, input_shape=(1, 4, 4), latent_dim=3, hidden=16, stochastic=True, seed=0,
                 dtype=torch.float64):
        super().__init__(ModelConfig(input_shape=tuple(input_shape), latent_dim=latent_dim))
        n = int(np.prod(input_shape))
        g = torch.Generator().manual_seed(seed)
        self.stochastic = stochastic

        def lin(i, o):
            layer = nn.Linear(i, o).to(dtype)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(o, i, generator=g, dtype=dtype) * (2.0 / i) ** 0.5)
                layer.bias.copy_(torch.randn(o, generator=g, dtype=dtype) * 0.1)
            return layer

        self.enc = nn.Sequential(lin(n, hidden), nn.Tanh())
        self.mu = lin(hidden, latent_dim)
        self.log_std = lin(hidden, latent_dim)
        self.dec = nn.Sequential(lin(latent_dim, hidden), nn.Tanh(), lin(hidden, n), nn.Sigmoid())

    def encode(self, x):
        h = self.enc(x.reshape(x.shape[0], -1))
        std = nn.functional.softplus(self.log_std(h)) + 1e-3 if self.stochastic else None
        return LatentGaussian(self.mu(h), std)

    def decode(self, z):
        return self.dec(z).reshape(z.shape[0], *self.input_shape)


class EncodeRecorder:
    """Wraps ``model.encode`` to keep every batch the attack feeds the encoder."""

    def __init__(self, model):
        self.model = model
        self.inputs: list[torch.Tensor] = []
        self._orig = model.encode

        def encode(x):
            self.inputs.append(x.detach().clone())
            return self._orig(x)

        model.encode = encode

    def assert_feasible(self, x: torch.Tensor, eps: float, norm: str, allowed_extra=()):
        """Every recorded batch is in [0, 1] and within eps of x (rows are restart-major copies)."""
        B = x.shape[0]
        tol = 1e-6 * max(1.0, eps)
        assert self.inputs, "the attack never called the encoder"
        for batch in self.inputs:
            if any(batch.shape == e.shape and torch.equal(batch, e) for e in allowed_extra):
                continue
            assert float(batch.min()) >= -1e-9 and float(batch.max()) <= 1 + 1e-9
            # rows are restart-major copies of x, or of a subset of x (restarts on not-yet-fooled
            # inputs): each row must be within the budget of some clean input
            d = batch.reshape(batch.shape[0], 1, -1) - x.reshape(1, B, -1)
            n = (d.abs().amax(2) if norm == "linf" else d.norm(dim=2)).amin(1)
            assert float(n.max()) <= eps + tol, f"an evaluated point is outside the {norm} budget {eps}: {float(n.max())}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
