"""The attack interface (torchattacks/Foolbox style) and the base class every attack derives from.

The constructor holds the threat model and solver settings; calling the attack on a batch returns an
:class:`AttackResult`. An attack that optimises a per-input objective is a config dataclass plus an
``objective`` method: :meth:`Attack.perturb` (a template method) prepares the context, runs the
configured solver over batched restarts with projection onto ball ∩ box after every step, checks the
objective is finite and keeps the best point per input. Attacks that are not a plain objective
optimisation override ``perturb`` and use the same helpers (:meth:`Attack.solve`,
:meth:`Attack.restart_starts`, :meth:`Attack.step_size`, :meth:`Attack.check_finite`).

Where the pieces live: the threat model (norms, projection, random starts, restart layout) in
:mod:`latentbench.perturbation`, the optimisers (batched PGD, L-BFGS-B) in :mod:`latentbench.solvers`,
their wiring to a config here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

import torch
from torch import Tensor

from latentbench.perturbation import check_norm, flat_norm, restart_starts
from latentbench.solvers import (PGD_STEP_FACTOR, SOLVERS, SolverOutput, check_finite, default_step_size, run_lbfgsb,
                                 run_pgd)


@dataclass
class AttackConfig:
    """Threat model and solver settings shared by attacks; plugins subclass with their own fields.

    ``step_size`` None means the attack's documented default (``Attack.step_factor * eps / steps``,
    2.5 * eps / steps for PGD).
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
            raise ValueError(f"eps must be >= 0, got {self.eps} -- give budgets/eps as numbers >= 0 (a perturbation size in [0, 1] pixel units)")
        if self.steps < 0 or self.restarts < 1:
            raise ValueError("steps must be >= 0 and restarts >= 1")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"step_size must be > 0 (or null for the attack's default), got {self.step_size}")

    def require_random_start(self, attack: str, objective: str) -> None:
        """Refuse ``random_start: false`` for an objective that is a distance from the clean point's
        own output: its gradient at the clean input is exactly zero, so every gradient step from there
        is zero and the attack would silently return x (objective 0) instead of attacking."""
        if not self.random_start and self.eps > 0 and self.steps > 0:
            raise ValueError(f"{attack} needs random_start: true -- its objective {objective} has zero gradient at "
                             f"the clean input, so steps from d = 0 go nowhere and nothing is attacked; keep "
                             f"random_start true, or use eigendirection for a deterministic attack from the clean input")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SolverAttackConfig(AttackConfig):
    """Adds ``solver``: ``"pgd"`` (batched-restart PGD) or ``"lbfgsb"`` (scipy L-BFGS-B, see
    :func:`latentbench.solvers.run_lbfgsb`; ``steps`` is then its iteration budget and ``step_size``
    is unused). :meth:`Attack.solve` runs PGD for configs without this field."""

    solver: str = "pgd"

    def validate(self) -> None:
        super().validate()
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver '{self.solver}': use one of {', '.join(SOLVERS)}")


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


