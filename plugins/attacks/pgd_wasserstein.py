"""``pgd_wasserstein``: PGD on the Wasserstein distance between posteriors (001 §3.1, §4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.plugins.attacks.base import SolverAttack, check_common
from latentbench.attack import AttackConfig, AttackResult
from latentbench.plugins._common.gaussians import posterior_distance

DISTANCES = ("w2", "w2_gamma")


@dataclass
class PGDWassersteinConfig(AttackConfig):
    """001 §3.1: L-inf ball, 20 steps of 2.5 eps / steps (step_size null), uniform random start.

    ``distance`` ``"w2"`` is the exact W_2^2 of the diagonal posteriors, ``"w2_gamma"`` the
    entropy-regularised W_{2,gamma} (001 App. C) with ``gamma``. The evaluation setting of 001 §4
    is ``steps=100, restarts=10``.
    """

    eps: float = 0.1
    norm: str = "linf"
    steps: int = 20
    restarts: int = 1
    distance: str = "w2"
    gamma: float = 1.0

    def validate(self) -> None:
        check_common(self)
        if self.distance not in DISTANCES:
            raise ValueError(f"unknown distance '{self.distance}': use one of {', '.join(DISTANCES)}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")


class PGDWasserstein(SolverAttack):
    """Maximise W(q(z|x), q(z|x + d)) over ||d|| <= eps (001 §3.1, the SE selection attack).

    Objective (maximised, reported as ``objective``): the squared distance W_2^2 (or W_{2,gamma}),
    summed over latent dimensions; for deterministic encoders ||mu(x) - mu(x + d)||^2 (SPEC §2).
    The posterior of the clean input is computed once. 001 leaves open whether to maximise W_2 or
    W_2^2; they have the same maximisers and the same sign-gradient, so PGD steps are identical.
    """

    name = "pgd_wasserstein"
    config_class = PGDWassersteinConfig
    source = "001 §3.1 (selection attack), §4 (evaluation)"

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        cfg = self.config
        with torch.no_grad():
            q0 = self.model.encode(x)
        B = x.shape[0]
        mean0 = q0.mean.reshape(B, -1)
        stochastic = q0.std is not None
        context = (mean0, q0.std.reshape(B, -1)) if stochastic else (mean0,)

        def objective(xa: Tensor, m0: Tensor, s0: Tensor | None = None) -> Tensor:
            q = self.model.encode(xa)
            n = xa.shape[0]
            std = q.std.reshape(n, -1) if q.std is not None else None
            return posterior_distance(q.mean.reshape(n, -1), std, m0, s0, cfg.distance, cfg.gamma)

        out = self.solve(objective, x, context, maximize=True)
        return self.make_result(x, out.x_adv, out.objective, out.forward_passes + 1, out.backward_passes,
                                distance=cfg.distance)
