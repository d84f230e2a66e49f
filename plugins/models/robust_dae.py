"""Adversarially robust deterministic autoencoders (Saseendran (thesis) §5.3; Robust-DAE appendix App. A.1).

Training step on a batch x (Saseendran (thesis) eq. 5.6 / Robust-DAE appendix eq. 9):

1. adversarial inputs x_adv inside the L-inf ball eps around x that push the code away from z = f(x)
   (Saseendran (thesis) eq. 5.1): one fast-FGSM step (``fgsm_latent_perturb``, uniform start, step 1.25 eps) or, for
   the PGD-trained variant of Robust-DAE appendix's ablation, ``latentbench.solvers.pgd`` on the same objective;
2. z = f(x), z_adv = f(x_adv);
3. lambda_REC * MSE(x, g(z + e)), e ~ N(0, s^2 I) latent noise **in training mode only**;
4. lambda_KS * L^adv_KS(z, z_adv) (eq. 5.4: 2/3 augmented KS + 1/3 two-point KS);
5. lambda_CV * L^adv_CV(z, z_adv) (eq. 5.5: covariance of (z, z_adv) against [[S, aS], [aS, S]]).

``coupled: false`` gives the "Augmented" ablation of Saseendran (thesis) Table 5.4 (eqs. 5.2 and 5.3: no two-point
term, cross-covariance target 0). ``robust_gmm_dae`` uses the 10-mode one-hot GMM prior of
``gmm_dae``; ``robust_dae`` the unimodal N(0, I) prior (Robust-DAE appendix eqs. 6-9).

Choices the sources leave open, documented here:
- The adversary is computed with the encoder in eval mode (batch-norm running statistics, none
  updated), so each input's perturbation depends on that input only; the model's mode is restored.
- The PGD objective is the squared latent distance (same maximiser and sign-gradient as the
  distance, no kink at the start); defaults 10 steps of 2.5 eps / steps from a uniform start, one
  restart (Robust-DAE appendix reports only that PGD training costs about twice as much as FGSM training).
- Latent noise std 0.1 (docs/methods.md §1; Saseendran (thesis) writes N(0, I)); noise comes from the global RNG, which the
  trainer seeds. It is never applied in eval mode, and ``encode`` never adds it: evaluation codes
  are deterministic (docs/methods.md §6: the public attack scripts left the noise on at evaluation).
- Loss weights use independent prior batches for z and z' (Robust-DAE appendix eq. 10 and the text after it).
- Defaults follow Saseendran (thesis) §5.4.7 / Robust-DAE appendix A.4 for grey images: MLP 4 x 200 ReLU without batch norm,
  latent 10, alpha 0.95, Adam lr 2e-3; the conv option uses channels 128-256-512-1024.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from latentbench.solvers import pgd
from latentbench.plugins.attacks.fgsm_latent import fgsm_latent_perturb
from latentbench.plugins.models.gmm_dae import RegularizedDAE, RegularizedDAEConfig, validate_gmm_fields
from latentbench.plugins.models._gmm_prior import GMMPrior
from latentbench.plugins.models._latent_losses import adversarial_ks, coupled_covariance_loss

ADVERSARIES = ("fgsm", "pgd")


@dataclass
class RobustDAEConfig(RegularizedDAEConfig):
    """Robust-DAE appendix App. A.1 / A.4 defaults (grey images): MLP 4 x 200 ReLU, no batch norm, latent 10."""

    backbone: str = "mlp"
    batchnorm: bool = False
    conv_channels: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])
    #: L-inf budget of the training adversary (docs/methods.md §1)
    eps: float = 0.3
    #: "fgsm" (Saseendran (thesis) §5.3.2) or "pgd" (the PGD-trained variant of Robust-DAE appendix App. A.2)
    adversary: str = "fgsm"
    #: FGSM step; None = 1.25 * eps (Wong et al.)
    fgsm_step_size: Optional[float] = None
    pgd_steps: int = 10
    #: PGD step; None = 2.5 * eps / pgd_steps
    pgd_step_size: Optional[float] = None
    #: coupling alpha of the covariance target [[S, aS], [aS, S]] (0.95 for MNIST/Fashion-MNIST)
    alpha: float = 0.95
    #: False = the uncoupled "Augmented" ablation (Saseendran (thesis) eqs. 5.2, 5.3; Table 5.4)
    coupled: bool = True
    #: std of the latent noise added to codes before decoding, training mode only
    latent_noise_std: float = 0.1

    def validate(self) -> None:
        super().validate()
        if self.adversary not in ADVERSARIES:
            raise ValueError(f"adversary '{self.adversary}' unknown: use one of {', '.join(ADVERSARIES)}")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        if not -1.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [-1, 1], got {self.alpha}")
        if self.latent_noise_std < 0:
            raise ValueError(f"latent_noise_std must be >= 0, got {self.latent_noise_std}")
        if self.pgd_steps < 1:
            raise ValueError(f"pgd_steps must be >= 1, got {self.pgd_steps}")
        for key in ("fgsm_step_size", "pgd_step_size"):
            v = getattr(self, key)
            if v is not None and not v > 0:
                raise ValueError(f"{key} must be > 0 (or null for the default), got {v}")


@dataclass
class RobustGMMDAEConfig(RobustDAEConfig):
    """Saseendran (thesis) §5.3 defaults: the GMM prior of gmm_dae (10 one-hot modes, std 1, equal weights)."""

    n_modes: int = 10
    mode_scale: float = 1.0
    mode_std: float = 1.0

    def validate(self) -> None:
        super().validate()
        validate_gmm_fields(self)


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


class RobustDAE(RegularizedDAE):
    """Unimodal robust deterministic autoencoder (Robust-DAE appendix App. A.1, eqs. 6-9)."""

    name = "robust_dae"
    config_class = RobustDAEConfig
    source = "Robust-DAE appendix (NeurIPS 2022 appendix) App. A.1, eqs. 6-9; PGD variant App. A.2"
    n_regularizer_inputs = 2

    def make_prior(self, config) -> GMMPrior:
        return GMMPrior.standard_normal(config.latent_dim)

    def regularizers(self, z: Tensor, z_adv: Tensor) -> tuple[Tensor, Tensor]:
        """(L^adv_KS, L^adv_CV) of Saseendran (thesis) eqs. 5.4, 5.5 (coupled) or 5.2, 5.3 (augmented)."""
        cfg = self.config
        ks = adversarial_ks(z, z_adv, self.prior.marginal_cdf, coupled=cfg.coupled)
        cv = coupled_covariance_loss(z, z_adv, self.prior.covariance(), cfg.alpha if cfg.coupled else 0.0)
        return ks, cv

    def noisy_codes(self, z: Tensor) -> Tensor:
        """Codes the decoder reconstructs from during training: z + N(0, s^2 I) in train mode, z in eval."""
        s = self.config.latent_noise_std
        if not self.training or s == 0:
            return z
        return z + s * torch.randn_like(z)

    def adversarial_inputs(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x_adv in the L-inf eps-ball around x and in [0, 1] pushing f(x_adv) away from f(x) (eq. 5.1)."""
        cfg = self.config
        x = x.detach()

        def encode_fn(xa: Tensor) -> Tensor:
            return self.encode(xa).mean

        with _eval_mode(self.encoder):
            if cfg.adversary == "fgsm":
                return fgsm_latent_perturb(encode_fn, x, cfg.eps, generator=generator, step_size=cfg.fgsm_step_size)
            with torch.no_grad():
                z0 = encode_fn(x)
            step = cfg.pgd_step_size if cfg.pgd_step_size is not None else 2.5 * cfg.eps / cfg.pgd_steps

            def objective(xa: Tensor, z_ref: Tensor) -> Tensor:
                return (encode_fn(xa) - z_ref).pow(2).sum(dim=1)

            with torch.enable_grad():
                out = pgd(objective, x, cfg.eps, "linf", cfg.pgd_steps, step, restarts=1, random_init=True,
                          generator=generator, context=(z0,))
            return out.x_adv.detach()

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        self._ensure_weights(x.shape[0])
        x_adv = self.adversarial_inputs(x)
        z = self.encode(x).mean
        z_adv = self.encode(x_adv).mean
        rec = self.reconstruction_loss(self.decode(self.noisy_codes(z)), x)
        ks, cv = self.regularizers(z, z_adv)
        shift = (z_adv - z).detach().norm(dim=1).mean()
        return {"loss": self.weighted_total(rec, ks, cv), "rec": rec, "ks": ks, "cv": cv, "latent_shift": shift}


class RobustGMMDAE(RobustDAE):
    """Robust GMM-DAE of Saseendran (thesis) §5.3: the robust objective towards the 10-mode one-hot GMM prior."""

    name = "robust_gmm_dae"
    config_class = RobustGMMDAEConfig
    source = "Saseendran (thesis) (Saseendran thesis) §5.3, eqs. 5.1-5.6; Robust-DAE appendix App. A"

    def make_prior(self, config) -> GMMPrior:
        return GMMPrior.one_hot(config.n_modes, config.latent_dim, config.mode_scale, config.mode_std)
