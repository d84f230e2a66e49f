"""Frechet distance between features of generated and held-out real images (Saseendran (thesis) §2.2.5;
docs/methods.md §3 ``fid``, §5).

FID = ||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g S_r)^{1/2}) on the feature means and unbiased
covariances (float64, ``np.cov(rowvar=False)`` as clean-fid). The trace of the square root is
computed as sum_i sqrt(lambda_i(S_r^{1/2} S_g S_r^{1/2})) with symmetric eigendecompositions: S_g S_r
has the eigenvalues of that PSD matrix, so the two traces are equal, and the symmetric form stays
exact when the covariances are singular, provided eigenvalues at round-off level (|lambda| <=
k eps lambda_max) are set to 0 before the square root (else each null direction adds sqrt(1e-16) ~
1e-8: 1e-6 in total on digits).
``cleanfid.fid.frechet_distance`` instead takes ``scipy.linalg.sqrtm`` of the non-symmetric product
S_g S_r, which warns "Matrix is singular" (``LinAlgWarning``) and may be inaccurate whenever a
covariance is rank-deficient. That happens on every digits cell: the domain extractor's 128 ReLU
features include about 50 that are zero on every digit, so the real covariance has rank 78 (digits-v1)
or 73 (digits-v2), below the feature dimension, however many images. Where both are well
conditioned the two computations agree to round-off (tests/plugins/metrics/test_fid_domain.py).

Interval: ``bootstrap`` replicates (default 200) resample the generated and the real features
independently, with replacement, and recompute FID. Known bias: FID is biased upward at finite n
(roughly in proportion to feature dimension / n), and a replicate, with about 37% of its rows
duplicates, has fewer distinct points than the sample, so the replicates are biased upward more: on
digits-v1's null (1,000 vs 300 real images) the plain 2.5-97.5% percentiles were [0.60, 2.23] around
an estimate of 0.49. So the interval reported is the bias-corrected percentile interval: both
percentiles minus ``fid_bootstrap_bias`` = mean(replicates) - fid, clipped at 0, as ``fid_ci_low``
/ ``fid_ci_high``. It shows the sampling spread around the estimate; the estimate itself keeps FID's
finite-n upward bias, which the null FID of two real samples of the protocol's sizes shows and KID
avoids.

KID (Binkowski et al. 2018, the kernel clean-fid's ``kernel_distance`` uses, k(a, b) = (a.b / k + 1)^3
over k features): the unbiased estimate of the squared MMD, unbiased at every n, so it is the number
to compare when the real set is small. Computed on all generated and real features together when
both sets have at most ``kid_subset_size`` rows (the unbiased two-sample MMD^2 with unequal sizes);
otherwise, as clean-fid, the mean over ``kid_subsets`` pairs of random subsets of that size, drawn
from a generator derived from the run's seed (clean-fid draws from numpy's global state, so its KID
is not reproducible). ``kid`` in the config: ``auto`` (default) reports KID when the real set has
at most ``kid_auto_below`` images, ``true`` always, ``false`` never.

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
different extractors measure distances in different feature spaces. KID is an unbiased estimate of
a non-negative number, so it can fall below 0 by sampling error; its column is lower-first too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult
from latentbench.seeding import derive_seed

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
    #: bootstrap replicates of the FID interval (0: no interval)
    bootstrap: int = 200
    #: "auto" (KID when the real set has at most kid_auto_below images), True or False
    kid: Any = "auto"
    kid_auto_below: int = 5000
    #: KID on all rows up to this many per set, else the mean over kid_subsets subsets of this size
    kid_subset_size: int = 1000
    kid_subsets: int = 100

    def validate(self) -> None:
        if self.n_samples < 2 or self.batch_size < 1:
            raise ValueError(f"n_samples must be >= 2 and batch_size >= 1, got {self.n_samples}, {self.batch_size}")
        if self.feature_extractor not in EXTRACTORS:
            raise ValueError(f"feature_extractor must be one of {', '.join(EXTRACTORS)}, got '{self.feature_extractor}'")
        if self.bootstrap < 0 or 0 < self.bootstrap < 20:
            raise ValueError(f"bootstrap must be 0 (no interval) or >= 20 replicates (a 95% interval needs its 2.5% "
                             f"tails), got {self.bootstrap}")
        if self.kid not in ("auto", True, False):
            raise ValueError(f"kid must be 'auto', true or false, got {self.kid!r}")
        if self.kid_subset_size < 2 or self.kid_subsets < 1 or self.kid_auto_below < 0:
            raise ValueError("kid_subset_size must be >= 2, kid_subsets >= 1 and kid_auto_below >= 0")


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise LatentBenchError(f"FID needs at least two feature vectors (n, k); got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix with round-off zeroed: |w| <= k * eps * max|w| is 0 up to
    round-off, and its square root (~1e-8 for 1e-16) would otherwise add noise per null direction."""
    tol = len(w) * np.finfo(np.float64).eps * max(float(np.abs(w).max(initial=0.0)), np.finfo(np.float64).tiny)
    return np.where(w > tol, w, 0.0)


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (round-off eigenvalues set to 0)."""
    w, q = np.linalg.eigh(m)
    return (q * np.sqrt(_psd_eigenvalues(w))) @ q.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2) - 2 tr (S1 S2)^{1/2}, the last term as sum sqrt eig(S2^1/2 S1 S2^1/2)
    (exact for singular covariances; see the module docstring)."""
    r = psd_sqrt(s2)
    tr_sqrt = float(np.sqrt(_psd_eigenvalues(np.linalg.eigvalsh(r @ s1 @ r))).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets."""
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    return frechet_distance(mu1, s1, mu2, s2)


def fid_bootstrap(a: np.ndarray, b: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """FID of ``replicates`` pairs of bootstrap resamples, a and b resampled independently with replacement."""
    out = np.empty(replicates)
    for i in range(replicates):
        out[i] = frechet_from_features(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
    return out


def bootstrap_interval(estimate: float, replicates: np.ndarray) -> dict[str, float]:
    """95% percentile interval of the replicates shifted by their bias b = mean - estimate, clipped at 0."""
    bias = float(replicates.mean() - estimate)
    lo, hi = np.percentile(replicates, [2.5, 97.5]) - bias
    return {"fid_ci_low": max(float(lo), 0.0), "fid_ci_high": max(float(hi), 0.0), "fid_bootstrap_bias": bias}


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of the cubic polynomial kernel (a.b / k + 1)^3, k features; sizes may differ."""
    k = x.shape[1]
    kxx = (x @ x.T / k + 1) ** 3
    kyy = (y @ y.T / k + 1) ** 3
    kxy = (x @ y.T / k + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subset_size: int = 1000, subsets: int = 100,
                              rng: np.random.Generator | None = None) -> float:
    """KID: the unbiased MMD^2 on all rows when both sets fit in ``subset_size``, else the mean over
    ``subsets`` pairs of random subsets of min(subset_size, len(a), len(b)) rows (clean-fid's scheme)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if min(len(a), len(b)) < 2:
        raise LatentBenchError(f"KID needs at least two feature vectors per set; got {len(a)} and {len(b)}")
    if len(a) <= subset_size and len(b) <= subset_size:
        return _mmd2_unbiased(a, b)
    rng = rng or np.random.default_rng(0)
    m = min(subset_size, len(a), len(b))
    return float(np.mean([_mmd2_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
                          for _ in range(subsets)]))


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
    leaderboard = (LeaderboardValue("fid", "FID", better="lower", range=(0.0, math.inf), split_by="feature_extractor"),
                   LeaderboardValue("fid_ci_low", range=(0.0, math.inf)),
                   LeaderboardValue("fid_ci_high", range=(0.0, math.inf)),
                   LeaderboardValue("kid", "KID", better="lower", split_by="feature_extractor"))

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
        values = {"fid": frechet_from_features(f_gen, f_real)}
        info = {"feature_extractor": extractor.name, "n_generated": int(f_gen.shape[0]), "n_real": int(f_real.shape[0]),
                "feature_dim": int(f_gen.shape[1]),
                "real_covariance_rank": int(np.linalg.matrix_rank(feature_statistics(f_real)[1], hermitian=True))}
        rng = np.random.default_rng(derive_seed(ctx.seed, "fid"))
        if cfg.bootstrap:
            values.update(bootstrap_interval(values["fid"], fid_bootstrap(f_gen, f_real, cfg.bootstrap, rng)))
            info["fid_interval"] = (f"95% bias-corrected percentile bootstrap, {cfg.bootstrap} replicates resampling "
                                    "generated and real features independently; the replicates' upward bias "
                                    "(fid_bootstrap_bias) is subtracted; the interval shows sampling spread, the "
                                    "estimate keeps FID's finite-n upward bias (compare the null FID, or KID)")
        if cfg.kid is True or (cfg.kid == "auto" and f_real.shape[0] <= cfg.kid_auto_below):
            values["kid"] = kernel_inception_distance(f_gen, f_real, cfg.kid_subset_size, cfg.kid_subsets, rng)
        return MetricResult(values=values, config={"feature_extractor_name": extractor.name}, info=info)
