"""``latent_space``: the targeted latent-space attack of Saseendran (thesis) eq. 5.11.

It takes the L2 (default) or the L-inf threat model (``norm: linf``): projection, random start and
sign steps come from :mod:`latentbench.perturbation` for either norm."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from latentbench.attack import Attack, SolverAttackConfig


@dataclass
class LatentSpaceConfig(SolverAttackConfig):
    """Saseendran (thesis) eq. 5.11, docs/methods.md §2 `latent_space`: L2 ball lambda = ``eps``
    (pixel units over the whole image; the protocols use 1, 3, 5), PGD-L2 with 200 steps of
    2.5 eps / steps, uniform start, 10 restarts; ``solver: lbfgsb`` for the L-BFGS-B variant of the
    reference evaluation. ``norm: linf`` makes ``eps`` a per-pixel bound (sign steps, same step rule)."""

    eps: float = 1.0
    norm: str = "l2"
    steps: int = 200
    restarts: int = 10


class LatentSpaceAttack(Attack):
    """Targeted: min ||mu(x + d) - mu(x_t)||_2 over ||d|| <= eps, x_t given as ``target`` images.

    Objective reported: the achieved latent distance to the target code (lower = stronger attack;
    this is the 'attack loss' of Saseendran (thesis) Fig. 5.6). The solver minimises the squared
    distance, which has the same minimisers and, unlike the distance, a gradient at the target itself.
    """

    name = "latent_space"
    config_class = LatentSpaceConfig
    source = "Saseendran (thesis) §5.4.1 eq. 5.11"
    targeted = True
    maximize = False
    prepare_forward_passes = 1  # the target codes

    def prepare(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> tuple[Tensor]:
        if target is None or target.shape != x.shape:
            raise ValueError(f"latent_space needs target images of the inputs' shape {tuple(x.shape)}, "
                             f"got {None if target is None else tuple(target.shape)}")
        return (self.encode_mean(target.to(x.device)),)

    def objective(self, x_adv: Tensor, z_target: Tensor) -> Tensor:
        return (self.encode_mean(x_adv) - z_target).pow(2).sum(dim=1)

    def report(self, objective: Tensor) -> Tensor:
        return objective.clamp_min(0).sqrt()
