"""FID vs the Gaussian closed form; the domain classifier / feature extractor cache and determinism."""

import math

import numpy as np
import pytest
import torch

from latentbench.data import Split
from latentbench.plugins.metrics._domain_classifier import DomainModelConfig, domain_classifier, domain_feature_extractor
from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from tests.plugins.metrics.metric_toy_models import TanhMLPAutoencoder
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.metrics.fid import (ENV_INCEPTION, FID, bootstrap_interval, fid_bootstrap,
                                             frechet_from_features, kernel_inception_distance)

SMALL = DomainModelConfig(epochs=1, max_train=400, width=8, feature_dim=16)


def psd_sqrt(m):
    w, q = np.linalg.eigh(m)
    return (q * np.sqrt(np.clip(w, 0, None))) @ q.T


def gaussian_fid(m1, s1, m2, s2):
    """Closed form for N(m1, S1) vs N(m2, S2): ||m1 - m2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)."""
    r = psd_sqrt(s1)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * psd_sqrt(r @ s2 @ r)))


def test_frechet_matches_closed_form_for_gaussian_features():
    rng = np.random.default_rng(0)
    k = 4
    a, b = rng.normal(size=(k, k)), rng.normal(size=(k, k))
    s1, s2 = a @ a.T + 0.5 * np.eye(k), b @ b.T + 0.5 * np.eye(k)
    m1, m2 = rng.normal(size=k), rng.normal(size=k)
    f1 = rng.multivariate_normal(m1, s1, size=20000)
    f2 = rng.multivariate_normal(m2, s2, size=20000)
    got = frechet_from_features(f1, f2)
    # exactly the closed form at the fitted Gaussians (independent sqrt via eigh) ...
    e1, e2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    assert got == pytest.approx(gaussian_fid(e1, c1, e2, c2), rel=1e-8)
    # ... and close to the population value
    assert got == pytest.approx(gaussian_fid(m1, s1, m2, s2), rel=0.05)
    # commuting diagonal case written out: sum (sqrt(s1) - sqrt(s2))^2
    d1, d2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    assert gaussian_fid(np.zeros(2), d1, np.ones(2), d2) == pytest.approx(2 + (1 - 3) ** 2 + (2 - 1) ** 2)


def _cleanfid_fd(a, b):
    """clean-fid's own Frechet distance (scipy sqrtm of the product), the reference where it is well posed."""
    import warnings

    from cleanfid.fid import frechet_distance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its `disp` argument to sqrtm
        return float(frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


def test_frechet_matches_clean_fid_on_full_rank_features():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
    b = 0.3 + rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    assert frechet_from_features(a, b) == pytest.approx(_cleanfid_fd(a, b), rel=1e-9)


def test_singular_covariances_no_warning_and_dead_features_change_nothing():
    # 20 of 32 features are zero on every row (dead ReLU units, as on digits: the real covariance has
    # rank < feature dim): clean-fid's sqrtm of the singular product warns; ours must not, and must give
    # the FID of the live features alone (dead features add nothing to any term)
    import warnings

    from scipy.linalg import LinAlgWarning
    rng = np.random.default_rng(4)
    live_a = np.abs(rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)))
    live_b = np.abs(0.2 + rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12)))
    pad = lambda f: np.concatenate([f, np.zeros((len(f), 20))], 1)  # noqa: E731
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _cleanfid_fd(pad(live_a), pad(live_b))
    assert any(issubclass(w.category, LinAlgWarning) for w in caught)  # the warning this avoids
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = frechet_from_features(pad(live_a), pad(live_b))
    assert full == pytest.approx(_cleanfid_fd(live_a, live_b), rel=1e-9)


def test_bootstrap_spread_matches_resampling_the_population():
    # FID's sampling sd, measured by drawing 60 fresh sample pairs from the two Gaussians, vs the sd of
    # the bootstrap replicates of one pair; and the interval is the replicates' percentiles minus their bias
    k, n = 6, 400
    rng = np.random.default_rng(5)
    shift = np.full(k, 0.4)
    fresh = [frechet_from_features(rng.normal(size=(n, k)), shift + rng.normal(size=(n, k))) for _ in range(60)]
    a, b = rng.normal(size=(n, k)), shift + rng.normal(size=(n, k))
    reps = fid_bootstrap(a, b, 300, np.random.default_rng(0))
    assert 0.67 < reps.std() / np.std(fresh, ddof=1) < 1.5
    est = frechet_from_features(a, b)
    ci = bootstrap_interval(est, reps)
    bias = reps.mean() - est
    assert bias > 0  # fewer distinct rows in a replicate: FID's finite-n bias grows
    assert ci["fid_bootstrap_bias"] == pytest.approx(bias)
    assert ci["fid_ci_low"] == pytest.approx(max(np.sort(reps)[7] - bias, 0), abs=0.05 * reps.std())
    assert ci["fid_ci_low"] < est < ci["fid_ci_high"]


