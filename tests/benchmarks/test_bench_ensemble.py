"""The headline ensemble of ``robust_accuracy`` with AutoAttack's schedule (each attack only on images
the previous ones left robust, ``early_stop: true``) against every attack on every clean-correct image
(``early_stop: false``): timed interleaved over several rounds, each run in a fresh cache folder (the
resume state would otherwise make repeated runs free). The ratio of medians is in ``extra_info`` and
printed; the robust accuracies must agree within binomial noise.

Run: python -m pytest tests/benchmarks/test_bench_ensemble.py --benchmark-only -s
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.metric import MetricContext
from latentbench.plugins.metrics.robust_accuracy import RobustAccuracy
from latentbench.plugins.models.reference import IdentityAutoencoder, IdentityConfig

BUDGETS = [0.5, 1.0]
#: the protocol's attacks at reduced length (the defaults would make a round take minutes on CPU)
SETTINGS = dict(budgets=BUDGETS, ce_steps=20, ce_restarts=2, latent_targets=3, latent_steps=30, max_damage_steps=30,
                max_damage_restarts=1, random_queries=150, check_subset=20, batch_size=256)
ROUNDS = 5


@pytest.fixture(scope="module")
def setup():
    from sklearn.datasets import load_digits

    X, Y = load_digits(return_X_y=True)
    x = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(Y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, ev = perm[:800], perm[800:1000]
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(clf.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(clf(x[tr]), y[tr]).backward()
        opt.step()
    clf.requires_grad_(False)
    model = IdentityAutoencoder(IdentityConfig(input_shape=(1, 8, 8))).eval()
    return model, clf, (x[tr], y[tr]), (x[ev], y[ev])


def _run(setup, early_stop: bool, cache_dir):
    model, clf, train, (x, y) = setup
    ctx = MetricContext(model=model, x=x, y=y, dataset="digits", device=torch.device("cpu"),
                        generator=torch.Generator().manual_seed(0), seed=0, train_x=train[0], train_y=train[1],
                        num_classes=10, classifier=lambda: clf, cache_dir=cache_dir)
    return RobustAccuracy(early_stop=early_stop, **SETTINGS)(ctx)


def test_bench_ensemble_early_stop_vs_every_attack_on_every_image(benchmark, setup, tmp_path):
    fresh = (tmp_path / f"run{i}" for i in itertools.count())
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    for r in range(ROUNDS):  # interleaved, alternating which goes first
        for early_stop in ((True, False) if r % 2 == 0 else (False, True)):
            t0 = time.perf_counter()
            results[early_stop] = _run(setup, early_stop, next(fresh))
            times[early_stop].append(time.perf_counter() - t0)
    benchmark.pedantic(_run, setup=lambda: ((setup, True, next(fresh)), {}), rounds=1, iterations=1)
    ratio = statistics.median(times[False]) / statistics.median(times[True])
    benchmark.extra_info["every_attack_over_early_stop"] = ratio
    benchmark.extra_info["median_s"] = {"early_stop": statistics.median(times[True]),
                                        "every_attack": statistics.median(times[False])}
    n = len(setup[3][0])
    a, b = results[True].values, results[False].values
    first = {e: {k: a[f"broken_first_by_{k}@{e:g}"] for k in ("reconstruction_ce", "latent_space", "max_damage",
                                                               "random_search")} for e in BUDGETS}
    print(f"\nrobust_accuracy ensemble on {n} digits: every attack on every image takes {ratio:.2f}x the time of "
          f"early stopping (medians {statistics.median(times[False]):.2f}s vs {statistics.median(times[True]):.2f}s "
          f"over {ROUNDS} interleaved rounds); broken first by: {first}")
    for e in BUDGETS:
        k = f"robust_accuracy@{e:g}"
        p = a[k]
        assert 0.0 < a["clean_accuracy"] and p < a["clean_accuracy"]  # the attacks break images: work to skip
        assert abs(a[k] - b[k]) <= 3 * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1.0 / n, (e, a[k], b[k])
    assert ratio > 1.0
