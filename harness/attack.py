"""The attack interface (torchattacks/Foolbox style): the constructor holds the threat model and
solver settings, calling the attack on a batch returns an :class:`AttackResult`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

import torch
from torch import Tensor

from latentbench.perturbation import check_norm, flat_norm


@dataclass
class AttackConfig:
    """Threat model and solver settings shared by attacks; plugins subclass with their own fields.

    ``step_size`` None means the attack's documented default (e.g. 2.5 * eps / steps for PGD).
    """

    eps: float = 0.1
    norm: str = "linf"
    steps: int = 20
    step_size: Optional[float] = None
    restarts: int = 1
    random_start: bool = True

    def validate(self) -> None:
        check_norm(self.norm)
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        if self.steps < 0 or self.restarts < 1:
            raise ValueError("steps must be >= 0 and restarts >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class AttackResult:
    """Per-input outcome of an attack on a batch of B inputs."""

    x_adv: Tensor  # (B, C, H, W), in [0, 1] and inside the budget
    norm: Tensor  # (B,) achieved perturbation norm in the threat model's norm
    objective: Tensor  # (B,) final objective value, in the attack's own convention (see its docstring)
    forward_passes: int  # model forward passes spent per input
    backward_passes: int  # backward passes spent per input
    budget: float
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def detach(self) -> "AttackResult":
        return dataclasses.replace(
            self, x_adv=self.x_adv.detach(), norm=self.norm.detach(), objective=self.objective.detach()
        )


class Attack:
    """Base class of attack plugins.

    Subclasses set ``name``, ``config_class`` and implement ``perturb``. ``targeted`` attacks take a
    ``target`` batch (images whose codes are the targets). The model is an
    :class:`harness.Autoencoder`; attacks use the encoder mean unless documented otherwise.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[AttackConfig]] = AttackConfig
    source: ClassVar[str] = ""
    targeted: ClassVar[bool] = False
    #: True for attacks that need a classifier/probe (given to the constructor as ``classifier``)
    needs_classifier: ClassVar[bool] = False

    def __init__(self, model, config: AttackConfig | None = None, generator: torch.Generator | None = None,
                 classifier=None, **overrides):
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        if hasattr(config, "validate"):
            config.validate()
        self.model = model
        self.config = config
        self.generator = generator
        self.classifier = classifier

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        raise NotImplementedError

    def __call__(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if self.targeted and target is None:
            raise ValueError(f"attack '{self.name}' is targeted: pass target=<batch of target images>")
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()  # never attack with dropout/BatchNorm updates or latent noise on
        try:
            res = self.perturb(x, y=y, target=target)
        finally:
            if was_training:
                self.model.train()
        self._check(x, res)
        return res

    def sweep(self, x: Tensor, budgets: Sequence[float], y: Tensor | None = None,
              target: Tensor | None = None) -> dict[float, AttackResult]:
        """Run the attack at several budgets (same solver settings); results per budget."""
        out = {}
        for b in budgets:
            atk = type(self)(self.model, dataclasses.replace(self.config, eps=float(b)),
                             generator=self.generator, classifier=self.classifier)
            out[float(b)] = atk(x, y=y, target=target)
        return out

    def _check(self, x: Tensor, res: AttackResult) -> None:
        # A measuring instrument must not silently report an out-of-budget attack.
        lo, hi = float(res.x_adv.min()), float(res.x_adv.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise AssertionError(f"attack '{self.name}' left the [0, 1] box: range [{lo}, {hi}]")
        achieved = flat_norm(res.x_adv - x, self.config.norm)
        tol = 1e-5 * max(1.0, float(res.budget))
        if bool((achieved > res.budget + tol).any()):
            raise AssertionError(
                f"attack '{self.name}' exceeded its {self.config.norm} budget {res.budget}: max {float(achieved.max())}")

    def make_result(self, x: Tensor, x_adv: Tensor, objective: Tensor, forward_passes: int,
                    backward_passes: int, **extra) -> AttackResult:
        x_adv = x_adv.detach()
        return AttackResult(
            x_adv=x_adv,
            norm=flat_norm(x_adv - x, self.config.norm).detach(),
            objective=objective.detach(),
            forward_passes=int(forward_passes),
            backward_passes=int(backward_passes),
            budget=float(self.config.eps),
            config={"attack": self.name, **self.config.to_dict()},
            extra=extra,
        )
