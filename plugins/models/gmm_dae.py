"""GMM-regularised deterministic autoencoder (Saseendran (thesis) §4.3, Saseendran thesis ch. 4).

Loss (Saseendran (thesis) eq. 4.9): lambda_REC * MSE(x, g(f(x))) + lambda_KS * L_KS,K(z) + lambda_CV * L_CV,K(z) with
z = f(x) deterministic codes regularised towards a K-mode GMM prior: mode k at e_k (one-hot), std 1,
equal weights (Saseendran (thesis) §4.4.7). lambda_KS and lambda_CV follow Saseendran (thesis) §4.3.3 (eq. 4.10): the inverse mean
losses of M = 64 batches drawn from the prior with the training batch size, estimated in
``on_train_start`` and kept as buffers so checkpoints carry them.

Choices docs/methods.md §1 leaves open, documented here:
- Reconstruction loss is the per-pixel mean squared error (independent of image size).
  ``lambda_rec`` = 100 follows the Saseendran (thesis) §4.3.3 heuristic (inverse of the best attainable
  reconstruction loss; a per-pixel MSE of about 0.01 is typical for MNIST-like images at latent
  dimension 10). The thesis's 0.005 refers to an unnormalised sum we cannot reconstruct.
- Defaults follow Saseendran (thesis) §4.4.7 for MNIST/Fashion-MNIST: latent_dim 10, conv backbone of Table 4.6
  (channels 128-256-512-1024, kernel 4, stride 2, BN, ReLU), Adam lr 2e-3 (the thesis's betas
  (0.5, 0.999) are the trainer's business). The ``mlp`` backbone uses 4 x 200 ReLU (Saseendran (thesis) §5.4.7).
- ``latent_dim < n_modes`` cannot host one-hot means and is rejected by ``validate`` with a message
  naming both fixes (raise latent_dim or lower n_modes).
- If ``loss`` is called before ``on_train_start`` (no weights yet), the weights are estimated from
  the current batch size with a generator seeded from the global RNG (which the trainer seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.model import Autoencoder, LatentGaussian
from latentbench.plugins.models._backbones import NetConfig, make_decoder, make_encoder
from latentbench.plugins.models._gmm_prior import GMMPrior
from latentbench.plugins.models._latent_losses import covariance_loss, estimate_loss_weights, ks_loss

SOURCE_GMM_DAE = "Saseendran (thesis) (Saseendran thesis) §4.3, eqs. 4.5-4.10; architecture Table 4.6"


@dataclass
class RegularizedDAEConfig(NetConfig):
    """Fields shared by the KS/covariance-regularised deterministic autoencoders."""

    latent_dim: int = 10
    hidden: list[int] = field(default_factory=lambda: [200, 200, 200, 200])
    activation: str = "relu"
    lr: float = 2e-3
    #: weight of the per-pixel MSE reconstruction loss (Saseendran (thesis) §4.3.3 heuristic, see module docstring)
    lambda_rec: float = 100.0
    #: M in Saseendran (thesis) eq. 4.10: prior batches used to set lambda_KS and lambda_CV
    weight_batches: int = 64

    def validate(self) -> None:
        super().validate()
        if self.lambda_rec < 0:
            raise ValueError(f"lambda_rec must be >= 0, got {self.lambda_rec}")
        if self.weight_batches < 1:
            raise ValueError(f"weight_batches (M of Saseendran (thesis) eq. 4.10) must be >= 1, got {self.weight_batches}")


@dataclass
class GMMDAEConfig(RegularizedDAEConfig):
    """Saseendran (thesis) §4.3 / §4.4.7 defaults: K = 10 one-hot modes, std 1, equal weights, conv Table 4.6."""

    backbone: str = "conv"
    batchnorm: bool = True
    conv_channels: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])
    n_modes: int = 10
    #: distance of each mode from the origin (mode k at mode_scale * e_k; Saseendran (thesis) Fig. 4.8 varies it)
    mode_scale: float = 1.0
    mode_std: float = 1.0

    def validate(self) -> None:
        super().validate()
        validate_gmm_fields(self)


def validate_gmm_fields(cfg) -> None:
    if cfg.n_modes < 1:
        raise ValueError(f"n_modes must be >= 1, got {cfg.n_modes}")
    if cfg.latent_dim < cfg.n_modes:
        raise ValueError(
            f"one-hot GMM means need latent_dim >= n_modes, got latent_dim {cfg.latent_dim} < n_modes "
            f"{cfg.n_modes}: raise latent_dim to at least {cfg.n_modes} or lower n_modes")
    if cfg.mode_std <= 0:
        raise ValueError(f"mode_std must be > 0, got {cfg.mode_std}")


class RegularizedDAE(Autoencoder):
    """Deterministic encoder/decoder with a prior, KS/CV loss weights as buffers and prior sampling.

    Subclasses build the prior (``make_prior``) and define ``regularizers`` (returning (L_KS, L_CV))
    with ``n_regularizer_inputs`` code batches, and ``loss``.
    """

    generative = True
    n_regularizer_inputs = 1

    def __init__(self, config: RegularizedDAEConfig):
        config.validate()
        super().__init__(config)
        self.encoder = make_encoder(config, config.latent_dim)
        self.decoder = make_decoder(config)
        self.prior = self.make_prior(config)
        # buffers, not attributes: checkpoints must keep the weights the model was trained with
        self.register_buffer("lambda_ks", torch.tensor(0.0))
        self.register_buffer("lambda_cv", torch.tensor(0.0))
        self.register_buffer("weights_batch_size", torch.tensor(0, dtype=torch.long))

    def make_prior(self, config) -> GMMPrior:
        raise NotImplementedError

    def _check_input(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"model '{self.name}' expects inputs of shape (B, {', '.join(map(str, self.input_shape))}), got "
                f"{tuple(x.shape)}: resize the data (DatasetConfig(image_size=...)) or set input_shape in the model config")

    def encode(self, x: Tensor) -> LatentGaussian:
        self._check_input(x)
        return LatentGaussian(self.encoder(x), None)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.prior.sample(n, generator, device=self.device))

    def regularizers(self, *codes: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @property
    def loss_weights_ready(self) -> bool:
        return int(self.weights_batch_size) > 0

    def estimate_loss_weights(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[float, float]:
        """Set lambda_KS, lambda_CV from ``weight_batches`` prior batches of ``batch_size`` (Saseendran (thesis) eq. 4.10)."""
        lam_ks, lam_cv = estimate_loss_weights(
            self.regularizers,
            lambda n, g: self.prior.sample(n, g, device=self.lambda_ks.device),
            batch_size, self.config.weight_batches, self.n_regularizer_inputs, generator)
        self.lambda_ks.fill_(lam_ks)
        self.lambda_cv.fill_(lam_cv)
        self.weights_batch_size.fill_(batch_size)
        return lam_ks, lam_cv

    def _global_generator(self) -> torch.Generator:
        # derived from the global RNG, which the trainer seeds from the master seed
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))

    def on_train_start(self, loader) -> None:
        """Estimate the loss weights for the loader's batch size (kept if already set for that size)."""
        first = next(iter(loader))
        x = first[0] if isinstance(first, (tuple, list)) else first
        bs = int(x.shape[0])
        if int(self.weights_batch_size) != bs:
            self.estimate_loss_weights(bs, self._global_generator())

    def _ensure_weights(self, batch_size: int) -> None:
        if not self.loss_weights_ready:
            self.estimate_loss_weights(batch_size, self._global_generator())

    def reconstruction_loss(self, x_hat: Tensor, x: Tensor) -> Tensor:
        return F.mse_loss(x_hat, x)

    def weighted_total(self, rec: Tensor, ks: Tensor, cv: Tensor) -> Tensor:
        return self.config.lambda_rec * rec + self.lambda_ks * ks + self.lambda_cv * cv


class GMMDAE(RegularizedDAE):
    """GMM-DAE of Saseendran (thesis) §4.3: MSE reconstruction + weighted marginal-KS and covariance losses."""

    name = "gmm_dae"
    config_class = GMMDAEConfig
    source = SOURCE_GMM_DAE

    def make_prior(self, config: GMMDAEConfig) -> GMMPrior:
        return GMMPrior.one_hot(config.n_modes, config.latent_dim, config.mode_scale, config.mode_std)

    def regularizers(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(L_KS,K, L_CV,K) of Saseendran (thesis) eqs. 4.7 and 4.8."""
        return ks_loss(z, self.prior.marginal_cdf), covariance_loss(z, self.prior.covariance())

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        self._ensure_weights(x.shape[0])
        z = self.encode(x).mean
        rec = self.reconstruction_loss(self.decode(z), x)
        ks, cv = self.regularizers(z)
        return {"loss": self.weighted_total(rec, ks, cv), "rec": rec, "ks": ks, "cv": cv}
