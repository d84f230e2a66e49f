"""Smooth Encoder, SE (Cemgil et al. §3 algorithm, §3.1, App. B.2, App. C; docs/methods.md §1).

For each x a fictive x' is selected by the PGD-Wasserstein attack (``latentbench.plugins.attacks.pgd_wasserstein``,
L-inf radius 0.1, L = 20 steps: Cemgil et al. §3.1 "selection radius" and "selection iteration budget"), and
the SE-ELBO (App. C)

    B_SE = E_q(z_a|x)[log p(x|z_a)] + E_q(z_a|x)[log p(z_a)] + E_q(z_b|x')[log p(z_b)] - W_{2,gamma}

is maximised, with, for factorised Gaussians (App. C, all sums over latent dims k / pixels i),

    E[log p(x|z_a)]  ~ -D_x/2 log(2 pi v) - 1/(2v) sum_i (x_i - g(z_a)_i)^2   (one sample z_a)
    E[log p(z)]      =  -1/2 sum_k (mu_k^2 + S_k) - D_z/2 log(2 pi)
    W_{2,gamma}      =  sum_k (mu_a - mu_b)^2 + S_a + S_b - (1/gamma)(sqrt(1 + 4 gamma^2 S_a S_b) - 1).

x' enters only the encoder's terms, so the decoder's gradient is that of the plain VAE (Cemgil et al. §3).

Defaults (docs/methods.md §1, Cemgil et al. C.1): MLP 4 x 200 ReLU (no BatchNorm: C.1 names none), latent 32, Gaussian
decoder with v = 0.5, gamma = 1, encoder outputs mean and log-variance.

Choices the papers leave open:
- The selection attack maximises the exact W_2^2 (``selection_distance: w2``), the Wasserstein
  divergence of Cemgil et al. §3.1's selection problem; ``w2_gamma`` uses W_{2,gamma} with the model's gamma.
  It runs with the model in eval mode (``Attack.__call__``) from a random start drawn from the global
  RNG (seeded by the trainer); x' is a constant for the gradient step.
- ``selection: random`` is the control of Cemgil et al. §4 / App. C.1 Fig. 7(a): x' is a uniformly random
  point of the selection ball (``latentbench.perturbation.random_start``, then made feasible for the
  [0, 1] box) instead of the PGD-Wasserstein point. It is a property of the trained model, so it
  lives in the model's config; Cemgil et al. says "from the unit ball" without a norm, and the option uses the
  same ball as the attack (``selection_eps``, ``selection_norm``).
- ``likelihood: bernoulli`` replaces the Gaussian data-fidelity term by the Bernoulli one.
- As written in Cemgil et al., the SE-ELBO has no separate entropy of q(z|x): only W_{2,gamma}'s entropic
  coupling term acts on the variances, so trained posterior variances can become small.
- Losses are averaged over the batch; the ``loss`` entry is -B_SE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from latentbench.perturbation import check_norm, random_start
from latentbench.plugins.attacks.pgd_wasserstein import PGDWasserstein, PGDWassersteinConfig
from latentbench.plugins._common.gaussians import w2_gamma_diag
from latentbench.plugins.models.vae import VAE, VAEConfig, check_images, reconstruction_nll

SELECTION_DISTANCES = ("w2", "w2_gamma")
#: how x' is chosen: the PGD-Wasserstein attack (Cemgil et al. §3.1) or a uniform draw from the ball (Cemgil et al. Fig. 7a)
SELECTIONS = ("pgd", "random")


@dataclass
class SmoothEncoderConfig(VAEConfig):
    """SE defaults of docs/methods.md §1 / Cemgil et al. C.1 (MLP 4 x 200 ReLU, latent 32, v 0.5, gamma 1, eps 0.1 L-inf, L 20)."""

    hidden: list[int] = field(default_factory=lambda: [200, 200, 200, 200])
    activation: str = "relu"
    batchnorm: bool = False
    likelihood: str = "gaussian"
    decoder_variance: float = 0.5
    std_param: str = "logvar"
    lr: float = 1e-3
    #: coupling strength gamma of W_{2,gamma}
    gamma: float = 1.0
    selection_eps: float = 0.1
    selection_norm: str = "linf"
    selection_steps: int = 20
    #: null = the attack's default 2.5 * eps / steps
    selection_step_size: Optional[float] = None
    selection_distance: str = "w2"
    #: "pgd" (Cemgil et al. §3.1) or "random": uniform in the selection ball, the control of Cemgil et al. App. C.1 Fig. 7(a)
    selection: str = "pgd"

    def validate(self) -> None:
        super().validate()
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if not self.selection_eps >= 0:
            raise ValueError(f"selection_eps must be >= 0, got {self.selection_eps}")
        check_norm(self.selection_norm)
        if self.selection_steps < 0:
            raise ValueError(f"selection_steps must be >= 0, got {self.selection_steps}")
        if self.selection_step_size is not None and not self.selection_step_size > 0:
            raise ValueError(f"selection_step_size must be > 0 or null, got {self.selection_step_size}")
        if self.selection_distance not in SELECTION_DISTANCES:
            raise ValueError(f"selection_distance '{self.selection_distance}' unknown: "
                             f"use one of {', '.join(SELECTION_DISTANCES)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection '{self.selection}' unknown: use one of {', '.join(SELECTIONS)}")


def expected_log_std_normal(mean: Tensor, var: Tensor) -> Tensor:
    """E_{N(mean, diag var)}[log N(z; 0, I)] per sample (Cemgil et al. App. C, prior fidelity)."""
    d = mean.shape[1]
    return -0.5 * (mean.pow(2) + var).sum(1) - 0.5 * d * math.log(2 * math.pi)


class SmoothEncoder(VAE):
    """VAE whose encoder is smoothed by the SE-ELBO with adversarially selected neighbours x'."""

    name = "smooth_encoder"
    config_class = SmoothEncoderConfig
    source = "Cemgil et al. §3, §3.1, App. B.2, App. C"

    def selection_attack(self, generator: torch.Generator | None = None) -> PGDWasserstein:
        c = self.config
        cfg = PGDWassersteinConfig(eps=c.selection_eps, norm=c.selection_norm, steps=c.selection_steps,
                                   step_size=c.selection_step_size, restarts=1, random_start=True,
                                   distance=c.selection_distance, gamma=c.gamma)
        return PGDWasserstein(self, cfg, generator=generator)

    def select(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x' = x + argmax_{||d|| <= eps} W(q(z|x), q(z|x + d)) by PGD (Cemgil et al. §3.1); detached.

        With ``selection: random``, x' is uniform in the ball around x instead (Cemgil et al. Fig. 7(a)).
        """
        if self.config.selection_eps == 0:
            return x.detach()
        if self.config.selection == "random":
            return random_start(x.detach(), self.config.selection_eps, self.config.selection_norm, generator).detach()
        with torch.enable_grad():  # PGD needs input gradients even when the loss is evaluated under no_grad
            return self.selection_attack(generator)(x.detach()).x_adv.detach()

    def se_terms(self, x: Tensor, x_sel: Tensor, noise: Tensor | None = None) -> dict[str, Tensor]:
        """Per-sample SE-ELBO terms for inputs x and selected x'; ``noise`` u gives z_a = mu_a + std_a * u."""
        check_images(self, x)
        c = self.config
        qa, qb = self.encode(x), self.encode(x_sel)
        u = torch.randn_like(qa.mean) if noise is None else noise
        z = qa.mean + qa.std * u
        data = -reconstruction_nll(self.decode_logits(z), x, c.likelihood, c.decoder_variance)
        va, vb = qa.std.pow(2), qb.std.pow(2)
        prior_a = expected_log_std_normal(qa.mean, va)
        prior_b = expected_log_std_normal(qb.mean, vb)
        w = w2_gamma_diag(qa.mean, qa.std, qb.mean, qb.std, c.gamma)
        return {"data_fidelity": data, "prior_fidelity_x": prior_a, "prior_fidelity_x_sel": prior_b,
                "w2_gamma": w, "se_elbo": data + prior_a + prior_b - w}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        x_sel = self.select(x)
        t = self.se_terms(x, x_sel)
        out = {k: v.mean() for k, v in t.items()}
        out["loss"] = -out["se_elbo"]
        return out
