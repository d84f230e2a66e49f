"""Statistics behind reproduction verdicts: effect sizes with 95% intervals, p-values, and one verdict rule.

A finding of ``latentbench reproduce`` is a hypothesis about an effect (a difference of model scores,
a rank correlation, a distance from a threshold). Its verdict is computed from the effect's 95%
interval by :func:`verdict`, never typed:

- **holds**: the interval lies entirely on the side of the threshold the hypothesis predicts;
- **does not hold**: the interval lies entirely on the opposite side;
- **inconclusive**: the interval contains the threshold (no effect cannot be ruled out).

Equivalence hypotheses ("within 10%") use a margin instead: they hold when the interval lies inside
(-margin, margin) and do not hold when it lies entirely outside it.

The estimators, all with a fixed seed so a verdict is reproducible:

- :func:`paired_bootstrap` -- difference of means of paired scores. Scores of one seed (1-D, images)
  get the BCa interval (Efron, "Better bootstrap confidence intervals", 1987); scores of several
  independently trained seeds (2-D, seeds x images, the same images for every seed) get the
  pigeonhole bootstrap of a crossed design (Owen, "The pigeonhole bootstrap", 2007): seeds and images
  are resampled independently, so the interval carries training variance as well as image sampling.
  With few seeds a bootstrap of seeds underestimates their variance by (S - 1) / S, so the seed
  effects are scaled by sqrt(S / (S - 1)) before resampling, and the interval is widened by
  t_df / z at the Satterthwaite degrees of freedom of the seed and image variance components
  (with 3 seeds and training variance dominating, plain percentiles cover only about 80%).
- :func:`permutation_test` -- two-sample test of per-seed means (labels permuted over seeds), exact
  when the number of arrangements is small. With 3 seeds a side the smallest two-sided p is 0.1: it is
  reported beside the interval, so a reader sees how far seed-level evidence goes.
- :func:`spearman_test` -- Spearman's rho with scipy's p-value and a Fisher-z interval with the
  Bonett-Wright variance (1 + rho^2 / 2) / (n - 3) (Bonett & Wright, "Sample size requirements for
  estimating Pearson, Kendall and Spearman correlations", 2000).
- :func:`welch_interval` -- difference of means of two small samples of per-seed scalars (e.g. an
  FID per trained model), Welch's t interval.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
LEVEL = 0.95
N_BOOT = 10_000
#: exact permutation enumeration up to this many arrangements; Monte Carlo above
MAX_EXACT = 20_000


@dataclass(frozen=True)
class Estimate:
    """An effect size with its 95% interval, the test that produced it, and the data it rests on."""

    test: str
    effect: float
    low: float
    high: float
    seeds: int
    images: int
    p_value: Optional[float] = None


def verdict(low: float, high: float, direction: int, threshold: float = 0.0, margin: Optional[float] = None) -> str:
    """The verdict of a hypothesis from its effect's 95% interval [low, high].

    ``direction`` +1: the hypothesis predicts effect > threshold; -1: effect < threshold; 0: an
    equivalence, |effect| < ``margin``. A nan bound (the effect could not be estimated) is inconclusive.
    """
    if not (low <= high):  # also catches nan
        return INCONCLUSIVE
    if direction == 0:
        if margin is None or margin <= 0:
            raise ValueError("an equivalence hypothesis (direction 0) needs a positive margin")
        if -margin < low and high < margin:
            return HOLDS
        return FAILS if (low >= margin or high <= -margin) else INCONCLUSIVE
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1, -1 or 0, got {direction!r}")
    lo, hi = direction * (low - threshold), direction * (high - threshold)
    lo, hi = min(lo, hi), max(lo, hi)
    if lo > 0:
        return HOLDS
    return FAILS if hi < 0 else INCONCLUSIVE


def all_of(verdicts: Iterable[str]) -> str:
    """Verdict of "every part holds" (an intersection-union test: no multiplicity correction is needed
    because every part must reject on its own): holds if all hold, does not hold if any does not."""
    vs = list(verdicts)
    if not vs:
        return INCONCLUSIVE
    if all(v == HOLDS for v in vs):
        return HOLDS
    return FAILS if any(v == FAILS for v in vs) else INCONCLUSIVE


def _as_2d(d) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"scores must be (images,) or (seeds, images), got shape {np.shape(d)}")
    return d


#: resamples drawn per block, so that (block, images) count arrays stay small whatever the image count
_BLOCK = 500


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(size, n) multiplicities of n draws with replacement from n items, per resample."""
    idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(float)


