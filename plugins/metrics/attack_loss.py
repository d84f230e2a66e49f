"""The achieved objective of an attack on the evaluation images (Saseendran (thesis) Fig. 5.6;
docs/methods.md §3 ``attack_loss``).

The value is the attack's own ``AttackResult.objective`` in the attack's convention (e.g. the
latent distance to the target for ``latent_space``, lower = stronger attack; the decoder-output
change for ``max_damage``, higher = stronger). Targeted attacks get, per image, a target drawn
uniformly from the images of another class (generator derived from (ctx.seed, "attack_loss")).
Inputs are attacked in batches of ``batch_size``.

No leaderboard declaration: the value's direction depends on the attack (higher is more robust for
``latent_space``, lower for ``max_damage``), its scale on the attack's convention (a third-party
attack may report any sign), and latent-space values are not comparable across models (their latent
scales differ, as Saseendran (thesis) §5.4.3 notes), so it has no column, direction or range; the
generic checks (finite, ``*_std`` >= 0, ``adv_norm_mean`` within the budget) still apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import Metric, MetricConfig, MetricContext, MetricResult
from latentbench.seeding import component_generator
from latentbench.plugins.metrics._image_pairs import draw_targets
from latentbench.plugins.metrics._summary import as_numpy, describe


@dataclass
class AttackLossConfig(MetricConfig):
    batch_size: int = 256
    bins: int = 30

    def validate(self) -> None:
        if self.batch_size < 1 or self.bins < 0:
            raise ValueError(f"batch_size must be >= 1 and bins >= 0, got {self.batch_size}, {self.bins}")


class AttackLoss(Metric):
    """Mean, std and per-sample values of the attack objective on ctx.x."""

    name = "attack_loss"
    config_class = AttackLossConfig
    needs = frozenset({"model", "data", "attack"})
    source = "Saseendran (thesis) Fig. 5.6"
    leaderboard = ()  # see the module docstring

    def compute(self, ctx: MetricContext) -> MetricResult:
        attack = ctx.attack
        if attack is None:
            raise LatentBenchError("attack_loss reports an attack's objective: give it an attack in the run config")
        name = ctx.attack_name or getattr(attack, "name", "attack")
        targeted = bool(getattr(attack, "targeted", False))
        if targeted and ctx.y is None:
            raise LatentBenchError(f"attack '{name}' is targeted and needs labels to pick targets of another class")
        g = component_generator(ctx.seed, "attack_loss", name)
        objs, norms = [], []
        for i in range(0, ctx.x.shape[0], self.config.batch_size):
            x = ctx.x[i:i + self.config.batch_size]
            y = None if ctx.y is None else ctx.y[i:i + self.config.batch_size]
            if targeted:
                t_idx = draw_targets(ctx.y, torch.arange(i, i + x.shape[0]), g)
                res = attack(x, y=y, target=ctx.x[t_idx.to(ctx.x.device)])
            else:
                res = attack(x, y=y)
            objs.append(res.objective.detach().cpu())
            norms.append(res.norm.detach().cpu())
        obj = torch.cat(objs)
        values, info = describe("attack_loss", obj, self.config.bins)
        values["adv_norm_mean"] = float(torch.cat(norms).double().mean())
        info.update({"attack": name, "targeted": targeted, "n": int(obj.shape[0])})
        return MetricResult(values=values, per_sample={"attack_loss": as_numpy(obj),
                                                       "adv_norm": as_numpy(torch.cat(norms))}, info=info)
