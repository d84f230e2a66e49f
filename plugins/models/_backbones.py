"""MLP and conv backbones sized from ``input_shape`` (8x8 digits up to 64x64 colour images).

Every model config inherits :class:`NetConfig`; models build their encoder with
``make_encoder(cfg, out_dim)`` and their decoder with ``make_decoder(cfg)`` (which returns logits:
the model chooses the output link, e.g. a sigmoid for [0, 1] images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from latentbench.model import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU,
               "softplus": nn.Softplus}
BACKBONES = ("mlp", "conv")


@dataclass
class NetConfig(ModelConfig):
    """Architecture fields shared by every built-in model."""

    hidden: list[int] = field(default_factory=lambda: [256, 256, 512])
    activation: str = "tanh"
    batchnorm: bool = True
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    conv_kernel: int = 4

    def validate(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone '{self.backbone}' unknown: use one of {', '.join(BACKBONES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation '{self.activation}' unknown: use one of {', '.join(ACTIVATIONS)}")
        if len(self.input_shape) not in (1, 3):
            raise ValueError(f"input_shape must be (C, H, W) or (D,), got {self.input_shape}")
        if self.backbone == "conv" and (len(self.input_shape) != 3 or min(self.input_shape[1:]) < 8):
            raise ValueError(f"the conv backbone needs images of at least 8x8, got input_shape {self.input_shape}")
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be >= 1")


def _act(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def _mlp(sizes: list[int], cfg: NetConfig) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers.append(nn.Linear(a, b))
        if cfg.batchnorm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(_act(cfg.activation))
    return layers


def _n_down(size: int, max_layers: int) -> int:
    # stride-2 layers until the feature map is 4x4 (2x2 for 8x8 inputs)
    return max(1, min(max_layers, int(math.log2(size)) - 2 if size >= 16 else int(math.log2(size)) - 1))


def _conv_out(size: int, n: int, k: int) -> int:
    for _ in range(n):
        size = (size + 2 - k) // 2 + 1
    return size


def make_encoder(cfg: NetConfig, out_dim: int) -> nn.Module:
    """Input (B, *input_shape) -> (B, out_dim)."""
    n_in = int(math.prod(cfg.input_shape))
    if cfg.backbone == "mlp":
        return nn.Sequential(nn.Flatten(), *_mlp([n_in, *cfg.hidden], cfg), nn.Linear(cfg.hidden[-1] if cfg.hidden else n_in, out_dim))
    c, h, _ = cfg.input_shape
    n = _n_down(h, len(cfg.conv_channels))
    layers: list[nn.Module] = []
    prev = c
    for ch in cfg.conv_channels[:n]:
        layers += [nn.Conv2d(prev, ch, cfg.conv_kernel, 2, 1)]
        if cfg.batchnorm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(_act(cfg.activation))
        prev = ch
    s = _conv_out(h, n, cfg.conv_kernel)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(prev * s * s, out_dim))


class _ConvDecoder(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        c, h, w = cfg.input_shape
        n = _n_down(h, len(cfg.conv_channels))
        chans = list(reversed(cfg.conv_channels[:n]))
        self.s = max(1, math.ceil(h / 2**n))
        self.c0 = chans[0]
        self.size = (h, w)
        self.fc = nn.Linear(cfg.latent_dim, chans[0] * self.s * self.s)
        layers: list[nn.Module] = []
        if cfg.batchnorm:
            layers.append(nn.BatchNorm2d(chans[0]))
        layers.append(_act(cfg.activation))
        for a, b in zip(chans[:-1], chans[1:]):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            if cfg.batchnorm:
                layers.append(nn.BatchNorm2d(b))
            layers.append(_act(cfg.activation))
        layers.append(nn.ConvTranspose2d(chans[-1], c, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(self.fc(z).view(-1, self.c0, self.s, self.s))
        if out.shape[-2:] != self.size:  # e.g. 28x28: upsampling gives 32x32
            out = F.interpolate(out, size=self.size, mode="bilinear", align_corners=False)
        return out


def make_decoder(cfg: NetConfig) -> nn.Module:
    """Latent (B, latent_dim) -> logits (B, *input_shape)."""
    if cfg.backbone == "conv":
        return _ConvDecoder(cfg)
    n_out = int(math.prod(cfg.input_shape))
    sizes = [cfg.latent_dim, *reversed(cfg.hidden)]
    return nn.Sequential(*_mlp(sizes, cfg), nn.Linear(sizes[-1], n_out), nn.Unflatten(1, tuple(cfg.input_shape)))
