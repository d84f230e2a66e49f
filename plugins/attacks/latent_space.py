"""``latent_space``: the targeted latent-space attack of 003 eq. 5.11."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.attack import AttackResult
from latentbench.plugins.attacks.base import SolverAttackConfig, SolverAttack, encode_mean


@dataclass
class LatentSpaceConfig(SolverAttackConfig):
    """003 eq. 5.11 / SPEC §2: L2 ball lambda = ``eps`` (pixel units over the whole image; the
    protocols use 1, 3, 5), PGD-L2 with 200 steps of 2.5 eps / steps, uniform start, 10 restarts;
    ``solver: lbfgsb`` for the L-BFGS-B variant of the reference evaluation."""

    eps: float = 1.0
    norm: str = "l2"
    steps: int = 200
    restarts: int = 10


class LatentSpaceAttack(SolverAttack):
    """Targeted: min ||mu(x + d) - mu(x_t)||_2 over ||d|| <= eps, x_t given as ``target`` images.

    Objective reported: the achieved latent distance to the target code (lower = stronger attack;
    this is the 'attack loss' of 003 Fig. 5.6). The solver minimises the squared distance, which has
    the same minimisers and, unlike the distance, a gradient at the target itself.
    """

    name = "latent_space"
    config_class = LatentSpaceConfig
    source = "003 §5.4.1 eq. 5.11"
    targeted = True

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if target is None or target.shape != x.shape:
            raise ValueError(f"latent_space needs target images of the inputs' shape {tuple(x.shape)}, "
                             f"got {None if target is None else tuple(target.shape)}")
        with torch.no_grad():
            z_t = encode_mean(self.model, target.to(x.device))

        def objective(xa: Tensor, zt: Tensor) -> Tensor:
            return (encode_mean(self.model, xa) - zt).pow(2).sum(dim=1)

        out = self.solve(objective, x, (z_t,), maximize=False)
        return self.make_result(x, out.x_adv, out.objective.clamp_min(0).sqrt(), out.forward_passes + 1,
                                out.backward_passes, solver=self.config.solver)
