"""The autoencoder interface every model plugin implements (docs/methods.md §0)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
from torch import Tensor, nn


@dataclass
class LatentGaussian:
    """Posterior q(z|x) = N(mean, diag(std^2)); ``std`` is None for deterministic encoders."""

    mean: Tensor
    std: Optional[Tensor] = None

    @property
    def deterministic(self) -> bool:
        return self.std is None

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        if self.std is None:
            return self.mean
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def rsample(self) -> Tensor:
        """Reparameterised sample for training (uses the global RNG state, seeded by the trainer)."""
        if self.std is None:
            return self.mean
        return self.mean + self.std * torch.randn_like(self.mean)


@dataclass
class ModelConfig:
    """Fields every model config has. Model plugins subclass this dataclass with their own fields.

    ``input_shape`` is (C, H, W); ``backbone`` is ``"mlp"`` or ``"conv"``.
    """

    input_shape: tuple[int, int, int] = (1, 8, 8)
    latent_dim: int = 32
    backbone: str = "mlp"
    #: default learning rate for the trainer when the training config leaves it open
    lr: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "config") -> "ModelConfig":
        """Build a config from a plain dict, rejecting unknown keys and wrong types by name."""
        from latentbench.typed_config import build_dataclass

        return build_dataclass(cls, data, path)


class Autoencoder(nn.Module):
    """Base class of model plugins.

    Subclasses set ``name``, ``config_class`` and implement ``encode``, ``decode`` and ``loss``.
    Generative models also implement ``sample``. Attacks and metrics use ``encode(x).mean`` unless
    a metric says otherwise.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: document and section the model implements, shown by `latentbench plugins`
    source: ClassVar[str] = ""
    #: True when ``sample`` draws from a prior (needed by FID and class radius)
    generative: ClassVar[bool] = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.input_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def encode(self, x: Tensor) -> LatentGaussian:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean in [0, 1], shape (B, *input_shape)."""
        raise NotImplementedError

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Training objective; the ``"loss"`` entry is minimised, the others are logged."""
        raise NotImplementedError

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images from the model's prior (default N(0, I))."""
        z = torch.randn((n, self.latent_dim), generator=generator, device="cpu").to(self.device)
        return self.decode(z)

    def on_train_step_end(self) -> None:
        """Called by the trainer after every optimiser step (e.g. LC-VAE's weight clipping)."""

    def on_train_start(self, loader) -> None:
        """Called once before training with the training loader (e.g. to estimate loss weights)."""
