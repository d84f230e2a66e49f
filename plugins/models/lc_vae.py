"""Lipschitz-constrained VAE, LC-VAE (Manoj §4, Tables 1-2; docs/methods.md §1).

The VAE objective plus lambda times the regulariser of Manoj §4.1 ("Implementation Details"): for a
batch of b = 2n images,

    R = sum_{i=1..n} ||f(I_i) - f(I_{i+n})||_2^2 / ||I_i - I_{i+n}||_2^2

(pairs from the two halves of the batch), and every encoder parameter clipped to [-c, c] after
every optimiser step (``on_train_step_end``), following Arjovsky et al. (2017).

Defaults (docs/methods.md §1, Manoj §4.2): lambda = 30, c = 0.3, latent 10, conv encoder 128-256-512-1024,
kernel 4, stride 2, BatchNorm, ReLU (Table 1), Adam 1e-3; the paper trains with batch 300 for 20
epochs (set those in the training config). The conv backbone uses as many of the four stages as the
image size allows (see ``latentbench.plugins.models._backbones``).

Choices the papers leave open:
- f is the encoder mean (the "encoding" of Manoj §4.1); its std is left free.
- Clipping covers every parameter of the encoder - linear/conv weights, biases, BatchNorm affine
  parameters and the mean/scale heads - as WGAN's reference code clips every critic parameter;
  running BatchNorm statistics are buffers, not weights, and are not clipped. The decoder is free.
- Scale: the paper adds the regulariser to the PyTorch-examples loss, which is summed over the
  batch. Our ELBO is averaged over the batch, so R enters as lambda * R / b: the same objective
  divided by the batch size b.
- An odd batch drops its last image from R; a pair of identical images (0/0) contributes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from latentbench.plugins.models.vae import VAE, VAEConfig


@dataclass
class LCVAEConfig(VAEConfig):
    """LC-VAE defaults of Manoj §4.2 / Table 1 (docs/methods.md §1)."""

    latent_dim: int = 10
    lr: float = 1e-3
    backbone: str = "conv"
    activation: str = "relu"
    batchnorm: bool = True
    conv_channels: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])
    #: weight lambda of the pairwise regulariser
    lipschitz_weight: float = 30.0
    #: c: encoder parameters are clipped to [-c, c] after every step
    clip: float = 0.3

    def validate(self) -> None:
        super().validate()
        if not self.lipschitz_weight >= 0:
            raise ValueError(f"lipschitz_weight must be >= 0, got {self.lipschitz_weight}")
        if not self.clip > 0:
            raise ValueError(f"clip (the weight bound c) must be > 0, got {self.clip}")


def pairwise_lipschitz_ratio(codes: Tensor, x: Tensor) -> Tensor:
    """omega(I_i, I_{i+n}) = ||f_i - f_{i+n}||^2 / ||I_i - I_{i+n}||^2 for the n pairs of the batch halves."""
    n = x.shape[0] // 2
    dz = (codes[:n] - codes[n:2 * n]).reshape(n, -1).pow(2).sum(1)
    dx = (x[:n] - x[n:2 * n]).reshape(n, -1).pow(2).sum(1)
    # identical inputs give identical codes: count the pair as 0 instead of 0/0
    return torch.where(dx > 0, dz / dx.clamp_min(torch.finfo(dx.dtype).tiny), torch.zeros_like(dz))


class LCVAE(VAE):
    """VAE with a pairwise code/input distance-ratio penalty and clipped encoder weights (Manoj §4)."""

    name = "lc_vae"
    config_class = LCVAEConfig
    source = "Manoj §4.1-4.2, Table 1"

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        t = self.elbo_terms(x)
        nll, kl = t["nll"].mean(), t["kl"].mean()
        reg = pairwise_lipschitz_ratio(t["mean"], x).sum() / x.shape[0]
        loss = nll + kl + self.config.lipschitz_weight * reg
        return {"loss": loss, "nll": nll, "kl": kl, "elbo": -(nll + kl), "lipschitz_reg": reg}

    @torch.no_grad()
    def clip_encoder(self) -> None:
        c = float(self.config.clip)
        for p in self.encoder.parameters():
            p.clamp_(-c, c)

    def on_train_step_end(self) -> None:
        self.clip_encoder()
