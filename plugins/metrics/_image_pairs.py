"""Image pairs around a latent-space or maximum-damage attack (Saseendran (thesis) §5.4.3, §5.4.7; docs/methods.md §3, §4).

Per trial, ``images_per_trial`` images are drawn without replacement from ctx.x (a new draw every
trial; the public scripts attacked one fixed image, docs/methods.md §6), and for a targeted attack each gets a
target image drawn from the images of another class. The attack returns x_a; with x~ = decode of
the encoder mean, the pairs are

- ``target_vs_adv_recon`` (x_t, x~_a), targeted attacks only: lower similarity is more robust;
- ``recon_vs_adv_recon`` (x~_r, x~_a), untargeted (max-damage) attacks: higher is more robust;
- ``input_vs_adv`` (x, x_a), always: how visible the perturbation is;
- ``adv_vs_adv_recon`` (x_a, x~_a), always: decoder quality on the attacked input.

Draws use generators derived from (ctx.seed, "image_pairs", attack name, trial) rather than
ctx.generator, so ``ms_ssim`` and ``l2_distance`` see the same images whichever runs first; the
pairs are also cached in ctx.extra, which the runner shares between the cells of one (model, attack,
budget), so the attack runs once for both metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricConfig, MetricContext
from latentbench.seeding import component_generator

TARGETED_PAIRS = ("target_vs_adv_recon", "input_vs_adv", "adv_vs_adv_recon")
UNTARGETED_PAIRS = ("recon_vs_adv_recon", "input_vs_adv", "adv_vs_adv_recon")


@dataclass
class PairsConfig(MetricConfig):
    images_per_trial: int = 100
    trials: int = 10

    def validate(self) -> None:
        if self.images_per_trial < 1 or self.trials < 1:
            raise ValueError(f"images_per_trial and trials must be >= 1, got {self.images_per_trial}, {self.trials}")


@dataclass
class TrialPairs:
    pairs: dict[str, tuple[Tensor, Tensor]]
    indices: Tensor
    target_indices: Optional[Tensor]
    adv_norm: Tensor


def draw_targets(y: Tensor, idx: Tensor, g: torch.Generator) -> Tensor:
    """For each chosen index, a uniformly drawn index of an image with another label."""
    out = torch.empty_like(idx)
    y_cpu = y.cpu()
    for j, i in enumerate(idx.tolist()):
        pool = (y_cpu != y_cpu[i]).nonzero().reshape(-1)
        if len(pool) == 0:
            raise LatentBenchError("a targeted attack needs images of at least two classes in the evaluation subset")
        out[j] = pool[torch.randint(len(pool), (1,), generator=g)]
    return out


def attack_pairs(ctx: MetricContext, cfg: PairsConfig) -> tuple[list[TrialPairs], dict]:
    """Run the attack for every trial and return the image pairs per trial, plus info for the result."""
    attack = ctx.attack
    if attack is None:
        raise LatentBenchError("this metric compares images around an attack: give it an attack (latent_space or "
                               "max_damage) in the run config")
    name = ctx.attack_name or getattr(attack, "name", "attack")
    targeted = bool(getattr(attack, "targeted", False))
    n_used = min(cfg.images_per_trial, ctx.x.shape[0])
    # keyed by the attack's configuration (not the object): the runner shares ctx.extra between the
    # cells of one (model, attack, budget), so ms_ssim and l2_distance run the attack once
    acfg = getattr(attack, "config", None)
    acfg_key = repr(sorted(acfg.to_dict().items())) if hasattr(acfg, "to_dict") else repr(acfg)
    key = ("image_pairs", name, acfg_key, n_used, cfg.trials, ctx.seed)
    info = {"attack": name, "targeted": targeted, "images_per_trial_used": n_used, "trials": cfg.trials,
            "pairs": list(TARGETED_PAIRS if targeted else UNTARGETED_PAIRS)}
    if key in ctx.extra:
        return ctx.extra[key], info
    if targeted and ctx.y is None:
        raise LatentBenchError(f"attack '{name}' is targeted and needs labels to pick targets of another class; "
                               f"the evaluation data has none")
    model = ctx.model
    model.eval()
    out = []
    for trial in range(cfg.trials):
        g = component_generator(ctx.seed, "image_pairs", name, trial)
        idx = torch.randperm(ctx.x.shape[0], generator=g)[:n_used]
        x = ctx.x[idx.to(ctx.x.device)]
        y = None if ctx.y is None else ctx.y[idx.to(ctx.y.device)]
        t_idx = None
        if targeted:
            t_idx = draw_targets(ctx.y, idx, g)
            x_t = ctx.x[t_idx.to(ctx.x.device)]
            res = attack(x, y=y, target=x_t)
        else:
            res = attack(x, y=y)
        x_a = res.x_adv.detach()
        with torch.no_grad():
            rec_a = model.reconstruct(x_a)
            pairs = {"input_vs_adv": (x, x_a), "adv_vs_adv_recon": (x_a, rec_a)}
            if targeted:
                pairs["target_vs_adv_recon"] = (x_t, rec_a)
            else:
                pairs["recon_vs_adv_recon"] = (model.reconstruct(x), rec_a)
        out.append(TrialPairs(pairs, idx, t_idx, res.norm.detach().cpu()))
    ctx.extra[key] = out
    return out, info
