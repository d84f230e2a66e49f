"""``photoguard_encoder``: PhotoGuard's encoder attack (Salman et al. 2023), the objective of
``latent_space`` towards the code of a grey image, with PhotoGuard's L-inf budget and steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.plugins.attacks.latent_space import LatentSpaceAttack, LatentSpaceConfig


@dataclass
class PhotoGuardEncoderConfig(LatentSpaceConfig):
    """PhotoGuard's encoder attack (Salman et al. 2023, "Raising the Cost of Malicious AI-Powered Image
    Editing", the "encoder attack"): L-inf ball eps = 0.06 in [0, 1] pixel units (about 16/255), 200
    steps of PGD with sign steps, one random start. The step is the harness's 2.5 eps / steps (their
    public demo decays a larger step linearly; a step schedule other than the harness's would be
    another attack). ``grey``: the grey level of the target image in [0, 1] (0.5: the image a
    [-1, 1] model such as the Stable Diffusion VAE sees as all zeros)."""

    eps: float = 0.06
    norm: str = "linf"
    steps: int = 200
    restarts: int = 1
    grey: float = 0.5

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.grey <= 1.0:
            raise ValueError(f"grey is the target image's grey level in [0, 1], got {self.grey}; use e.g. 0.5")


class PhotoGuardEncoder(LatentSpaceAttack):
    """min ||mu(x + d) - mu(g)||_2 over ||d||_inf <= eps, g the uniform grey image of x's shape:
    the perturbation "immunises" x by pulling its code to a grey image's, so an editing model that
    works on the code sees grey. Unlike ``latent_space`` its target is fixed, so metrics run it as an
    untargeted attack (no target images drawn); the reported objective is the remaining latent
    distance to the grey code (lower = stronger attack), in the model's latent units."""

    name = "photoguard_encoder"
    config_class = PhotoGuardEncoderConfig
    source = "Salman et al. 2023 (PhotoGuard), encoder attack"
    targeted = False

    def prepare(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> tuple[Tensor]:
        grey = torch.full_like(x[:1], float(self.config.grey))
        # one image encoded, its code repeated per input (the solvers repeat context rows per restart)
        return (self.encode_mean(grey).expand(x.shape[0], -1).contiguous(),)
