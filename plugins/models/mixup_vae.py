"""Latent-mixup VAE (Khan & Storkey §4.2.2 eqs. 9-10; docs/methods.md §1, §6).

The VAE objective plus

    C = ||z_m - f(x_m)||_2 + ||g(z_m) - x_m||_2,
    x_m = alpha x_i + (1 - alpha) x_j,   z_m = alpha z_i + (1 - alpha) z_j,   alpha ~ Beta(a, b)

where z_m mixes the codes of the **same** pair (i, j) with the **same** alpha as x_m. (The public
code draws independent permutations and alphas for x and z, so z_m is not the code mix of x_m's
pair; docs/methods.md §6 lists that as a bug.)

Choices the papers leave open:
- Pairs: a random cyclic derangement of the batch (shuffle, then pair each element with the next
  one), so every pair is two distinct samples (eq. 9 asks for distinct points) and every sample is
  used once as x_i and once as x_j. A batch of one has no pair and gets C = 0.
- One alpha per pair, drawn from Beta(mixup_a, mixup_b) = Beta(0.5, 0.5) by default (Khan & Storkey §4.2.2).
- z_i, z_j and f(x_m) are posterior means: the penalty compares deterministic codes, so it has no
  floor from sampling noise. Gradients flow through z_i, z_j and f(x_m) (both terms train the
  encoder, the second also the decoder); g is the decoder mean in [0, 1].
- C (the per-pair sum of the two unsquared L2 norms) is averaged over pairs and added with weight
  ``mixup_weight`` (1 by default: the paper adds C with no weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.plugins.models.vae import VAE, VAEConfig


@dataclass
class MixupVAEConfig(VAEConfig):
    """VAE defaults (docs/methods.md §1) plus the mixup penalty's weight and Beta(a, b) shape (0.5, 0.5)."""

    mixup_weight: float = 1.0
    mixup_a: float = 0.5
    mixup_b: float = 0.5

    def validate(self) -> None:
        super().validate()
        if not self.mixup_weight >= 0:
            raise ValueError(f"mixup_weight must be >= 0, got {self.mixup_weight}")
        if not (self.mixup_a > 0 and self.mixup_b > 0):
            raise ValueError(f"mixup_a and mixup_b are Beta shape parameters and must be > 0, "
                             f"got ({self.mixup_a}, {self.mixup_b})")


def mixup_pairs(batch_size: int, a: float = 0.5, b: float = 0.5,
                device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Index pairs (i, j) with i != j and one alpha ~ Beta(a, b) per pair, drawn from the global RNG
    (seeded by the trainer). Returns (i, j, alpha), each of length ``batch_size``."""
    if batch_size < 2:
        raise ValueError(f"mixup needs at least two samples to form a pair, got a batch of {batch_size}")
    perm = torch.randperm(batch_size)
    i, j = perm, perm.roll(-1)
    alpha = torch.distributions.Beta(torch.tensor(float(a)), torch.tensor(float(b))).sample((batch_size,))
    return i.to(device), j.to(device), alpha.to(device)


class MixupVAE(VAE):
    """VAE regularised so that mixing in input space and in latent space agree (Khan & Storkey §4.2.2)."""

    name = "mixup_vae"
    config_class = MixupVAEConfig
    source = "Khan & Storkey §4.2.2 eqs. (9)-(10)"

    def mixup_penalty(self, x: Tensor, mean: Tensor, i: Tensor, j: Tensor, alpha: Tensor) -> dict[str, Tensor]:
        """Per-pair terms of C for given pairs and alphas; ``mean`` are the codes of ``x``."""
        a_x = alpha.reshape((-1,) + (1,) * (x.dim() - 1)).to(x.dtype)
        a_z = alpha.reshape(-1, 1).to(mean.dtype)
        x_m = a_x * x[i] + (1 - a_x) * x[j]
        z_m = a_z * mean[i] + (1 - a_z) * mean[j]
        enc = (z_m - self.encode(x_m).mean).norm(dim=1)
        dec = (self.decode(z_m) - x_m).reshape(x.shape[0], -1).norm(dim=1)
        return {"encoder_term": enc, "decoder_term": dec, "x_m": x_m, "z_m": z_m}

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        t = self.elbo_terms(x)
        nll, kl = t["nll"].mean(), t["kl"].mean()
        out = {"nll": nll, "kl": kl, "elbo": -(nll + kl)}
        if x.shape[0] >= 2:
            i, j, alpha = mixup_pairs(x.shape[0], self.config.mixup_a, self.config.mixup_b, x.device)
            m = self.mixup_penalty(x, t["mean"], i, j, alpha)
            enc, dec = m["encoder_term"].mean(), m["decoder_term"].mean()
        else:
            enc = dec = torch.zeros((), device=x.device)
        out.update(mixup_encoder=enc, mixup_decoder=dec)
        out["loss"] = nll + kl + self.config.mixup_weight * (enc + dec)
        return out
