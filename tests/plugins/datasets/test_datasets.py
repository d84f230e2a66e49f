"""Built-in datasets: digits, IDX reading (fashion-mnist, mnist), grid2d."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from latentbench.data import DatasetConfig
from latentbench.errors import LatentBenchError
from latentbench.plugins.datasets._idx import read_idx
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.datasets.grid2d import Grid2D, grid_means, nearest_mode
from latentbench.plugins.datasets.mnist import FashionMNIST


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


def test_grid2d_modes_and_nearest_mode_rule():
    ds = Grid2D(DatasetConfig(options={"n": 1, "train_size": 900}))
    s = ds.load("train")
    assert ds.num_classes == 9 and s.x.shape == (900, 2)
    assert torch.equal(nearest_mode(s.x, 1), s.y)  # std 0.05 vs spacing 2: never confused
    assert abs(float((s.x - grid_means(1)[s.y]).std()) - 0.05) < 0.005
    sub = Grid2D(DatasetConfig(options={"n": 1, "modes": 3, "train_size": 300})).load("train")
    assert len(set(sub.y.tolist())) == 3


def test_missing_dataset_says_all_three_ways(tmp_path, monkeypatch):
    from latentbench.plugins.datasets._idx import load_idx_dataset

    monkeypatch.setattr("latentbench.plugins.datasets._idx.Path", lambda *a: tmp_path.joinpath(*[str(x).lstrip("/") for x in a]))
    with pytest.raises(LatentBenchError) as e:
        load_idx_dataset("mnist", "train", str(tmp_path / "nowhere"), "NoSuchTorchvisionClass")
    msg = str(e.value)
    assert "--data-root" in msg and "apt-get install dataset-mnist" in msg and "torchvision" in msg
