"""Class radius vs the exact distance to linear decision boundaries."""

import math

import numpy as np
import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from tests.plugins.metrics.metric_toy_models import LinearDecoderModel
from latentbench.plugins.metrics.class_radius import ClassRadius


def exact_linear_radius(A, off, z):
    """Distance from z to the complement of its cell for logits A z + off: min_k -f_k / ||a_k - a_y||."""
    logits = z @ A.T + off
    y = logits.argmax(1)
    f = logits - logits.gather(1, y[:, None])
    w = A[None] - A[y][:, None]
    dist = (-f) / w.norm(dim=2)
    dist[torch.arange(len(z)), y] = math.inf
    return dist.min(1).values


def ctx_for(model, seed, dataset="toy", num_classes=None):
    return MetricContext(model=model, x=torch.zeros(1), y=None, dataset=dataset, device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(seed), seed=0, num_classes=num_classes)


def same_z(n, d, seed):
    # the metric draws z first from ctx.generator (documented), so the same seed gives the same z
    return torch.randn((n, d), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("K", [2, 4])
def test_linear_decoder_and_classifier_match_exact_expectation(K):
    g = torch.Generator().manual_seed(K)
    d, D = 5, 12
    W, b = torch.randn(D, d, generator=g), 0.1 * torch.randn(D, generator=g)
    V, c = torch.randn(K, D, generator=g), torch.randn(K, generator=g)
    model = LinearDecoderModel(W, b, input_shape=(1, 3, 4))
    clf = lambda x: x.reshape(x.shape[0], -1) @ V.T + c  # noqa: E731
    n = 300
    res = ClassRadius(classifier=clf, n_samples=n, search_radius=100.0, batch_size=128)(ctx_for(model, 11))
    exact = exact_linear_radius((V @ W).double(), (V @ b + c).double(), same_z(n, d, 11).double())
    assert res.values["class_radius"] == pytest.approx(float(exact.mean()), rel=0.02)
    # per sample too: the gradient attack is exact on affine logits, the bisection then tightens to 1e-5
    np.testing.assert_allclose(res.per_sample["radius"], exact.numpy(), rtol=1e-3)
    assert res.values["censored_fraction"] == 0.0
    assert res.values["class_radius_se"] == pytest.approx(float(exact.std()) / math.sqrt(n), rel=0.05)


def test_random_directions_alone_bound_the_radius_from_above():
    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(6, 3, generator=g), torch.zeros(6)
    V, c = torch.randn(2, 6, generator=g), torch.zeros(2)
    model = LinearDecoderModel(W, b, input_shape=(6,))
    clf = lambda x: x @ V.T + c  # noqa: E731
    res = ClassRadius(classifier=clf, n_samples=200, attack_steps=0, directions=64, search_radius=50.0)(ctx_for(model, 3))
    exact = exact_linear_radius((V @ W).double(), c.double(), same_z(200, 3, 3).double()).numpy()
    r = res.per_sample["radius"]
    assert (r >= exact * (1 - 1e-4)).all()  # every found boundary point is at least as far as the nearest
    assert res.info["gradient_attack_used"] is False


def test_censoring_when_boundary_outside_search_radius():
    # two classes split by the hyperplane z_1 = 1.5: |z_1 - 1.5| is the exact radius
    W = torch.eye(2)
    model = LinearDecoderModel(W, torch.zeros(2), input_shape=(2,))
    clf = lambda x: torch.stack([torch.zeros(x.shape[0]), x[:, 0] - 1.5], 1)  # noqa: E731
    R, n = 1.0, 400
    res = ClassRadius(classifier=clf, n_samples=n, search_radius=R)(ctx_for(model, 5))
    exact = (same_z(n, 2, 5)[:, 0] - 1.5).abs().double()
    far = (exact > R).numpy()
    assert 0.2 < far.mean() < 0.9
    assert res.values["censored_fraction"] == pytest.approx(far.mean())
    np.testing.assert_array_equal(res.per_sample["censored"] > 0, far)
    # censored samples count at R, not dropped
    np.testing.assert_allclose(res.per_sample["radius"], np.minimum(exact.numpy(), R), rtol=1e-4, atol=1e-6)
    assert res.values["class_radius"] == pytest.approx(float(np.minimum(exact.numpy(), R).mean()), rel=1e-4)

    all_far = ClassRadius(classifier=lambda x: torch.stack([torch.zeros(x.shape[0]), x[:, 0] - 50.0], 1),
                          n_samples=50, search_radius=R)(ctx_for(model, 5))
    assert all_far.values["censored_fraction"] == 1.0 and all_far.values["class_radius"] == pytest.approx(R)


def test_grid2d_uses_nearest_mode_rule():
    # identity "generator" on the 5x5 grid: cells are squares with walls at +-1 and +-3
    model = LinearDecoderModel(torch.eye(2), torch.zeros(2), input_shape=(2,))
    res = ClassRadius(n_samples=300, search_radius=10.0)(ctx_for(model, 9, dataset="grid2d", num_classes=25))
    z = same_z(300, 2, 9).double()
    walls = torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64)
    exact = (z[:, :, None] - walls).abs().amin(dim=(1, 2))
    np.testing.assert_allclose(res.per_sample["radius"], exact.numpy(), rtol=1e-3, atol=1e-6)
    assert "nearest-mode" in res.info["classifier"]


