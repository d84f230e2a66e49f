"""``fgsm_latent``: fast FGSM (Wong et al.) on the latent code, as Saseendran (thesis) §5.3.2 uses for training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from latentbench.attack import Attack, AttackConfig, AttackResult
from latentbench.perturbation import ascent_direction, project, repeat_batch, restart_starts
from latentbench.solvers import best_of_restarts, default_step_size

#: Wong et al.'s fast-FGSM step relative to the budget (Saseendran (thesis) §5.3.2 follows them)
STEP_FACTOR = 1.25


def _sq_code_change(encode_fn: Callable[[Tensor], Tensor], xa: Tensor, z0: Tensor) -> Tensor:
    # the squared distance has the sign-gradient of the distance and no kink at z(x + d) = z(x)
    return (encode_fn(xa) - z0).reshape(xa.shape[0], -1).pow(2).sum(dim=1)


def fgsm_step(encode_fn: Callable[[Tensor], Tensor], x: Tensor, z0: Tensor, start: Tensor, eps: float,
              step_size: float) -> Tensor:
    """One signed-gradient step from ``start`` on ||z(x + d) - z0||^2, projected to ball and box."""
    xa = start.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(_sq_code_change(encode_fn, xa, z0).sum(), xa)
    return project(x, xa.detach() + step_size * ascent_direction(grad, "linf"), eps, "linf")


def fgsm_latent_perturb(encode_fn: Callable[[Tensor], Tensor], x: Tensor, eps: float,
                        generator: Optional[torch.Generator] = None, step_size: Optional[float] = None,
                        z_clean: Optional[Tensor] = None) -> Tensor:
    """Adversarial inputs for training robust autoencoders (Saseendran (thesis) §5.3.2, eq. 5.1;
    Wong et al.).

    d0 ~ U(-eps, eps) (then clipped to the box), one step of ``step_size`` (default 1.25 eps) along
    sign(grad_d ||z(x + d) - z(x)||_2), projection onto the L-inf ball and [0, 1]. ``encode_fn`` maps
    images to codes (e.g. ``lambda x: model.encode(x).mean``); ``z_clean`` avoids re-encoding x when
    the caller already has its codes. Returns detached ``x_adv`` (B, ...); parameter gradients are
    not touched. Costs one forward pass (two without ``z_clean``) and one backward pass.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    x = x.detach()
    if z_clean is None:
        with torch.no_grad():
            z_clean = encode_fn(x)
    step = default_step_size(eps, 1, step_size, STEP_FACTOR)
    start = restart_starts(x, eps, "linf", 1, True, generator)
    return fgsm_step(encode_fn, x, z_clean.detach(), start, eps, step).detach()


@dataclass
class FGSMLatentConfig(AttackConfig):
    """Saseendran (thesis) §5.3.2: L-inf budget (0.3 as in the robust models' training,
    docs/methods.md §1 `robust_gmm_dae`), exactly one step of 1.25 eps (``step_size`` null) from a
    uniform random start; ``restarts`` > 1 draws several starts (batched) and keeps the best per
    input, which the thesis does not do. ``random_start: false`` is refused: the gradient of the
    objective at the clean input is zero (see ``validate``)."""

    eps: float = 0.3
    norm: str = "linf"
    steps: int = 1
    restarts: int = 1

    def validate(self) -> None:
        super().validate()
        if self.norm != "linf":
            raise ValueError(f"fgsm_latent is an L-inf attack (sign step), got norm '{self.norm}'; "
                             f"use max_damage or latent_space for L2 budgets")
        if self.steps != 1:
            raise ValueError(f"fgsm_latent takes exactly one step, got steps={self.steps}; "
                             f"use pgd_wasserstein for an iterative L-inf attack on the code")
        self.require_random_start("fgsm_latent", "||z(x + d) - z(x)||^2")


class FGSMLatent(Attack):
    """Maximise ||z(x + d) - z(x)||_2 over ||d||_inf <= eps with one fast-FGSM step (Saseendran
    (thesis) eq. 5.1).

    Objective (maximised, reported): ||mu(x_adv) - mu(x)||_2 of encoder means at the stepped point.
    The point returned is the point after the step (not the random start), as in Wong et al.; so it
    is not a PGD run (which would keep the best iterate, start included) and overrides ``perturb``.
    """

    name = "fgsm_latent"
    config_class = FGSMLatentConfig
    source = "Saseendran (thesis) §5.3.2 (fast FGSM of Wong et al. in latent space)"
    step_factor = STEP_FACTOR  # one step: the default step is 1.25 eps

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        cfg = self.config
        R = int(cfg.restarts)

        def encode_fn(xa: Tensor) -> Tensor:
            return self.model.encode(xa).mean

        with torch.no_grad():
            z0 = encode_fn(x)
        xr, z0r = repeat_batch(x, R), repeat_batch(z0, R)
        x_adv = fgsm_step(encode_fn, xr, z0r, self.restart_starts(x), cfg.eps, self.step_size())
        with torch.no_grad():
            dist = _sq_code_change(encode_fn, x_adv, z0r).sqrt()
        self.check_finite(dist)
        rows = best_of_restarts(dist, R)
        return self.make_result(x, x_adv[rows], dist[rows], forward_passes=1 + 2 * R, backward_passes=R)
