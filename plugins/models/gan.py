"""GAN for Manoj's 2D-grid experiment (Manoj §3.1, footnote 5, App. A.2 Algorithm A.1; docs/methods.md §1).

An MLP generator G: z -> point (``input_shape`` (2,)) and an MLP discriminator D: point -> logit,
trained with the non-saturating loss (Goodfellow et al. 2014; Algorithm A.1 line 8 "maximise
log D(x_f)"):

    L_D = -log D(x_r) - log(1 - D(G(z)))        L_G = -log D(G(z)),   z ~ N(0, I)

``decode(z)`` is the generator and ``sample(n)`` draws z ~ N(0, I); a GAN has no encoder, so
``encode`` raises. Class radius (Manoj Def. 2.5) on these generators uses the nearest-mode classifier
(``latentbench.plugins.datasets.grid2d.nearest_mode``).

The generic trainer takes ONE optimiser step on ``loss()`` per batch, so ``loss`` returns
L_D + L_G built so that D's parameters get gradients only from L_D and G's only from L_G: the fake
points are detached in L_D, and L_G evaluates D through ``torch.func.functional_call`` with detached
copies of D's parameters. The two players therefore take simultaneous (not alternating) steps with
a shared Adam; each parameter's update is exactly the one its own loss gives.

Choices the papers leave open (defaults after the 2D-grid setup of PacGAN, Lin et al. 2017, which Manoj
cites): latent 2, generator 4 x 400 ReLU, discriminator 3 x 200 ReLU (PacGAN's maxout units are
plain ReLU here), no BatchNorm, Adam 1e-4. The generator output is unbounded (points, not images).
``pack`` (PacGAN's packing degree m, default 1 = the plain GAN of Manoj) lets D judge m points at once;
packed groups are consecutive points of the batch (a trailing remainder is left out of the loss).
In our short runs on grids restricted to k modes, plain GANs collapsed onto one mode while pack = 2
covered all k (see tests/plugins/models/test_gan.py), so use pack >= 2 to build generators of known coverage.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from latentbench.model import Autoencoder, LatentGaussian
from latentbench.plugins.models._backbones import NetConfig, make_decoder, make_encoder


@dataclass
class GANConfig(NetConfig):
    """2D-grid GAN; ``hidden`` is the generator's hidden sizes (latent -> hidden -> point)."""

    input_shape: tuple[int, ...] = (2,)
    latent_dim: int = 2
    lr: float = 1e-4
    hidden: list[int] = field(default_factory=lambda: [400, 400, 400, 400])
    disc_hidden: list[int] = field(default_factory=lambda: [200, 200, 200])
    activation: str = "relu"
    batchnorm: bool = False
    #: PacGAN packing degree m (Lin et al. 2017): D judges m points at once; 1 = the plain GAN
    pack: int = 1

    def validate(self) -> None:
        if self.backbone != "mlp":
            raise ValueError(f"the gan model has MLP networks only: set backbone to 'mlp' (got '{self.backbone}')")
        super().validate()
        if self.pack < 1:
            raise ValueError(f"pack must be >= 1 (1 = no packing), got {self.pack}")


class GAN(Autoencoder):
    """Non-saturating GAN with MLP generator and discriminator (Manoj's 2D-grid generators)."""

    name = "gan"
    config_class = GANConfig
    source = "Manoj §3.1, footnote 5, App. A.2 (Algorithm A.1)"

    def __init__(self, config: GANConfig):
        config.validate()
        super().__init__(config)
        # make_decoder reverses ``hidden``: pass it reversed so the generator's layers follow the config order
        self.generator = make_decoder(dataclasses.replace(config, hidden=list(reversed(config.hidden))))
        n = int(math.prod(config.input_shape))
        self.discriminator = make_encoder(
            dataclasses.replace(config, hidden=list(config.disc_hidden), input_shape=(config.pack * n,)), 1)

    def encode(self, x: Tensor) -> LatentGaussian:
        raise NotImplementedError(
            "the gan model has no encoder: a GAN maps codes to points only. Use decode(z) / sample(n), "
            "or metrics that need only a generator (class_radius); encoder-based attacks and metrics do not apply")

    def decode(self, z: Tensor) -> Tensor:
        """The generator G(z): points of shape (B, *input_shape), not restricted to [0, 1]."""
        return self.generator(z)

    def _packed(self, x: Tensor) -> Tensor:
        m = int(self.config.pack)
        if x.shape[0] < m:
            raise ValueError(f"a batch of {x.shape[0]} points cannot be packed in groups of pack={m}: "
                             f"use a batch size >= pack")
        k = (x.shape[0] // m) * m
        return x[:k].reshape(k // m, -1)

    def discriminate(self, x: Tensor) -> Tensor:
        """Discriminator logit per group of ``pack`` consecutive points, shape (B // pack,)."""
        return self.discriminator(self._packed(x)).reshape(-1)

    def _discriminate_frozen(self, x: Tensor) -> Tensor:
        # D evaluated with detached parameters: L_G's gradient reaches G through x only
        params = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        buffers = dict(self.discriminator.named_buffers())
        return functional_call(self.discriminator, {**params, **buffers}, (self._packed(x),)).reshape(-1)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"model 'gan' expects points of shape (B, {', '.join(map(str, self.input_shape))}), got "
                             f"{tuple(x.shape)}. Set input_shape in the model config to the dataset's shape.")
        z = torch.randn(x.shape[0], self.latent_dim, device=x.device, dtype=x.dtype)
        fake = self.decode(z)
        real_logit = self.discriminate(x)
        fake_logit = self.discriminate(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        g_logit = self._discriminate_frozen(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_logit, torch.ones_like(g_logit))
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}
