"""MS-SSIM and L2 distance over the image pairs of an attack (Saseendran (thesis) §5.4.3, Fig. 5.7;
docs/methods.md §3 ``ms_ssim``, ``l2_distance``).

For each pair type (see :mod:`latentbench.plugins.metrics._image_pairs`) the result holds ``<pair>_mean`` (mean
over trials of the per-trial mean), ``<pair>_std`` (population std over trials of those means, the
spread the thesis reports across trials) and the per-sample values of every trial
(trials * images_per_trial) in ``per_sample[<pair>]``.

Leaderboard (``leaderboard`` declarations): the pair that tells whether the attack succeeded gets a
column. A targeted latent-space attack succeeds when x~_a looks like the target x_t, so a lower
MS-SSIM(x_t, x~_a) and a higher L2(x_t, x~_a) are more robust; a max-damage attack succeeds when
x~_a moves away from x~_r, so a higher MS-SSIM(x~_r, x~_a) and a lower L2(x~_r, x~_a) are more
robust (Saseendran (thesis) §5.4.3, Tables 5.1-5.3). The other pairs are range-checked only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from latentbench.metric import LeaderboardValue, Metric, MetricContext, MetricResult
from latentbench.plugins.metrics._image_pairs import TARGETED_PAIRS, UNTARGETED_PAIRS, PairsConfig, attack_pairs
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


#: the means a column shows: the pair each kind of attack is judged by
_JUDGED = ("target_vs_adv_recon_mean", "recon_vs_adv_recon_mean")


def _other_pair_values(high: float) -> tuple[LeaderboardValue, ...]:
    """Range-only declarations of every other pair summary: the score's range. adv_norm_mean (the
    perturbation's norm) is not a pair score; the leaderboard checks it against the cell's budget."""
    pairs = dict.fromkeys(TARGETED_PAIRS + UNTARGETED_PAIRS)
    return tuple(LeaderboardValue(f"{pair}_{stat}", range=(0.0, high)) for pair in pairs for stat in ("mean", "std")
                 if f"{pair}_{stat}" not in _JUDGED)


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
    source = "Saseendran (thesis) §5.4.3, §5.4.7"
    # MS-SSIM as computed here ReLUs every scale (pytorch-msssim), so every pair score lies in [0, 1];
    # directions: see the module docstring
    leaderboard = (
        LeaderboardValue("target_vs_adv_recon_mean", "MS-SSIM(x_t, x~_a)", better="lower", range=(0.0, 1.0)),
        LeaderboardValue("recon_vs_adv_recon_mean", "MS-SSIM(x~_r, x~_a)", better="higher", range=(0.0, 1.0)),
        *_other_pair_values(1.0),
    )

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
    source = "Saseendran (thesis) Fig. 5.7"
    # a distance: the directions are MS-SSIM's reversed (module docstring)
    leaderboard = (
        LeaderboardValue("target_vs_adv_recon_mean", "L2(x_t, x~_a)", better="higher", range=(0.0, math.inf)),
        LeaderboardValue("recon_vs_adv_recon_mean", "L2(x~_r, x~_a)", better="lower", range=(0.0, math.inf)),
        *_other_pair_values(math.inf),
    )

    def compute(self, ctx: MetricContext) -> MetricResult:
        values, per_sample, info, norms = _pairwise(ctx, self.config, l2_pairs)
        per_sample["adv_norm"] = norms
        return MetricResult(values=values, per_sample=per_sample, info=info)
