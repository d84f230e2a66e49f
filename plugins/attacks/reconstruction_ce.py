"""``reconstruction_ce``: untargeted attack on a classifier's loss through the autoencoder
(the first attack of the headline ensemble, docs/methods.md §7).

Maximises cross-entropy(classifier(r(x + δ)), y) with r(x) = decode(mean of encode(x)), by PGD
(APGD's step-size schedule by default, Croce & Hein 2020) over batched restarts. An input leaves
the batch as soon as one restart makes the classifier change its mind, so broken inputs stop
costing passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.attack import Attack, AttackConfig, AttackResult
from latentbench.solvers import SCHEDULES


@dataclass
class ReconstructionCEConfig(AttackConfig):
    """PGD-L2 with APGD's schedule (step 2 eps, halved at checkpoints) by default;
    ``schedule: constant`` uses ``step_size`` (default 2.5 eps / steps)."""

    eps: float = 0.5
    norm: str = "l2"
    steps: int = 50
    restarts: int = 2
    schedule: str = "apgd"

    def validate(self) -> None:
        super().validate()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.schedule}': use one of {', '.join(SCHEDULES)}")


class ReconstructionCE(Attack):
    """Objective (maximised): CE + (log K + 1) * [prediction != y]. A correctly classified point has
    CE <= log K, so every fooling point scores above every non-fooling one and the best point kept is a
    fooling one where one was found; the indicator has no gradient, so the steps are plain CE's.
    ``extra["fooled"]``: classifier(r(x_adv)) != y. Reported objective: the cross-entropy at x_adv."""

    name = "reconstruction_ce"
    config_class = ReconstructionCEConfig
    source = "docs/methods.md §7 (headline ensemble, attack 1); Croce & Hein 2020 (APGD schedule)"
    needs_classifier = True

    def __init__(self, model, config=None, generator=None, classifier=None, **overrides):
        if classifier is None:
            raise ValueError("reconstruction_ce needs a classifier of images: pass classifier=<module>")
        super().__init__(model, config, generator=generator, classifier=classifier, **overrides)

    def logits(self, x: Tensor) -> Tensor:
        return self.classifier(self.model.decode(self.model.encode(x).mean))

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if y is None or y.shape != (x.shape[0],):
            raise ValueError(f"reconstruction_ce needs integer labels y of shape ({x.shape[0]},)")
        y = y.to(x.device).long()
        with torch.no_grad():
            K = self.logits(x[:1]).shape[1]
        bonus = math.log(K) + 1.0

        def score(xa: Tensor, yy: Tensor) -> Tensor:
            lg = self.logits(xa)
            fooled = (lg.detach().argmax(1) != yy).to(lg.dtype)
            return F.cross_entropy(lg, yy, reduction="none") + bonus * fooled

        out = self.solve(score, x, (y,), maximize=True, stop_at=bonus)
        fooled = out.objective >= bonus
        ce = torch.where(fooled, out.objective - bonus, out.objective)
        return self.make_result(x, out.x_adv, ce, out.forward_passes, out.backward_passes, fooled=fooled.cpu(),
                                forward_passes_per_input=out.forward_per_input.cpu())
