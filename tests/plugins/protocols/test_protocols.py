"""The built-in protocols: registered, docs/methods.md §4 numbers for fashion-mnist-32-v1, every config buildable."""

import math
from pathlib import Path

import pytest

from latentbench.errors import UnknownComponentError
from latentbench.runconfig import ModelSpec, RunConfig, apply_protocol, validate_run_config
from latentbench.typed_config import build_dataclass


def test_registered(registry):
    assert {"digits-v1", "fashion-mnist-32-v1"} <= set(registry.names("protocol"))
    for name in ("digits-v1", "fashion-mnist-32-v1"):
        p = registry.protocol(name)
        assert p.name.endswith("-v" + p.version) and p.description and p.source
        assert p.tolerances["rel"] > 0 and p.tolerances["abs"] > 0


def test_fashion_mnist_follows_spec_section_4(registry):
    p = registry.protocol("fashion-mnist-32-v1")
    assert p.dataset["name"] == "fashion-mnist" and p.dataset["image_size"] == 32 and p.dataset["eval_split"] == "test"
    # geometry on the whole test split or a fixed subset of >= 1000 images
    assert p.dataset.get("eval_subset") is None or p.dataset["eval_subset"] >= 1000
    attacks = {a["name"]: a for a in p.attacks}
    assert set(attacks) == {"latent_space", "max_damage"}
    for a in attacks.values():
        assert a["budgets"] == [1.0, 3.0, 5.0]
        assert a["config"]["steps"] == 200 and a["config"]["restarts"] == 10
    metrics = {m["plugin"]: m.get("config", {}) for m in p.metrics}
    for pair in ("ms_ssim", "l2_distance"):
        assert metrics[pair] == {"images_per_trial": 100, "trials": 10}
    assert metrics["fid"]["n_samples"] == 10000
    d = metrics["downstream_adv_accuracy"]
    assert d["budgets"] == [0.01, 0.1, 0.2, 0.3] and d["steps"] == 100 and d["restarts"] == 10
    assert {"spectral_radius", "vn_entropy"} <= set(metrics)


def test_digits_budgets_are_the_same_fraction_of_image_norm(registry):
    """digits-v1's lambdas are to 8x8 digits what 1/3/5 are to 32x32 Fashion-MNIST: compare the
    budget / mean image L2 norm ratios computed from the data (not from the description)."""
    from latentbench.data import DatasetConfig

    x = registry.dataset("digits")(DatasetConfig()).load("test").x
    norm = float(x.flatten(1).norm(dim=1).mean())
    budgets = registry.protocol("digits-v1").attacks[0]["budgets"]
    ratios = [b / norm for b in budgets]
    assert 0.04 < ratios[0] and ratios[-1] < 0.35  # 6%..26% of the image norm
    assert all(a["config"]["steps"] <= 50 for a in registry.protocol("digits-v1").attacks)


@pytest.mark.parametrize("name", ["digits-v1", "fashion-mnist-32-v1"])
def test_protocol_builds_a_valid_run_config(registry, name):
    cfg = apply_protocol(RunConfig(protocol=name, models=[ModelSpec(name="m", plugin="vae")]), registry)
    validate_run_config(cfg, registry)  # every plugin and config of the protocol exists and validates
    p = registry.protocol(name)
    assert cfg.seed == p.seed and cfg.trials == p.trials and cfg.dataset.name == p.dataset["name"]
    for a in cfg.attacks:
        acls = registry.attack(a.plugin)
        for b in a.budgets:
            c = build_dataclass(acls.config_class, {**a.config, "eps": b}, "x")
            assert c.norm == "l2" and math.isclose(c.eps, b)


def test_unknown_protocol_names_the_known_ones(registry):
    with pytest.raises(UnknownComponentError, match="digits-v0"):
        apply_protocol(RunConfig(protocol="digits-v0"), registry)


def _nearest_other_class(eval_x, eval_y, ref_x, ref_y):
    """L2 distance from each evaluation image to the nearest reference image of another class (numpy)."""
    import numpy as np

    a = eval_x.reshape(len(eval_x), -1).double().numpy()
    b = ref_x.reshape(len(ref_x), -1).double().numpy()
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    d2[eval_y.numpy()[:, None] == ref_y.numpy()[None, :]] = np.inf
    return np.sqrt(np.maximum(d2.min(1), 0))


# fashion-mnist needs its IDX files (Debian's dataset-fashion-mnist, which .ci/run installs); any other
# loading error fails the test
FASHION_FILES = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("name", [
    "digits-v2",
    pytest.param("fashion-mnist-32-v2", marks=pytest.mark.skipif(not FASHION_FILES.is_dir(),
                                                                 reason=f"{FASHION_FILES} not installed")),
])
def test_v2_grid_stays_below_the_nearest_image_of_another_class(registry, name):
    """docs/methods.md §7: no evaluation image has an image of another class (train or evaluation)
    within the largest ε of the grid, computed here with numpy on the protocol's own images."""
    import torch

    from latentbench.data import DatasetConfig

    p = registry.protocol(name)
    ra = next(m for m in p.metrics if m["plugin"] == "robust_accuracy")
    budgets = ra["config"]["budgets"]
    assert budgets == sorted(budgets) and p.rank_by == {"metric": "robust_accuracy", "value": "robust_accuracy_mean"}
    d = p.dataset
    ds = registry.dataset(d["name"])(DatasetConfig(image_size=d.get("image_size"), options=dict(d.get("options", {}))))
    tr, te = ds.load("train"), ds.load(d["eval_split"])
    if d.get("eval_subset"):
        te = te.subset(d["eval_subset"], p.seed, f"{d['name']}/{d['eval_split']}")
    dist = _nearest_other_class(te.x, te.y, torch.cat([tr.x, te.x]), torch.cat([tr.y, te.y]))
    assert max(budgets) < dist.min()
    # and the grid is not trivially small: its top reaches at least half the closest such image
    assert max(budgets) >= 0.5 * dist.min()


def test_digits_v2_holds_out_half_and_ships_its_classifier(registry):
    from latentbench.data import DatasetConfig
    from latentbench.plugins.metrics._reference_classifier import load_reference_classifier

    p = registry.protocol("digits-v2")
    ds = registry.dataset("digits")(DatasetConfig(options=dict(p.dataset["options"])))
    n_test, n_train = len(ds.load("test").x), len(ds.load("train").x)
    assert n_test + n_train == 1797 and abs(n_test - n_train) <= 1
    cfg = next(m for m in p.metrics if m["plugin"] == "robust_accuracy")["config"]
    net, meta = load_reference_classifier(cfg["classifier"], cfg["classifier_sha256"])
    assert meta["sha256"] == cfg["classifier_sha256"] and meta["test_accuracy"] > 0.9
