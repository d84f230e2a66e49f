"""``max_damage``: the output-space (maximum damage) attack of 003 eq. 5.12."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.attack import AttackResult
from latentbench.plugins.attacks.base import SolverAttack, SolverAttackConfig


@dataclass
class MaxDamageConfig(SolverAttackConfig):
    """As ``latent_space`` (003 §5.4.1, SPEC §2): L2 ball lambda = ``eps``, PGD-L2 200 steps,
    10 restarts, or ``solver: lbfgsb``."""

    eps: float = 1.0
    norm: str = "l2"
    steps: int = 200
    restarts: int = 10


class MaxDamageAttack(SolverAttack):
    """Maximise ||f(mu(x + d)) - f(mu(x))||_2 over ||d|| <= eps, f the decoder mean.

    003 prints eq. 5.12 as f(z_x + delta), perturbing the code; the text (the adversary perturbs the
    input data point) and SPEC §2 perturb the input, which is what this attack does.
    Objective reported (maximised): the achieved distance between the two reconstructions, over
    all output pixels. The solver maximises its square (same maximisers, smooth at d = 0).
    """

    name = "max_damage"
    config_class = MaxDamageConfig
    source = "003 §5.4.1 eq. 5.12"

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        B = x.shape[0]
        with torch.no_grad():
            rec0 = self.model.decode(self.model.encode(x).mean).reshape(B, -1)

        def objective(xa: Tensor, r0: Tensor) -> Tensor:
            rec = self.model.decode(self.model.encode(xa).mean)
            return (rec.reshape(xa.shape[0], -1) - r0).pow(2).sum(dim=1)

        out = self.solve(objective, x, (rec0,), maximize=True)
        return self.make_result(x, out.x_adv, out.objective.clamp_min(0).sqrt(), out.forward_passes + 1,
                                out.backward_passes, solver=self.config.solver)
