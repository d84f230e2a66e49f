"""``max_damage``: the output-space (maximum damage) attack of Saseendran (thesis) eq. 5.12."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from latentbench.attack import Attack, SolverAttackConfig


@dataclass
class MaxDamageConfig(SolverAttackConfig):
    """As ``latent_space`` (Saseendran (thesis) §5.4.1, docs/methods.md §2 `max_damage`): L2 ball
    lambda = ``eps``, PGD-L2 200 steps, 10 restarts, or ``solver: lbfgsb``; ``norm: linf`` for an
    L-inf ball of per-pixel bound ``eps`` (sign steps, same step rule)."""

    eps: float = 1.0
    norm: str = "l2"
    steps: int = 200
    restarts: int = 10

    def validate(self) -> None:
        super().validate()
        self.require_random_start("max_damage", "||g(mu(x+d)) - g(mu(x))||^2")


class MaxDamageAttack(Attack):
    """Maximise ||f(mu(x + d)) - f(mu(x))||_2 over ||d|| <= eps, f the decoder mean.

    Saseendran (thesis) prints eq. 5.12 as f(z_x + delta), perturbing the code; its text (the
    adversary perturbs the input data point) and docs/methods.md §2 perturb the input, which is what
    this attack does. Objective reported (maximised): the achieved distance between the two
    reconstructions, over all output pixels. The solver maximises its square (same maximisers,
    smooth at d = 0).
    """

    name = "max_damage"
    config_class = MaxDamageConfig
    source = "Saseendran (thesis) §5.4.1 eq. 5.12"
    prepare_forward_passes = 1  # the clean reconstructions

    def _reconstruction(self, x: Tensor) -> Tensor:
        return self.model.decode(self.model.encode(x).mean).reshape(x.shape[0], -1)

    def prepare(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> tuple[Tensor]:
        return (self._reconstruction(x),)

    def objective(self, x_adv: Tensor, rec_clean: Tensor) -> Tensor:
        return (self._reconstruction(x_adv) - rec_clean).pow(2).sum(dim=1)

    def report(self, objective: Tensor) -> Tensor:
        return objective.clamp_min(0).sqrt()
