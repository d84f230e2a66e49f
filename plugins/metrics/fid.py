"""Frechet distance between features of generated and held-out real images (Saseendran (thesis) §2.2.5;
docs/methods.md §3 ``fid``, §5).

FID = ||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g S_r)^{1/2}), computed by
``cleanfid.fid.frechet_distance`` on the feature means and covariances (float64, unbiased
covariance as clean-fid's own ``np.cov(rowvar=False)``).

Feature extractor (its name goes into ``info["feature_extractor"]`` and the config; values from
different extractors are never comparable):

- ``inception``: clean-fid's TorchScript Inception (``inception-2015-12-05.pt``) loaded from a local
  path only -- ``inception_weights`` in the config or the ``LATENTBENCH_INCEPTION_WEIGHTS`` environment
  variable (the file or its folder); nothing is ever downloaded. Images are resized to 299x299 with
  torch's bicubic antialiased interpolation (clean-fid resizes with PIL bicubic; close, not
  bit-identical), grey images are repeated to 3 channels, scaled to [0, 255].
- ``domain``: the penultimate layer of the harness's per-dataset classifier (ctx.classifier(), or
  one trained from ctx.train_x/train_y through latentbench.plugins.metrics._domain_classifier).
- ``auto`` (default): Inception when its weights are found, else the domain extractor.

Generated images: ``model.sample(n_samples, generator=ctx.generator)`` in batches; real images: ctx.x
(the held-out split the runner evaluates on). Default 10,000 samples (Saseendran (thesis) §5.4.7).

Leaderboard: lower is better (generated images closer to real ones), >= 0 (a squared distance
plus the trace term of two PSD matrices), one column per feature extractor, since FIDs from
different extractors measure distances in different feature spaces.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult

ENV_INCEPTION = "LATENTBENCH_INCEPTION_WEIGHTS"
INCEPTION_FILE = "inception-2015-12-05.pt"
EXTRACTORS = ("auto", "inception", "domain")


@dataclass
class FIDConfig(MetricConfig):
    n_samples: int = 10000
    batch_size: int = 500
    feature_extractor: str = "auto"
    #: path of clean-fid's inception-2015-12-05.pt (or its folder); None reads LATENTBENCH_INCEPTION_WEIGHTS
    inception_weights: Optional[str] = None

    def validate(self) -> None:
        if self.n_samples < 2 or self.batch_size < 1:
            raise ValueError(f"n_samples must be >= 2 and batch_size >= 1, got {self.n_samples}, {self.batch_size}")
        if self.feature_extractor not in EXTRACTORS:
            raise ValueError(f"feature_extractor must be one of {', '.join(EXTRACTORS)}, got '{self.feature_extractor}'")


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise LatentBenchError(f"FID needs at least two feature vectors (n, k); got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """clean-fid's Frechet distance between the Gaussians fitted to two feature sets."""
    from cleanfid.fid import frechet_distance

    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    with warnings.catch_warnings():
        # clean-fid passes scipy's deprecated `disp` argument to sqrtm; harmless, not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(frechet_distance(mu1, s1, mu2, s2))


def inception_weights_path(configured: Optional[str]) -> Optional[Path]:
    raw = configured or os.environ.get(ENV_INCEPTION)
    if not raw:
        return None
    p = Path(raw).expanduser()
    if p.is_dir():
        p = p / INCEPTION_FILE
    return p if p.is_file() else None


class InceptionFeatures:
    """clean-fid's Inception pool features (2048) from local weights."""

    def __init__(self, path: Path, device: torch.device):
        from cleanfid.inception_torchscript import InceptionV3W

        self.net = InceptionV3W(str(path.parent), download=False, resize_inside=False).to(device).eval()
        self.name = f"inception-v3-clean-fid ({path.name})"

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x.float(), size=(299, 299), mode="bicubic", align_corners=False, antialias=True)
        return self.net(x.clamp(0, 1) * 255.0)


def _extract(fn: Callable[[Tensor], Tensor], batches) -> np.ndarray:
    return torch.cat([fn(b).detach().reshape(b.shape[0], -1).double().cpu() for b in batches]).numpy()


class FID(Metric):
    """FID of model samples against held-out images, with the feature extractor named in the result."""

    name = "fid"
    config_class = FIDConfig
    needs = frozenset({"model", "data", "classifier"})
    source = "Saseendran (thesis) §2.2.5, §5.4.7"
    requires_generative = True
    leaderboard = (LeaderboardValue("fid", "FID", better="lower", range=(0.0, math.inf), split_by="feature_extractor"),)

    def _extractor(self, ctx: MetricContext):
        cfg = self.config
        path = inception_weights_path(cfg.inception_weights)
        if cfg.feature_extractor == "inception" and path is None:
            raise LatentBenchError(
                f"feature_extractor 'inception' needs local weights: set inception_weights (or ${ENV_INCEPTION}) to "
                f"the path of {INCEPTION_FILE}; LatentBench never downloads them. Or use feature_extractor 'domain'")
        if cfg.feature_extractor in ("auto", "inception") and path is not None:
            return InceptionFeatures(path, ctx.device)
        if ctx.classifier is not None:
            net = ctx.classifier()
            if not hasattr(net, "features"):
                raise LatentBenchError("the harness classifier has no 'features' method to use as FID features")
            from latentbench.plugins.metrics._domain_classifier import DomainFeatureExtractor

            return DomainFeatureExtractor(net, getattr(net, "latentbench_name", type(net).__name__))
        if ctx.train_x is not None and ctx.train_y is not None and ctx.num_classes:
            from latentbench.data import Split
            from latentbench.plugins.metrics._domain_classifier import domain_feature_extractor

            return domain_feature_extractor(ctx.dataset, Split(ctx.train_x, ctx.train_y), ctx.num_classes,
                                            ctx.cache_dir, ctx.seed, ctx.device)
        raise LatentBenchError("fid found no feature extractor: no Inception weights and no domain classifier "
                               f"(set ${ENV_INCEPTION} or run through the harness so ctx.classifier is given)")

    def compute(self, ctx: MetricContext) -> MetricResult:
        cfg = self.config
        model = ctx.model
        model.eval()
        extractor = self._extractor(ctx)
        bs = cfg.batch_size
        with torch.no_grad():
            gen = []
            for i in range(0, cfg.n_samples, bs):
                gen.append(model.sample(min(bs, cfg.n_samples - i), generator=ctx.generator).to(ctx.device))
            f_gen = _extract(extractor, gen)
            f_real = _extract(extractor, [ctx.x[i:i + bs].to(ctx.device) for i in range(0, ctx.x.shape[0], bs)])
        value = frechet_from_features(f_gen, f_real)
        info = {"feature_extractor": extractor.name, "n_generated": int(f_gen.shape[0]), "n_real": int(f_real.shape[0]),
                "feature_dim": int(f_gen.shape[1])}
        return MetricResult(values={"fid": value}, config={"feature_extractor_name": extractor.name}, info=info)
