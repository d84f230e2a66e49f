"""Pieces every built-in attack shares: a config with a solver choice and the solver dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from torch import Tensor

from latentbench.attack import Attack, AttackConfig
from latentbench.perturbation import PGDOutput
from latentbench.plugins.attacks.solvers import SOLVERS, check_finite, run_lbfgsb, run_pgd


def check_common(cfg: AttackConfig) -> None:
    """Checks beyond :meth:`AttackConfig.validate` that every built-in attack wants."""
    AttackConfig.validate(cfg)
    if cfg.step_size is not None and not cfg.step_size > 0:
        raise ValueError(f"step_size must be > 0 (or null for the attack's default), got {cfg.step_size}")


@dataclass
class SolverAttackConfig(AttackConfig):
    """Adds ``solver``: ``"pgd"`` (batched-restart PGD) or ``"lbfgsb"`` (scipy L-BFGS-B, see
    :func:`latentbench.plugins.attacks.solvers.run_lbfgsb`; ``steps`` is then its iteration budget and
    ``step_size`` is unused)."""

    solver: str = "pgd"

    def validate(self) -> None:
        check_common(self)
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver '{self.solver}': use one of {', '.join(SOLVERS)}")


def encode_mean(model, x: Tensor) -> Tensor:
    """Mean code flattened to (B, d): attacks use the posterior mean (SPEC §0)."""
    return model.encode(x).mean.reshape(x.shape[0], -1)


class SolverAttack(Attack):
    """Base of attacks that optimise a per-input objective with PGD or L-BFGS-B."""

    def solve(self, objective: Callable[..., Tensor], x: Tensor, context: Sequence[Tensor] = (),
              maximize: bool = True) -> PGDOutput:
        cfg = self.config
        common = dict(eps=float(cfg.eps), norm=cfg.norm, steps=int(cfg.steps), restarts=int(cfg.restarts),
                      random_init=bool(cfg.random_start), generator=self.generator, context=context,
                      maximize=maximize)
        if getattr(cfg, "solver", "pgd") == "lbfgsb":
            out = run_lbfgsb(objective, x, **common)
        else:
            out = run_pgd(objective, x, step_size=cfg.step_size, **common)
        check_finite(self.name, out.objective)
        return out
