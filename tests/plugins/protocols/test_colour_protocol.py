"""colour-fashion-64-v1: the ColorMNIST-style construction (docs/datasets.md) and the protocol end to end.

The construction is checked against the formula on IDX files the test writes (grey level g, per-image
corners f != b of the RGB cube: pixel = b + g (f - b)); the protocol runs at reduced size (16
images, a few attack steps) with a tiny conv VAE.
"""

from __future__ import annotations

import dataclasses
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentbench import hookimpl
from latentbench.data import DatasetConfig, subset_indices
from latentbench.plugins.datasets.colour import ColourFashionMNIST, draw_colours
from latentbench.plugins.protocols.colour_fashion import BUDGETS, COLOUR_FASHION_64_V1

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _write_idx(root: Path, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-format files of ``n`` 28x28 images: random grey levels with exact 0 and 255 areas."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    x[:, :6] = 0  # background rows
    x[:, 12:16, 12:16] = 255  # a fully lit patch
    y = rng.integers(0, 10, n).astype(np.uint8)
    stem = "train" if split == "train" else "t10k"
    (root / f"{stem}-images-idx3-ubyte").write_bytes(struct.pack(">HBBIII", 0, 8, 3, n, 28, 28) + x.tobytes())
    (root / f"{stem}-labels-idx1-ubyte").write_bytes(struct.pack(">HBBI", 0, 8, 1, n) + y.tobytes())
    return x, y


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion")
    test = _write_idx(root, "test", 40, 0)
    _write_idx(root, "train", 96, 1)
    return root, test


def test_pixels_follow_the_formula_with_two_different_corners_per_image(idx_root):
    root, (grey, labels) = idx_root
    s = ColourFashionMNIST(DatasetConfig(data_root=str(root))).load("test")
    assert s.x.shape == (40, 3, 28, 28) and s.y.tolist() == labels.tolist()  # Fashion-MNIST's labels, kept
    g = grey.astype(np.float64) / 255
    x = s.x.double().numpy()
    pairs = set()
    for i in range(40):
        b = x[i, :, 0, 0]  # row 0 is background (g = 0): its colour is b
        f = x[i, :, 13, 13]  # the lit patch (g = 1): its colour is f
        assert set(b) <= {0.0, 1.0} and set(f) <= {0.0, 1.0}  # corners of the RGB cube
        assert f.any() and not np.array_equal(f, b)  # foreground never black, never the background
        np.testing.assert_allclose(x[i], b[:, None, None] + g[i][None] * (f - b)[:, None, None], atol=1e-6)
        pairs.add((tuple(f), tuple(b)))
    assert len(pairs) > 10  # colours differ from image to image (40 draws of 49 pairs)


def test_colours_are_fixed_by_the_seed_and_independent_of_the_subset(idx_root):
    root, _ = idx_root
    ds = ColourFashionMNIST(DatasetConfig(data_root=str(root)))
    full = ds.load("test")
    assert torch.equal(ColourFashionMNIST(DatasetConfig(data_root=str(root))).load("test").x, full.x)
    other = ColourFashionMNIST(DatasetConfig(data_root=str(root), options={"colour_seed": 1})).load("test")
    assert not torch.equal(other.x, full.x) and torch.equal(other.y, full.y)
    sub = ds.load_subset("test", 7, 0, "s")  # only 7 images read; each keeps its colours
    assert torch.equal(sub.x, full.x[subset_indices(40, 7, 0, "s")])
    # resizing the grey image before colouring (what the loader does) equals colouring, then resizing
    at16 = ColourFashionMNIST(DatasetConfig(image_size=16, data_root=str(root))).load("test")
    ref = F.interpolate(full.x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    assert at16.x.shape == (40, 3, 16, 16) and torch.allclose(at16.x, ref, atol=1e-5)


def test_the_49_colour_pairs_are_drawn_uniformly():
    fg, bg = draw_colours(49_000, 0, "test")
    counts = Counter(zip(fg.tolist(), bg.tolist()))
    assert set(counts) == {(f, b) for f in range(1, 8) for b in range(8) if b != f}
    # 1,000 expected per pair: a binomial standard deviation of 31, so +-150 is about 5 sigma
    assert all(850 < c < 1150 for c in counts.values())
    assert not torch.equal(draw_colours(100, 1, "test")[0], draw_colours(100, 0, "test")[0])


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist)")
def test_largest_budget_stays_below_the_distance_to_another_class():
    """The ε grid must not reach an image of another class: the protocol's 500 evaluation images
    against themselves and a second draw of 1,500 test images, distances in float64 numpy (the protocol's
    measurement used all 70,000 images: min 4.62)."""
    p = COLOUR_FASHION_64_V1
    d = p.dataset
    ds = ColourFashionMNIST(DatasetConfig(image_size=d["image_size"], options=dict(d["options"])))
    ev = ds.load_subset("test", d["eval_subset"], p.seed, f"{d['name']}/{d['eval_split']}")
    tr = ds.load_subset("test", 1500, 1, "reference")  # the test file: 6 times faster to read
    a = ev.x.flatten(1).double().numpy()
    b = torch.cat([tr.x, ev.x]).flatten(1).double().numpy()
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    d2[ev.y.numpy()[:, None] == torch.cat([tr.y, ev.y]).numpy()[None]] = np.inf
    nearest = np.sqrt(np.maximum(d2.min(1), 0))
    assert max(BUDGETS) < nearest.min()
    # and the grid is a real perturbation: its top is over 5% of the mean image norm (about 71.5)
    assert max(BUDGETS) > 0.05 * float(np.linalg.norm(a, axis=1).mean())


def test_protocol_is_registered_and_builds_a_valid_run_config(registry):
    from latentbench.runconfig import ModelSpec, RunConfig, apply_protocol, validate_run_config

    p = registry.protocol("colour-fashion-64-v1")
    assert p.dataset["image_size"] == 64 and p.dataset["name"] == "colour-fashion-mnist"
    cfg = apply_protocol(RunConfig(protocol=p.name, models=[ModelSpec(name="m", plugin="lc_vae")]), registry)
    validate_run_config(cfg, registry)
    head = next(m for m in p.metrics if m["plugin"] == "robust_accuracy")["config"]
    from latentbench.plugins.metrics._reference_classifier import load_reference_classifier

    net, meta = load_reference_classifier(head["classifier"], head["classifier_sha256"])
    assert meta["input_shape"] == [3, 64, 64] and meta["spec"]["dataset"] == "colour-fashion-mnist"
    assert meta["test_accuracy"] > 0.5  # well above chance (0.1); 0.535 measured


def reduced_protocol(root, name: str, eval_subset: int, attacks=(), metrics=()):
    """colour-fashion-64-v1 with its headline at a few steps and images, reading ``root``'s IDX files;
    ``metrics`` come before the headline."""
    head = next(m for m in COLOUR_FASHION_64_V1.metrics if m["plugin"] == "robust_accuracy")
    few = {"ce_steps": 2, "ce_restarts": 1, "latent_targets": 1, "latent_steps": 2, "max_damage_steps": 2,
           "random_queries": 3, "check_subset": 4, "chunk": 8}
    return dataclasses.replace(
        COLOUR_FASHION_64_V1, name=name,
        dataset={**COLOUR_FASHION_64_V1.dataset, "data_root": str(root), "eval_subset": eval_subset, "train_subset": 32},
        attacks=tuple(attacks), metrics=(*metrics, {**head, "config": {**head["config"], **few}}))


class _Reduced:
    def __init__(self, protocol):
        self.protocol = protocol

    @hookimpl
    def latentbench_protocols(self):
        return [self.protocol]


def test_protocol_runs_end_to_end_at_reduced_size_with_a_tiny_conv_vae(idx_root, tmp_path):
    from latentbench.benchmark import BenchmarkRequest, evaluate
    from latentbench.registry import load_registry
    from latentbench.training import TrainConfig

    root, (_, labels) = idx_root
    # the headline alone: the pair metrics and spectra at 64x64 are covered by their own tests
    reduced = reduced_protocol(root, "colour-fashion-64-tiny-v1", 16)
    registry = load_registry(extra_plugins=[_Reduced(reduced)])
    entry = evaluate(BenchmarkRequest(protocol=reduced.name, model="vae", name="tiny-conv",
                                      config={"backbone": "conv", "conv_channels": [8, 16], "latent_dim": 4},
                                      train=TrainConfig(epochs=1, batch_size=16), work_dir=str(tmp_path / "w")),
                     registry, repo_root=tmp_path)
    results = {r["metric"]: r for r in entry["reported"]["results"]}
    assert "robust_accuracy" in results
    v = results["robust_accuracy"]["values"]
    assert v["n_images"] == 16
    # robust accuracy never rises with ε and never exceeds clean accuracy
    accs = [v[f"robust_accuracy@{b:g}"] for b in BUDGETS]
    assert 0 <= accs[-1] <= accs[1] <= accs[0] <= v["clean_accuracy"] <= 1
    assert entry["reported"]["clean"]["n_images"] == 16 and entry["model"]["config"]["input_shape"] == [3, 64, 64]
