"""The statistics layer behind reproduction verdicts (latentbench.stats), checked against closed forms,
hand enumerations and hand computations rather than against itself."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from latentbench import stats
from latentbench.experiment import Finding


def test_verdict_is_inconclusive_on_one_distribution_and_holds_on_a_shifted_pair():
    rng = np.random.default_rng(16)
    a, b = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    same = stats.paired_bootstrap(a, b, seed=0)
    assert same.low < 0 < same.high
    assert stats.verdict(same.low, same.high, +1) == "inconclusive"
    assert stats.verdict(same.low, same.high, -1) == "inconclusive"
    shifted = stats.paired_bootstrap(a + 0.5, b, seed=0)
    assert stats.verdict(shifted.low, shifted.high, +1) == "holds"
    # the opposite claim on the same data is refuted, not merely unsupported
    assert stats.verdict(shifted.low, shifted.high, -1) == "does not hold"


def test_verdict_calls_about_five_percent_of_null_pairs_conclusive():
    """Coverage: over many pairs from one distribution the 95% interval excludes 0 about 5% of the time."""
    rng = np.random.default_rng(3)
    conclusive = 0
    for k in range(200):
        e = stats.paired_bootstrap(rng.normal(size=80), rng.normal(size=80), n_boot=1000, seed=k)
        conclusive += stats.verdict(e.low, e.high, +1) != "inconclusive"
    assert 1 <= conclusive <= 25  # Binomial(200, 0.05): mean 10, 25 is beyond 4.5 sd


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_bootstrap_interval_matches_the_normal_closed_form(method):
    rng = np.random.default_rng(5)
    d = rng.normal(0.3, 2.0, 1000)
    e = stats.bootstrap_mean(d, method=method, seed=1)
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))  # mean +- 1.96 sd / sqrt(n)
    assert e.effect == pytest.approx(d.mean())
    assert e.low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert e.high == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert (e.seeds, e.images) == (1, 1000)


def test_bca_moves_the_interval_towards_the_long_tail():
    """For right-skewed data BCa's interval is shifted right of the percentile one (Efron 1987)."""
    d = np.random.default_rng(2).exponential(1.0, 60)
    bca = stats.bootstrap_mean(d, method="bca", seed=0)
    pct = stats.bootstrap_mean(d, method="percentile", seed=0)
    assert bca.high > pct.high and bca.low > pct.low


def test_pigeonhole_bootstrap_carries_seed_and_image_variance():
    """Crossed seeds x images: the half-width is 1.96 sqrt(var(seed means)/S + var(image means)/N)."""
    rng = np.random.default_rng(7)
    S, N = 25, 300
    d = 0.2 + rng.normal(0, 0.5, (S, 1)) + rng.normal(0, 1.0, (1, N)) + rng.normal(0, 0.05, (S, N))
    e = stats.bootstrap_mean(d, seed=0)
    v = d.mean(1).var(ddof=1) / S + d.mean(0).var(ddof=0) / N
    half = 1.96 * math.sqrt(v)
    assert (e.high - e.low) / 2 == pytest.approx(half, rel=0.12)
    assert e.effect == pytest.approx(d.mean()) and (e.seeds, e.images) == (S, N)
    # ignoring the seeds (one seed's images) would give a far narrower interval: the seed spread matters
    one = stats.bootstrap_mean(d.mean(0), seed=0)
    assert one.high - one.low < 0.8 * (e.high - e.low)


def test_three_seed_interval_covers_when_training_variance_dominates():
    """With 3 seeds whose spread dwarfs the image noise, a percentile bootstrap alone covers ~80%; the
    t-calibrated interval must cover close to 95% (true mean 0)."""
    rng = np.random.default_rng(11)
    covered = 0
    for k in range(200):
        d = rng.normal(0, 1.0, (3, 1)) + rng.normal(0, 1.0, (1, 60)) + rng.normal(0, 0.3, (3, 60))
        e = stats.bootstrap_mean(d, n_boot=1000, seed=k)
        covered += e.low < 0 < e.high
    assert covered >= 0.88 * 200


