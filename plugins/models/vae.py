"""VAE and beta-VAE (Khan & Storkey §2.1 eq. 1, §4.2.1, App. A; Cemgil et al. §2.1; docs/methods.md §1).

The ELBO of eq. (1) with a factorised Gaussian posterior q(z|x) = N(mu(x), diag(sigma(x)^2)), the
prior p(z) = N(0, I) and a decoder p(x|z) that is either Bernoulli with mean g(z) or Gaussian
N(g(z), v I). ``g(z) = sigmoid(decoder logits)`` is the decoder mean in [0, 1] in both cases.

Choices the papers leave open (also valid for every model that subclasses :class:`VAE`):

- Encoder: ``make_encoder(cfg, 2 * latent_dim)``; the last linear layer's output is split into the
  mean and a raw scale ``s``. Khan & Storkey App. A describes 256-256-512-32 hidden units followed by two 32x32
  linear heads; ``hidden=[256, 256, 512, 32]`` reproduces exactly that (its last linear layer is
  the two heads side by side). The default ``[256, 256, 512]`` (docs/methods.md §1) folds the 32-unit layer
  into the heads, and the decoder is the mirror 512-256-256 of App. A.
- Scale link (``std_param``): ``"logvar"`` (default, std = exp(s / 2), Kingma & Welling; Cemgil et al. C.1
  uses log-variances) or ``"softplus"`` (std = softplus(s) + 1e-5). The log-variance is clamped to
  [-30, 20] so that a diverging step gives a finite (if useless) std rather than inf/NaN.
- Likelihood: ``"bernoulli"`` by default (the PyTorch-examples VAE that Manoj §4.2 builds on;
  continuous [0, 1] pixels are scored with the binary cross-entropy, as usual for MNIST-like data),
  or ``"gaussian"`` with variance ``decoder_variance`` including its normalising constant.
- One reparameterised sample per input; losses are sums over pixels / latent dims, averaged over
  the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.model import Autoencoder, LatentGaussian
from latentbench.plugins._common.gaussians import kl_diag_gaussian_std_normal
from latentbench.plugins.models._backbones import NetConfig, make_decoder, make_encoder

LIKELIHOODS = ("bernoulli", "gaussian")
STD_PARAMS = ("logvar", "softplus")
#: Khan & Storkey §4.2.1: 50 values of beta, log-spaced in [0.01, 10], for the beta sweep
BETA_SWEEP: tuple[float, ...] = tuple(float(b) for b in np.logspace(-2, 1, 50))
_LOGVAR_RANGE = (-30.0, 20.0)
_SOFTPLUS_FLOOR = 1e-5


@dataclass
class VAEConfig(NetConfig):
    """VAE defaults (docs/methods.md §1, Khan & Storkey App. A): latent 32, MLP 256-256-512, tanh + BatchNorm, Adam 3e-3."""

    latent_dim: int = 32
    lr: float = 3e-3
    #: "bernoulli" or "gaussian" (N(g(z), decoder_variance * I))
    likelihood: str = "bernoulli"
    decoder_variance: float = 0.5
    #: "logvar" (std = exp(s/2)) or "softplus" (std = softplus(s) + 1e-5)
    std_param: str = "logvar"

    def validate(self) -> None:
        super().validate()
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood '{self.likelihood}' unknown: use one of {', '.join(LIKELIHOODS)}")
        if not self.decoder_variance > 0:
            raise ValueError(f"decoder_variance must be > 0, got {self.decoder_variance}")
        if self.std_param not in STD_PARAMS:
            raise ValueError(f"std_param '{self.std_param}' unknown: use one of {', '.join(STD_PARAMS)}")


@dataclass
class BetaVAEConfig(VAEConfig):
    """beta-VAE (Khan & Storkey §4.2.1): the VAE with beta * KL. ``BETA_SWEEP`` holds the paper's 50 values.

    The default beta = 4 is the usual single value (Higgins et al. 2017); docs/methods.md §1 fixes only the sweep.
    """

    beta: float = 4.0

    def validate(self) -> None:
        super().validate()
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")


def reconstruction_nll(logits: Tensor, x: Tensor, likelihood: str, variance: float) -> Tensor:
    """-log p(x|z) per sample, summed over all pixels; ``logits`` are the decoder's pre-sigmoid outputs."""
    dims = tuple(range(1, x.dim()))
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dims)
    if likelihood == "gaussian":
        n = math.prod(x.shape[1:])
        sq = (x - torch.sigmoid(logits)).pow(2).sum(dims)
        return 0.5 * sq / variance + 0.5 * n * math.log(2 * math.pi * variance)
    raise ValueError(f"likelihood '{likelihood}' unknown: use one of {', '.join(LIKELIHOODS)}")


def check_images(model: Autoencoder, x: Tensor) -> None:
    """Reject batches of the wrong shape or outside [0, 1] with a message that says what to change."""
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(
            f"model '{model.name}' expects inputs of shape (B, {', '.join(map(str, model.input_shape))}), got "
            f"{tuple(x.shape)}. Set input_shape in the model config to the dataset's shape (or resize the data).")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"model '{model.name}' expects images in [0, 1], got range "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]. Rescale the data to [0, 1].")


class VAE(Autoencoder):
    """Variational autoencoder trained on the negative ELBO (Khan & Storkey eq. 1 with beta = 1)."""

    name = "vae"
    config_class = VAEConfig
    source = "Khan & Storkey §2.1 eq. (1), App. A; Cemgil et al. §2.1"

    def __init__(self, config: VAEConfig):
        config.validate()
        super().__init__(config)
        self.encoder = make_encoder(config, 2 * config.latent_dim)
        self.decoder = make_decoder(config)

    @property
    def beta(self) -> float:
        return 1.0

    def encode(self, x: Tensor) -> LatentGaussian:
        h = self.encoder(x)
        mean, s = h[:, : self.latent_dim], h[:, self.latent_dim:]
        if self.config.std_param == "logvar":
            std = torch.exp(0.5 * s.clamp(*_LOGVAR_RANGE))
        else:
            std = F.softplus(s) + _SOFTPLUS_FLOOR
        return LatentGaussian(mean, std)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per-sample terms of the ELBO: ``nll`` = -log p(x|z) at one sample z ~ q(z|x), ``kl`` = KL(q||p)."""
        check_images(self, x)
        q = self.encode(x)
        z = q.rsample()
        logits = self.decode_logits(z)
        nll = reconstruction_nll(logits, x, self.config.likelihood, self.config.decoder_variance)
        kl = kl_diag_gaussian_std_normal(q.mean, q.std)
        return {"nll": nll, "kl": kl, "z": z, "mean": q.mean, "std": q.std, "logits": logits}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        t = self.elbo_terms(x)
        nll, kl = t["nll"].mean(), t["kl"].mean()
        return {"loss": nll + self.beta * kl, "nll": nll, "kl": kl, "elbo": -(nll + kl)}


class BetaVAE(VAE):
    """beta-VAE: negative ELBO with beta * KL (Khan & Storkey eq. 1, §4.2.1)."""

    name = "beta_vae"
    config_class = BetaVAEConfig
    source = "Khan & Storkey §2.1 eq. (1), §4.2.1"

    @property
    def beta(self) -> float:
        return float(self.config.beta)