@contextlib.contextmanager
def frozen(*modules: Any):
    """Parameters of ``modules`` stop requiring gradients for the duration (restored after).

    Attacks differentiate with respect to the input only. With parameters that require gradients,
    convolution backward also computes weight gradients nobody reads: measured on the papers' conv
    encoder (128-256-512 channels, 32x32, one thread) a step costs 15% more. Input gradients, and so
    every attack result, are bit-identical either way."""
    params = [p for m in modules if isinstance(m, torch.nn.Module) for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Attack:
    """Base class of attack plugins.

    Subclasses set ``name``, ``config_class`` and ``source``, and either

    - define ``objective(self, x_adv, *context) -> (rows,)`` (one value per row; rows are restart-major
      copies of the batch), ``maximize`` and optionally ``prepare`` (the context tensors, computed once
      from the clean batch), ``report`` (the reported objective, e.g. a distance from the squared
      distance the solver optimises), ``prepare_forward_passes`` and ``result_extra``; or
    - override ``perturb`` (attacks that are not one objective optimisation), using :meth:`solve`,
      :meth:`restart_starts`, :meth:`step_size`, :meth:`check_finite` and :meth:`make_result`.

    ``targeted`` attacks take a ``target`` batch (images whose codes are the targets). The model is an
    :class:`latentbench.Autoencoder`; attacks use the encoder mean unless documented otherwise.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[AttackConfig]] = AttackConfig
    source: ClassVar[str] = ""
    targeted: ClassVar[bool] = False
    #: True for attacks that need a classifier/probe (given to the constructor as ``classifier``)
    needs_classifier: ClassVar[bool] = False
    #: whether ``objective`` is maximised (False: minimised, e.g. a distance to a target code)
    maximize: ClassVar[bool] = True
    #: default step = ``step_factor * eps / steps`` when the config's ``step_size`` is None
    #: (2.5: Madry et al.'s PGD step, docs/methods.md §2)
    step_factor: ClassVar[float] = PGD_STEP_FACTOR
    #: forward passes per input that ``prepare`` spends (reported in ``forward_passes``)
    prepare_forward_passes: ClassVar[int] = 0
    #: ``objective(x_adv, *context) -> (rows,)``: defined by objective attacks, None otherwise
    objective: Optional[Callable[..., Tensor]] = None

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

    # -- the template: objective attacks define the hooks below, not perturb ------------------------

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if self.objective is None:
            raise NotImplementedError(
                f"attack '{self.name}' defines neither objective(x_adv, *context) nor perturb(x, y, target)")
        # the context is a constant of the optimisation (the solvers detach it): no graph needed
        with torch.no_grad():
            context = tuple(self.prepare(x, y=y, target=target))
        out = self.solve(self.objective, x, context)
        return self.make_result(x, out.x_adv, self.report(out.objective),
                                out.forward_passes + self.prepare_forward_passes, out.backward_passes,
                                **self.result_extra())

    def prepare(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> Sequence[Tensor]:
        """Context tensors for ``objective`` (batch dimension first, repeated with the restarts);
        run once under ``torch.no_grad``. Raise ``ValueError`` here for unusable ``y``/``target``."""
        return ()

    def report(self, objective: Tensor) -> Tensor:
        """The objective reported in the result, from the best solver value per input."""
        return objective

    def result_extra(self) -> dict[str, Any]:
        """``AttackResult.extra`` of an objective attack; records the solver when the config chooses one."""
        solver = getattr(self.config, "solver", None)
        return {} if solver is None else {"solver": solver}

    # -- helpers for every attack -------------------------------------------------------------------

    def step_size(self) -> float:
        """The configured ``step_size``, or ``step_factor * eps / steps``."""
        cfg = self.config
        return default_step_size(cfg.eps, cfg.steps, cfg.step_size, self.step_factor)

    def restart_starts(self, x: Tensor, restarts: int | None = None) -> Tensor:
        """(R*B, ...) starting points, restart-major, one random-start draw per restart (x itself
        without ``random_start``); R is the config's ``restarts`` unless given."""
        cfg = self.config
        R = int(cfg.restarts) if restarts is None else int(restarts)
        return restart_starts(x, float(cfg.eps), cfg.norm, R, bool(cfg.random_start), self.generator)

    def solve(self, objective: Callable[..., Tensor], x: Tensor, context: Sequence[Tensor] = (),
              maximize: bool | None = None, restarts: int | None = None,
              stop_at: float | None = None) -> SolverOutput:
        """Optimise ``objective(x_adv, *context)`` over the config's threat model with its solver
        (``config.solver`` where the config has one, PGD otherwise; PGD's step-size ``schedule``
        where the config has one), ``restarts`` restarts batched (the config's unless given);
        returns the best point per input, checked finite. ``stop_at``: PGD drops an input once its
        objective reaches this value (see :func:`latentbench.solvers.pgd`)."""
        cfg = self.config  # validated in __init__, solver included
        common = dict(eps=float(cfg.eps), norm=cfg.norm, steps=int(cfg.steps),
                      restarts=int(cfg.restarts) if restarts is None else int(restarts),
                      random_init=bool(cfg.random_start), generator=self.generator, context=context,
                      maximize=self.maximize if maximize is None else bool(maximize))
        if getattr(cfg, "solver", "pgd") == "lbfgsb":
            out = run_lbfgsb(objective, x, **common)
        else:
            out = run_pgd(objective, x, step_size=self.step_size(), schedule=getattr(cfg, "schedule", "constant"),
                          stop_at=stop_at, **common)
        self.check_finite(out.objective)
        return out

    def check_finite(self, values: Tensor) -> None:
        """Raise :class:`latentbench.errors.NonFiniteError` naming this attack on NaN/inf values."""
        check_finite(self.name, values)

    def encode_mean(self, x: Tensor) -> Tensor:
        """Posterior mean code flattened to (B, d): attacks use the mean (docs/methods.md §0)."""
        return self.model.encode(x).mean.reshape(x.shape[0], -1)

    # -- calling, sweeping, checking ----------------------------------------------------------------

    def __call__(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if self.targeted and target is None:
            raise ValueError(f"attack '{self.name}' is targeted: pass target=<batch of target images>")
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()  # never attack with dropout/BatchNorm updates or latent noise on
        try:
            with frozen(self.model, self.classifier):
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
