"""Analytic reference rows of the headline score (docs/methods.md §7): models whose answer is known.

- ``identity``: r(x) = x (the code is the image itself). Its robust reconstruction accuracy is the
  reference classifier's own robust accuracy under the same attacks, so it shows how much of a
  score the classifier alone explains.
- ``constant``: r(x) = the mean training image, whatever x is. Its clean reconstruction accuracy is
  the share of the class the classifier gives that image, and no attack can change it; the
  "model ignores its input" checks must fire on it.

Neither has trainable weights: the trainer skips the optimisation (``constant`` takes its image in
``on_train_start``). ``identity`` is not generative (FID and other sampling metrics are skipped);
``constant`` "samples" its one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig


@dataclass
class IdentityConfig(ModelConfig):
    """``latent_dim`` is ignored: the code is the flattened image (C*H*W numbers)."""

    latent_dim: int = 0


class IdentityAutoencoder(Autoencoder):
    name = "identity"
    config_class = IdentityConfig
    source = "reference row of the headline score (docs/methods.md §7)"
    generative = False

    @property
    def latent_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    def encode(self, x: Tensor) -> LatentGaussian:
        return LatentGaussian(x.reshape(x.shape[0], -1))

    def decode(self, z: Tensor) -> Tensor:
        return z.reshape(z.shape[0], *self.input_shape)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        return {"loss": torch.zeros((), device=x.device)}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("the identity autoencoder has no prior to sample from")


@dataclass
class ConstantConfig(ModelConfig):
    latent_dim: int = 1


class ConstantAutoencoder(Autoencoder):
    """Encodes every input to the zero code and decodes every code to one image (the mean training
    image, set before training by ``on_train_start``; mid-grey before that)."""

    name = "constant"
    config_class = ConstantConfig
    source = "reference row of the headline score (docs/methods.md §7)"

    def __init__(self, config: ConstantConfig):
        super().__init__(config)
        self.register_buffer("image", torch.full(tuple(config.input_shape), 0.5))

    def encode(self, x: Tensor) -> LatentGaussian:
        # 0 * x keeps the code on x's graph (a zero gradient, not a missing one)
        return LatentGaussian(0.0 * x.reshape(x.shape[0], -1)[:, : self.latent_dim])

    def decode(self, z: Tensor) -> Tensor:
        return self.image.expand(z.shape[0], *self.image.shape) + 0.0 * z.sum(1).view(-1, 1, 1, 1)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        return {"loss": (self.image - x).pow(2).mean()}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.image.expand(n, *self.image.shape).clone()

    @torch.no_grad()
    def on_train_start(self, loader) -> None:
        total, count = torch.zeros_like(self.image), 0
        for xb, _ in loader:
            total += xb.sum(0).to(total)
            count += xb.shape[0]
        if count:
            self.image.copy_(total / count)
