"""Small autoencoders with known structure for metric tests (not registered as plugins)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig


class TanhMLPAutoencoder(Autoencoder):
    """Random tanh MLP encoder (mean and, if stochastic, softplus std heads) and a tanh MLP decoder."""

    name = "test_tanh_mlp"

    def __init__(self, input_shape=(1, 4, 4), latent_dim=3, hidden=16, stochastic=True, batchnorm=False, seed=0,
                 dtype=torch.float64):
        super().__init__(ModelConfig(input_shape=tuple(input_shape), latent_dim=latent_dim))
        torch.manual_seed(seed)
        n = int(torch.tensor(input_shape).prod())
        layers = [nn.Flatten(), nn.Linear(n, hidden)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)
        self.mu = nn.Linear(hidden, latent_dim)
        self.log_std = nn.Linear(hidden, latent_dim) if stochastic else None
        self.dec = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, n), nn.Sigmoid())
        if batchnorm:  # non-trivial running statistics so eval mode differs from the identity
            bn = self.body[2]
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        self.to(dtype)

    def encode(self, x: Tensor) -> LatentGaussian:
        h = self.body(x)
        std = None if self.log_std is None else nn.functional.softplus(self.log_std(h)) + 1e-3
        return LatentGaussian(self.mu(h), std)

    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z).reshape(z.shape[0], *self.input_shape)


class LinearDecoderModel(Autoencoder):
    """decode(z) = W z + b (no squashing) for closed-form class-radius tests."""

    name = "test_linear_decoder"

    def __init__(self, weight: Tensor, bias: Tensor, input_shape):
        super().__init__(ModelConfig(input_shape=tuple(input_shape), latent_dim=weight.shape[1]))
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def decode(self, z: Tensor) -> Tensor:
        return (z @ self.weight.T + self.bias).reshape(z.shape[0], *self.input_shape)