def _bca(x: np.ndarray, boot: np.ndarray, level: float) -> tuple[float, float]:
    """BCa interval of the mean of 1-D ``x`` from its bootstrap means ``boot``."""
    from scipy.stats import norm

    est = x.mean()
    prop = np.mean(boot < est) + 0.5 * np.mean(boot == est)
    z0 = norm.ppf(np.clip(prop, 1e-12, 1 - 1e-12))
    jack = (x.sum() - x) / (len(x) - 1)  # leave-one-out means
    dev = jack.mean() - jack
    denom = 6.0 * (dev ** 2).sum() ** 1.5
    a = (dev ** 3).sum() / denom if denom > 0 else 0.0
    qs = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = norm.ppf(alpha)
        qs.append(norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    lo, hi = np.quantile(boot, qs)
    return float(lo), float(hi)


def bootstrap_mean(d, n_boot: int = N_BOOT, seed: int = 0, method: str = "bca", level: float = LEVEL) -> Estimate:
    """Mean of per-image effects ``d`` ((images,) or (seeds, images)) with a bootstrap interval.

    One seed: BCa (``method="bca"``) or percentile interval over images. Several seeds: pigeonhole
    bootstrap (seeds and images resampled independently, seed effects variance-corrected), percentile.
    """
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile', got {method!r}")
    d = _as_2d(d)
    S, N = d.shape
    est = float(d.mean())
    rng = np.random.default_rng(seed)
    if S == 1:
        x = d[0]
        if N < 2 or np.ptp(x) == 0:
            return Estimate(f"bootstrap over images ({method})", est, est, est, 1, N)
        boot = np.concatenate([_counts(rng, N, min(_BLOCK, n_boot - b)) @ x / N for b in range(0, n_boot, _BLOCK)])
        if method == "bca":
            lo, hi = _bca(x, boot, level)
        else:
            lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        return Estimate(f"paired bootstrap over images ({method.upper() if method == 'bca' else method}, "
                        f"{n_boot} resamples)", est, float(lo), float(hi), 1, N)
    # crossed design: inflate the seed effects so that resampling S of them has their unbiased variance
    row = d.mean(axis=1, keepdims=True)
    d = d - row + (est + (row - est) * math.sqrt(S / (S - 1)))
    boot = []
    for b in range(0, n_boot, _BLOCK):
        m = min(_BLOCK, n_boot - b)
        ws, wi = _counts(rng, S, m), _counts(rng, N, m)  # seed and image multiplicities per resample
        boot.append(np.einsum("bs,si,bi->b", ws, d, wi) / (S * N))
    boot = np.concatenate(boot)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    k = _small_seed_factor(d, level)
    return Estimate(f"pigeonhole bootstrap over {S} seeds x {N} paired images (percentile, {n_boot} resamples, "
                    f"t-calibrated x{k:.2f})", est, float(est + k * (lo - est)), float(est + k * (hi - est)), S, N)


def _small_seed_factor(d: np.ndarray, level: float) -> float:
    """How much wider a t interval is than a normal one at the Satterthwaite degrees of freedom of the
    crossed design's variance, var(seed means) / S (S - 1 df) + var(image means) / N (N - 1 df). The
    bootstrap gives the variance; with 3 seeds its normal-like tails cover about 80% where training
    variance dominates (tests/harness/test_stats.py), so the interval is scaled by t_df / z."""
    from scipy.stats import norm, t

    S, N = d.shape
    vs, vi = d.mean(1).var(ddof=1) / S, d.mean(0).var(ddof=1) / N
    if vs + vi <= 0:
        return 1.0
    df = (vs + vi) ** 2 / (vs ** 2 / (S - 1) + (vi ** 2 / (N - 1) if N > 1 else 0.0))
    q = (1 + level) / 2
    return float(t.ppf(q, df) / norm.ppf(q))


def paired_bootstrap(a, b, n_boot: int = N_BOOT, seed: int = 0, method: str = "bca", level: float = LEVEL,
                     with_permutation: bool = True) -> Estimate:
    """Difference of means mean(a) - mean(b) of paired scores, (images,) or (seeds, images) each, with
    its bootstrap interval (:func:`bootstrap_mean`) and, for several seeds, the permutation p-value
    of the per-seed means (:func:`permutation_test`)."""
    a, b = _as_2d(a), _as_2d(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired scores need the same images: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"paired scores need the same number of seeds: {a.shape[0]} vs {b.shape[0]}")
    est = bootstrap_mean(a - b, n_boot, seed, method, level)
    if with_permutation and a.shape[0] > 1:
        p = permutation_test(a.mean(axis=1), b.mean(axis=1), seed=seed)
        est = Estimate(est.test + "; permutation test of per-seed means", est.effect, est.low, est.high,
                       est.seeds, est.images, p)
    return est


def permutation_test(a: Sequence[float], b: Sequence[float], n_perm: int = N_BOOT, seed: int = 0,
                     max_exact: int = MAX_EXACT) -> float:
    """Two-sided p-value of mean(a) - mean(b) under exchangeable labels. Exact (every split of the
    pooled values enumerated) when there are at most ``max_exact`` splits, else Monte Carlo with the
    (count + 1) / (n + 1) correction."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pooled = np.concatenate([a, b])
    n, na = len(pooled), len(a)
    obs = abs(a.mean() - b.mean())
    tol = 1e-12 * max(1.0, obs)
    if math.comb(n, na) <= max_exact:
        idx = np.array(list(itertools.combinations(range(n), na)))
        mask = np.zeros((len(idx), n), dtype=bool)
        mask[np.arange(len(idx))[:, None], idx] = True
        ma = (mask * pooled).sum(1) / na
        mb = (~mask * pooled).sum(1) / (n - na)
        return float(np.mean(np.abs(ma - mb) >= obs - tol))
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_perm, n)), axis=1)
    diffs = np.abs(pooled[perms[:, :na]].mean(1) - pooled[perms[:, na:]].mean(1))
    return float((np.sum(diffs >= obs - tol) + 1) / (n_perm + 1))


def spearman_test(x: Sequence[float], y: Sequence[float], level: float = LEVEL, seeds: int = 0,
                  images: int = 0) -> Estimate:
    """Spearman's rho of (x, y) pairs, scipy's two-sided p-value, and a Fisher-z interval with the
    Bonett-Wright variance. nan (inconclusive) when either variable is constant or n < 4. ``seeds`` and
    ``images``: what each point rests on, for the record."""
    from scipy.stats import norm, spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    test = f"Spearman rank correlation over {n} points (Fisher-z interval, Bonett-Wright variance)"
    if n < 4 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return Estimate(test, math.nan, math.nan, math.nan, seeds, images, None)
    res = spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if abs(rho) >= 1.0:
        return Estimate(test, rho, rho, rho, seeds, images, p)
    se = math.sqrt((1 + rho ** 2 / 2) / (n - 3))
    z, q = math.atanh(rho), norm.ppf((1 + level) / 2)
    return Estimate(test, rho, math.tanh(z - q * se), math.tanh(z + q * se), seeds, images, p)


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate:
    """mean(a) - mean(b) of two small independent samples (e.g. one scalar per trained seed) with
    Welch's t interval and p-value; nan when either sample has fewer than two values."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    test = f"Welch t over seeds ({len(a)} vs {len(b)})"
    finite = np.isfinite(a).all() and np.isfinite(b).all()
    est = float(a.mean() - b.mean()) if len(a) and len(b) and finite else math.nan
    if len(a) < 2 or len(b) < 2 or not finite:
        return Estimate(test, est, math.nan, math.nan, min(len(a), len(b)), 0, None)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return Estimate(test, est, est, est, min(len(a), len(b)), 0, None)
    res = ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(level)
    return Estimate(test, est, float(ci.low), float(ci.high), min(len(a), len(b)), 0, float(res.pvalue))