def test_kid_is_clean_fids_estimator_and_unbiased_where_fid_is_not():
    from cleanfid.fid import kernel_distance
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(150, 10)), 0.2 + rng.normal(size=(150, 10))
    # equal sizes below the subset size: clean-fid's subsets are permutations of all rows, and the
    # unbiased MMD^2 does not depend on the order
    assert kernel_inception_distance(a, b) == pytest.approx(kernel_distance(a, b, num_subsets=3), rel=1e-10)
    # null: two samples of one distribution (sizes 300 and 100, like a small real set): KID averages
    # to 0 within its standard error, FID stays well above 0
    kids, fids = [], []
    for _ in range(80):
        x, y = rng.normal(size=(300, 10)), rng.normal(size=(100, 10))
        kids.append(kernel_inception_distance(x, y))
        fids.append(frechet_from_features(x, y))
    assert abs(np.mean(kids)) < 3 * np.std(kids, ddof=1) / math.sqrt(len(kids))
    assert np.mean(fids) > 10 * np.std(fids, ddof=1) / math.sqrt(len(fids))


def test_same_distribution_gives_near_zero():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(5000, 3))
    assert frechet_from_features(f, f) == pytest.approx(0.0, abs=1e-8)


@pytest.fixture(scope="module")
def digits_train():
    s = Digits().load("train")
    return Split(s.x[:600], s.y[:600])


def test_domain_model_is_deterministic_cached_and_named(tmp_path, digits_train, monkeypatch):
    a = domain_classifier("digits", digits_train, 10, tmp_path / "a", seed=0, config=SMALL)
    b = domain_classifier("digits", digits_train, 10, tmp_path / "b", seed=0, config=SMALL)
    c = domain_classifier("digits", digits_train, 10, tmp_path / "c", seed=1, config=SMALL)
    assert a.latentbench_name == "latentbench-domain-cnn-digits-8-seed0"
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.head.weight, c.head.weight)
    folder = tmp_path / "a" / a.latentbench_name
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    # second call reloads instead of training
    import latentbench.plugins.metrics._domain_classifier as dm

    monkeypatch.setattr(dm, "_train", lambda *args, **kw: pytest.fail("retrained a cached model"))
    again = domain_classifier("digits", digits_train, 10, tmp_path / "a", seed=0, config=SMALL)
    assert torch.equal(again.head.weight, a.head.weight)
    fx = domain_feature_extractor("digits", digits_train, 10, tmp_path / "a", seed=0, config=SMALL)
    x = digits_train.x[:5]
    assert torch.equal(fx(x), a.features(x)) and fx.name == a.latentbench_name
    with pytest.raises(LatentBenchError, match="different"):
        domain_classifier("digits", Split(digits_train.x[:100], digits_train.y[:100]), 10, tmp_path / "a", seed=0,
                          config=SMALL)


def test_fid_without_inception_names_the_domain_extractor(tmp_path, digits_train, monkeypatch):
    monkeypatch.delenv(ENV_INCEPTION, raising=False)
    clf = domain_classifier("digits", digits_train, 10, tmp_path, seed=0, config=SMALL)
    model = TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=4, dtype=torch.float32).eval()
    ctx = MetricContext(model=model, x=digits_train.x[:200], y=None, dataset="digits", device=torch.device("cpu"),
                        generator=torch.Generator().manual_seed(0), seed=0, classifier=lambda: clf)
    res = FID(n_samples=200, batch_size=64, bootstrap=50)(ctx)
    assert res.info["feature_extractor"] == "latentbench-domain-cnn-digits-8-seed0"
    assert res.config["feature_extractor_name"] == res.info["feature_extractor"]
    assert res.values["fid"] > 0 and math.isfinite(res.values["fid"])
    v = res.values
    assert v["fid_ci_low"] < v["fid"] < v["fid_ci_high"] and "bootstrap" in res.info["fid_interval"]
    assert "kid" in v  # 200 real images: a small real set gets KID
    assert "kid" not in FID(n_samples=50, bootstrap=0, kid_auto_below=100)(ctx).values
    with pytest.raises(ValueError, match="bootstrap"):
        FID(bootstrap=5)
    with pytest.raises(ValueError, match="kid"):
        FID(kid="sometimes")
    with pytest.raises(LatentBenchError, match="never downloads"):
        FID(n_samples=10, feature_extractor="inception")(ctx)
    with pytest.raises(ValueError, match="feature_extractor"):
        FID(feature_extractor="vgg")
