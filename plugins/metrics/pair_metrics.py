"""MS-SSIM and L2 distance over the image pairs of an attack (003 §5.4.3, Fig. 5.7; SPEC §3).

For each pair type (see :mod:`latentbench.plugins.metrics._image_pairs`) the result holds ``<pair>_mean`` (mean
over trials of the per-trial mean), ``<pair>_std`` (population std over trials of those means, the
spread the thesis reports across trials) and the per-sample values of every trial
(trials * images_per_trial) in ``per_sample[<pair>]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from latentbench.metric import Metric, MetricContext, MetricResult
from latentbench.plugins.metrics._image_pairs import PairsConfig, attack_pairs
from latentbench.plugins.metrics._msssim import ms_ssim_pairs, setup_for_size


@dataclass
class MSSSIMConfig(PairsConfig):
    pass


@dataclass
class L2DistanceConfig(PairsConfig):
    pass


def _summarise(per_trial: dict[str, list[np.ndarray]]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    values, per_sample = {}, {}
    for pair, trials in per_trial.items():
        means = np.array([t.mean() for t in trials])
        values[f"{pair}_mean"] = float(means.mean())
        values[f"{pair}_std"] = float(means.std())
        per_sample[pair] = np.concatenate(trials)
    return values, per_sample


def _pairwise(ctx: MetricContext, cfg: PairsConfig, fn) -> tuple[dict, dict, dict, np.ndarray]:
    trials, info = attack_pairs(ctx, cfg)
    per_trial: dict[str, list[np.ndarray]] = {}
    for t in trials:
        for pair, (a, b) in t.pairs.items():
            with torch.no_grad():
                per_trial.setdefault(pair, []).append(fn(a, b).detach().cpu().double().numpy())
    values, per_sample = _summarise(per_trial)
    norms = torch.cat([t.adv_norm for t in trials]).double().numpy()
    values["adv_norm_mean"] = float(norms.mean())
    return values, per_sample, info, norms


class MSSSIM(Metric):
    """MS-SSIM (pytorch-msssim pieces, small-image configuration) between attack image pairs."""

    name = "ms_ssim"
    config_class = MSSSIMConfig
    needs = frozenset({"model", "data", "attack"})
    source = "003 §5.4.3, §5.4.7"

    def compute(self, ctx: MetricContext) -> MetricResult:
        setup = setup_for_size(ctx.x.shape[-2], ctx.x.shape[-1])
        values, per_sample, info, norms = _pairwise(ctx, self.config, lambda a, b: ms_ssim_pairs(a, b, setup))
        per_sample["adv_norm"] = norms
        return MetricResult(values=values, per_sample=per_sample, config={"ms_ssim_setup": setup.to_dict()}, info=info)


def l2_pairs(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).reshape(a.shape[0], -1).norm(dim=1)


class L2Distance(Metric):
    """Per-pair L2 distance (whole image, [0, 1] pixel units) between attack image pairs."""

    name = "l2_distance"
    config_class = L2DistanceConfig
    needs = frozenset({"model", "data", "attack"})
    source = "003 Fig. 5.7"

    def compute(self, ctx: MetricContext) -> MetricResult:
        values, per_sample, info, norms = _pairwise(ctx, self.config, l2_pairs)
        per_sample["adv_norm"] = norms
        return MetricResult(values=values, per_sample=per_sample, info=info)
