"""Datasets: digits, IDX reading, resizing, deterministic subsets, grid2d."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import torch

from harness.data import DatasetConfig, Split, read_idx, resize
from plugins.datasets.digits import Digits
from plugins.datasets.grid2d import Grid2D, grid_means, nearest_mode
from plugins.datasets.idx import FashionMNIST


def test_digits_split_is_a_fixed_partition():
    tr, te = Digits().load("train"), Digits().load("test")
    assert tr.x.shape[1:] == (1, 8, 8) and len(tr) + len(te) == 1797
    assert tr.x.min() >= 0 and tr.x.max() <= 1 and set(te.y.tolist()) == set(range(10))
    from sklearn.datasets import load_digits

    flat = {tuple(r) for r in (load_digits().images.reshape(-1, 64) / 16.0).round(4).tolist()}
    assert tuple(te.x[0].flatten().double().round(decimals=4).tolist()) in flat
    assert torch.equal(Digits().load("test").x, te.x)


def test_read_idx_matches_handwritten_file(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2, 3, 4) + arr.tobytes()
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), arr)


def test_fashion_mnist_from_data_root(tmp_path):
    x = (np.random.default_rng(0).random((5, 28, 28)) * 255).astype(np.uint8)
    y = np.array([0, 1, 2, 3, 9], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 5, 28, 28) + x.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 5) + y.tobytes())
    s = FashionMNIST(DatasetConfig(image_size=32, data_root=str(tmp_path))).load("test")
    assert s.x.shape == (5, 1, 32, 32) and s.y.tolist() == [0, 1, 2, 3, 9]
    s28 = FashionMNIST(DatasetConfig(data_root=str(tmp_path))).load("test")
    assert torch.allclose(s28.x[:, 0], torch.from_numpy(x).float() / 255)


def test_resize_keeps_range_and_constant_images():
    c = torch.full((2, 1, 28, 28), 0.3)
    assert torch.allclose(resize(c, 32), c.new_full((2, 1, 32, 32), 0.3), atol=1e-6)
    r = resize(torch.rand(2, 3, 28, 28), 32)
    assert r.min() >= 0 and r.max() <= 1


def test_subset_is_deterministic_and_seed_dependent():
    s = Split(torch.arange(100).float().view(100, 1), torch.arange(100))
    a, b, c = s.subset(10, 0), s.subset(10, 0), s.subset(10, 1)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y) and len(set(a.y.tolist())) == 10


def test_grid2d_modes_and_nearest_mode_rule():
    ds = Grid2D(DatasetConfig(options={"n": 1, "train_size": 900}))
    s = ds.load("train")
    assert ds.num_classes == 9 and s.x.shape == (900, 2)
    assert torch.equal(nearest_mode(s.x, 1), s.y)  # std 0.05 vs spacing 2: never confused
    assert abs(float((s.x - grid_means(1)[s.y]).std()) - 0.05) < 0.005
    sub = Grid2D(DatasetConfig(options={"n": 1, "modes": 3, "train_size": 300})).load("train")
    assert len(set(sub.y.tolist())) == 3