def test_permutation_p_value_matches_a_hand_enumeration():
    # a = {3, 4, 5}, b = {0, 1, 2}: of the C(6, 3) = 20 splits only the observed one and its mirror
    # reach |mean difference| = 3, so the exact two-sided p is 2 / 20
    assert stats.permutation_test([3, 4, 5], [0, 1, 2]) == pytest.approx(0.1)
    # a = {1, 2}, b = {0, 3}: observed difference 0; every split reaches |diff| >= 0
    assert stats.permutation_test([1, 2], [0, 3]) == pytest.approx(1.0)
    # a = {0, 10}, b = {1, 2, 3}: observed |5 - 2| = 3. Splits (C(5,2) = 10) with |diff| >= 3:
    # {0,10}: 3; {10,3}: 6.5 - 1 = 5.5; {10,2}: 6 - 4/3 = 4.67; {10,1}: 5.5 - 5/3 = 3.83; {0,1}: 5 - 0.5 = 4.5;
    # {0,2}: 14/3 - 1 = 3.67 -- six reach 3; {1,2}: 2.83, {0,3}: 2.83, {1,3}: 2, {2,3}: 1.17 do not
    assert stats.permutation_test([0, 10], [1, 2, 3]) == pytest.approx(6 / 10)


def test_monte_carlo_permutation_agrees_with_the_exact_one():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.8, 1, 7), rng.normal(0, 1, 7)  # C(14, 7) = 3432 splits
    exact = stats.permutation_test(a, b)
    mc = stats.permutation_test(a, b, n_perm=20000, max_exact=0, seed=3)
    assert mc == pytest.approx(exact, abs=0.01)


def test_spearman_matches_a_hand_computation():
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    # rank differences -1, 1, -1, 1, 0: rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    e = stats.spearman_test(x, y)
    assert e.effect == pytest.approx(0.8)
    t = 0.8 * math.sqrt(3 / (1 - 0.64))  # scipy's t approximation with n - 2 = 3 degrees of freedom
    assert e.p_value == pytest.approx(2 * sps.t.sf(t, 3))
    se = math.sqrt((1 + 0.64 / 2) / 2)  # Bonett-Wright with n - 3 = 2
    assert e.low == pytest.approx(math.tanh(math.atanh(0.8) - 1.959964 * se), abs=1e-6)
    assert e.high == pytest.approx(math.tanh(math.atanh(0.8) + 1.959964 * se), abs=1e-6)
    assert stats.verdict(e.low, e.high, +1) == "inconclusive"  # 5 points cannot show it
    assert math.isnan(stats.spearman_test([1, 2, 3, 4], [1, 1, 1, 1]).effect)


def test_welch_interval_matches_its_formula():
    a, b = np.array([10.0, 12.0, 11.0]), np.array([7.0, 9.0, 5.0, 7.0])
    e = stats.welch_interval(a, b)
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert e.effect == pytest.approx(11.0 - 7.0)
    assert (e.low, e.high) == pytest.approx((4.0 - half, 4.0 + half))


def test_verdict_rules_threshold_equivalence_and_nan():
    assert stats.verdict(0.12, 0.2, -1, threshold=0.1) == "does not hold"
    assert stats.verdict(0.02, 0.08, -1, threshold=0.1) == "holds"
    assert stats.verdict(0.05, 0.15, -1, threshold=0.1) == "inconclusive"
    assert stats.verdict(-0.01, 0.015, 0, margin=0.02) == "holds"
    assert stats.verdict(0.03, 0.05, 0, margin=0.02) == "does not hold"
    assert stats.verdict(0.01, 0.05, 0, margin=0.02) == "inconclusive"
    assert stats.verdict(math.nan, math.nan, +1) == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        stats.verdict(0, 1, 0)
    assert stats.all_of(["holds", "holds"]) == "holds"
    assert stats.all_of(["holds", "inconclusive"]) == "inconclusive"
    assert stats.all_of(["inconclusive", "does not hold"]) == "does not hold"


def test_finding_verdict_is_computed_from_its_interval():
    e = stats.Estimate("t", 0.3, 0.1, 0.5, 3, 100, 0.1)
    f = Finding.of("x rises", e, +1, "numbers")
    assert f.verdict == "holds" and f.holds is True
    g = Finding.of("x falls", e, -1)
    assert g.verdict == "does not hold" and g.holds is False
    both = Finding.every("x rises and falls", [f, g])
    assert both.verdict == "does not hold" and both.effect == 0.3 and both.direction == -1
    d = both.to_dict()
    assert d["verdict"] == "does not hold" and [p["verdict"] for p in d["parts"]] == ["holds", "does not hold"]
    assert "3 seeds x 100 images" in f.summary() and "p = 0.1" in f.summary()
