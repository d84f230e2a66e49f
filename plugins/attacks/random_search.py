"""``random_search``: a gradient-free L2 attack with a fixed query budget (the last attack of the
headline ensemble, docs/methods.md §7), so that a model that hides its gradients does not look robust.

Square-attack style (Andriushchenko et al. 2020, L2 version simplified): start on the ε-sphere in a
random direction; each query adds a random ±1 square patch (side ``patch`` of the image, all
channels) scaled to a fraction of ε, projects onto ball ∩ box, and keeps the proposal when the
margin loss m = max_{k≠y} logit_k - logit_y of classifier(r(x + δ)) rises. The proposal scale
halves at 1/8, 1/4 and 1/2 of the budget. An input stops once m > 0 (fooled). No gradients are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentbench.attack import Attack, AttackConfig, AttackResult
from latentbench.perturbation import project


@dataclass
class RandomSearchConfig(AttackConfig):
    """``steps`` is the query budget per input; ``patch`` the side of a proposal square as a fraction of
    the image side; ``scale`` the proposal's L2 norm as a fraction of eps (halved on schedule)."""

    eps: float = 0.5
    norm: str = "l2"
    steps: int = 300
    restarts: int = 1
    patch: float = 0.4
    scale: float = 0.5

    def validate(self) -> None:
        super().validate()
        if self.norm != "l2":
            raise ValueError("random_search implements the L2 threat model only (norm: l2)")
        if not 0 < self.patch <= 1 or not self.scale > 0:
            raise ValueError("patch must be in (0, 1] and scale > 0")


class RandomSearch(Attack):
    """Objective reported: the margin m at x_adv (> 0: fooled). ``extra["fooled"]``."""

    name = "random_search"
    config_class = RandomSearchConfig
    source = "docs/methods.md §7 (headline ensemble, gradient-free attack); after Andriushchenko et al. 2020"
    needs_classifier = True

    def __init__(self, model, config=None, generator=None, classifier=None, **overrides):
        if classifier is None:
            raise ValueError("random_search needs a classifier of images: pass classifier=<module>")
        super().__init__(model, config, generator=generator, classifier=classifier, **overrides)

    @torch.no_grad()
    def margin(self, x: Tensor, y: Tensor) -> Tensor:
        lg = self.classifier(self.model.decode(self.model.encode(x).mean))
        true = lg.gather(1, y[:, None]).squeeze(1)
        other = lg.scatter(1, y[:, None], -float("inf")).amax(1)
        return other - true

    @torch.no_grad()
    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        if y is None or y.shape != (x.shape[0],):
            raise ValueError(f"random_search needs integer labels y of shape ({x.shape[0]},)")
        cfg, g = self.config, self.generator
        y = y.to(x.device).long()
        B, C, H, W = x.shape
        eps = float(cfg.eps)
        best_x = x.clone()
        best_m = self.margin(x, y)
        queries = torch.ones(B, dtype=torch.long)
        if eps > 0 and cfg.steps > 0:
            # start on the sphere (radius eps before the box clip), a random direction per input
            d = torch.randn(x.shape, generator=g).to(x)
            d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            cand = project(x, x + eps * d, eps, "l2")
            m = self.margin(cand, y)
            take = m > best_m
            best_x = torch.where(take.view(-1, 1, 1, 1), cand, best_x)
            best_m = torch.where(take, m, best_m)
            queries += 1
            side = max(1, int(round(cfg.patch * min(H, W))))
            active = torch.nonzero(best_m <= 0).flatten()
            # the query counter lives on the CPU; its index copy is refreshed only when the active set
            # changes (every 10 queries), not synchronised with the device on every query
            active_cpu = active.cpu()
            for q in range(1, cfg.steps):
                if active.numel() == 0:
                    break
                frac = cfg.scale / (2 ** sum(q >= f * cfg.steps for f in (0.125, 0.25, 0.5)))
                n = active.numel()
                r0 = torch.randint(0, H - side + 1, (n,), generator=g)
                c0 = torch.randint(0, W - side + 1, (n,), generator=g)
                signs = torch.randint(0, 2, (n,), generator=g).to(x) * 2 - 1
                rows = torch.arange(H)[None, :, None]
                cols = torch.arange(W)[None, None, :]
                mask = ((rows >= r0[:, None, None]) & (rows < (r0 + side)[:, None, None])
                        & (cols >= c0[:, None, None]) & (cols < (c0 + side)[:, None, None])).to(x)
                patch = (mask * signs[:, None, None]).unsqueeze(1).expand(n, C, H, W)
                patch = patch / patch.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                xa, xb = x[active], best_x[active]
                cand = project(xa, xb + frac * eps * patch, eps, "l2")
                m = self.margin(cand, y[active])
                take = m > best_m[active]
                best_x[active] = torch.where(take.view(-1, 1, 1, 1), cand, xb)
                best_m[active] = torch.where(take, m, best_m[active])
                queries[active_cpu] += 1
                if q % 10 == 0:
                    active = active[best_m[active] <= 0]
                    active_cpu = active.cpu()
        fooled = best_m > 0
        return self.make_result(x, best_x, best_m, int(queries.max()), 0, fooled=fooled.cpu(),
                                forward_passes_per_input=queries)