def test_label_only_classifier_and_missing_classifier():
    model = LinearDecoderModel(torch.eye(2), torch.zeros(2), input_shape=(2,))
    with pytest.warns(RuntimeWarning, match="returns labels, not logits.*give a classifier that returns logits"):
        res = ClassRadius(classifier=lambda x: (x[:, 0] > 0).long(), n_samples=100, directions=32)(ctx_for(model, 1))
    z = same_z(100, 2, 1)
    assert res.info["gradient_attack_used"] is False and res.info["labels_only_classifier"] is True
    assert "'given callable'" in res.info["warnings"][0]
    assert (res.per_sample["radius"] >= z[:, 0].abs().numpy() * (1 - 1e-4)).all()
    with pytest.raises(LatentBenchError, match="needs a classifier"):
        ClassRadius(n_samples=10)(ctx_for(model, 1))
    with pytest.raises(ValueError, match="search_radius"):
        ClassRadius(search_radius=0.0)


def test_labels_only_overestimates_by_the_documented_factor_and_logits_do_not_warn(recwarn):
    # one flat boundary z_1 = 0 in d = 8: the exact radius is |z_1|; searching only along M = 16 random
    # rays finds |z_1| / max_i cos theta_i (only rays pointing towards the boundary meet it). The factor
    # E[1 / max_i cos theta_i] is computed here by Monte Carlo in numpy (the docstring's x1.8 for d = 8)
    d, M, n = 8, 16, 400
    u = np.random.default_rng(0).normal(size=(100_000, M, d))
    best_cos = (u[..., 0] / np.linalg.norm(u, axis=-1)).max(1)
    factor = float((1 / best_cos[best_cos > 0]).mean())
    assert factor == pytest.approx(1.8, abs=0.03)
    model = LinearDecoderModel(torch.eye(d), torch.zeros(d), input_shape=(d,))
    exact = same_z(n, d, 4)[:, 0].abs().double().numpy()
    with pytest.warns(RuntimeWarning, match="overestimated"):
        labels = ClassRadius(classifier=lambda x: (x[:, 0] > 0).long(), n_samples=n, directions=M,
                             search_radius=1e3)(ctx_for(model, 4))
    ratio = labels.per_sample["radius"] / exact
    assert ratio.min() >= 1 - 1e-4  # every term an upper bound
    assert ratio.mean() == pytest.approx(factor, rel=0.08)
    recwarn.clear()
    logits = ClassRadius(classifier=lambda x: torch.stack([torch.zeros(x.shape[0]), x[:, 0]], 1), n_samples=n,
                         directions=M, search_radius=1e3)(ctx_for(model, 4))
    np.testing.assert_allclose(logits.per_sample["radius"], exact, rtol=1e-4, atol=1e-6)
    assert logits.info["labels_only_classifier"] is False and logits.info["warnings"] == []
    assert not [w for w in recwarn if "class_radius" in str(w.message)]
