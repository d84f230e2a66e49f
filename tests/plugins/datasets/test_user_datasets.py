"""Users' own data: image_folder (PNG/JPEG of any size) and CIFAR-10, SVHN, CelebA from local files.

Every file is written by the test in the format torchvision reads; nothing is downloaded. torchvision
checks the published files' md5, so the tests point its md5 tables at the files they wrote (the check
itself still runs: a changed byte is refused).
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from latentbench.cli import main
from latentbench.data import DatasetConfig, DatasetError
from latentbench.errors import ConfigError
from latentbench.plugins.datasets.image_folder import ImageFolder
from latentbench.plugins.datasets.torchvision_local import SVHN, CelebA, CIFAR10

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _stripes(w: int, h: int) -> Image.Image:
    """Black left and right quarters, white middle half: a centre crop of the square keeps the white."""
    a = np.zeros((h, w), np.uint8)
    a[:, w // 4: w - w // 4] = 255
    return Image.fromarray(a, "L")


def _write_folder(root, layout):
    """layout: {class: [(file name, PIL image)]}."""
    for cls, files in layout.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name, im in files:
            im.save(root / cls / name)


def test_image_folder_png_and_jpeg_of_any_size_are_resized_and_centre_cropped(tmp_path):
    _write_folder(tmp_path / "train", {"cat": [("a.png", Image.new("RGB", (40, 30), RED))],
                                       "dog": [("b.jpg", Image.new("RGB", (17, 50), BLUE)),
                                               ("c.png", _stripes(40, 20))]})
    _write_folder(tmp_path / "test", {"cat": [("d.jpeg", Image.new("RGB", (300, 200), RED))], "dog": []})
    ds = ImageFolder(DatasetConfig(image_size=16, data_root=str(tmp_path)))
    ds.check_config()
    assert ds.shape() == (3, 16, 16) and ds.num_classes == 2 and ds.classes == ["cat", "dog"]
    assert ds.check_split("train") == 3 and ds.check_split("test") == 1
    tr = ds.load("train")
    assert tr.x.shape == (3, 3, 16, 16) and tr.y.tolist() == [0, 1, 1]  # sorted class folders, then files
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    assert torch.equal(tr.x[0], red.expand(3, 16, 16))  # lossless PNG: exact
    assert (tr.x[1] - torch.tensor([0.0, 0.0, 1.0])[:, None, None]).abs().max() < 0.05  # JPEG: nearly
    # 40x20 stripes: shorter side 20 -> 16 makes it 32 wide, the centre 16 columns are the white half
    # (a resize of the whole image to 16x16 would keep the black quarters: mean 0.5)
    assert tr.x[2].mean() > 0.85 and torch.equal(tr.x[2][0], tr.x[2][1])  # grey file -> equal channels
    te = ds.load("test")
    assert te.y.tolist() == [0] and (te.x[0] - red).abs().max() < 0.05
    grey = ImageFolder(DatasetConfig(image_size=8, data_root=str(tmp_path), options={"channels": 1}))
    assert grey.load("train").x.shape == (3, 1, 8, 8)


def test_image_folder_one_folder_is_split_by_a_fixed_permutation(tmp_path):
    _write_folder(tmp_path, {c: [(f"{i}.png", Image.new("RGB", (9 + i, 12), (20 * i, 0, 0))) for i in range(5)]
                             for c in ("a", "b")})
    ds = ImageFolder(DatasetConfig(image_size=8, data_root=str(tmp_path), options={"test_fraction": 0.3}))
    tr, te = ds.load("train"), ds.load("test")
    assert len(te) == 3 and len(tr) == 7  # round(10 * 0.3)
    again = ImageFolder(DatasetConfig(image_size=8, data_root=str(tmp_path), options={"test_fraction": 0.3}))
    assert torch.equal(again.load("test").x, te.x)
    # the two splits are disjoint and together are every image (red levels 20 i differ per file)
    keys = sorted((int(y), round(float(x[0].mean()) * 255)) for s in (tr, te) for x, y in zip(s.x, s.y))
    assert keys == sorted((c, 20 * i) for c in (0, 1) for i in range(5))
    # a subset loads only its rows and gives the same images as the whole split
    sub = ds.load_subset("train", 4, 0, "s")
    from latentbench.data import subset_indices

    assert torch.equal(sub.x, tr.x[subset_indices(7, 4, 0, "s")])


def test_image_folder_errors_name_the_layout(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.data_root.*needs the folder.*set data_root"):
        ImageFolder(DatasetConfig(image_size=8)).check_config()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"has no class folders -- lay the images out as data_root/<class>"):
        ImageFolder(DatasetConfig(data_root=str(tmp_path / "empty"))).load("test")
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.png").write_bytes(b"not a png")
    (tmp_path / "bad" / "a" / "y.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"x.png cannot be read as an image.*-- replace or remove the file"):
        ImageFolder(DatasetConfig(data_root=str(tmp_path / "bad"), options={"test_fraction": 0.5})).load("train")
    with pytest.raises(ConfigError, match=r"options.channels.*use channels 3"):
        ImageFolder(DatasetConfig(data_root=str(tmp_path), options={"channels": 2})).check_config()


def test_image_folder_runs_from_the_cli(tmp_path, capsys):
    """A user's folder goes through `latentbench run` like a built-in dataset (tiny MLP, one epoch)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        _write_folder(tmp_path / "imgs" / split, {c: [(f"{i}.png", Image.fromarray(
            rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8), "RGB")) for i in range(n)] for c in ("u", "v")})
    cfg = {"name": "folder", "output_dir": str(tmp_path / "out"), "progress": False,
           "dataset": {"name": "image_folder", "image_size": 8, "data_root": str(tmp_path / "imgs"), "eval_subset": 10},
           "models": [{"name": "m", "plugin": "vae", "config": {"latent_dim": 2, "backbone": "mlp", "hidden": [16]},
                       "train": {"epochs": 1, "batch_size": 8}}],
           "metrics": [{"plugin": "spectral_radius"}]}
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(p)]) == 0, capsys.readouterr().err
    assert "1 cells computed" in capsys.readouterr().out
    cfg["dataset"]["data_root"] = str(tmp_path / "nowhere")
    p.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentbench: error: ") and "nowhere is not a folder -- point data_root at a folder" in err


# -- torchvision readers on files the tests write ---------------------------------------------------
def _cifar_files(root, rng, n_per_batch=4):
    """cifar-10-batches-py as torchvision reads it: pickled dicts of uint8 rows (3072 = 3x32x32) and labels."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        (d / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
        batches[name] = (data, labels)
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return batches


def _trust_cifar(monkeypatch, root):
    from torchvision.datasets import CIFAR10 as TV

    d = root / "cifar-10-batches-py"
    monkeypatch.setattr(TV, "train_list", [[f"data_batch_{i}", _md5(d / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(TV, "test_list", [["test_batch", _md5(d / "test_batch")]])
    monkeypatch.setattr(TV, "meta", {**TV.meta, "md5": _md5(d / "batches.meta")})


def test_cifar10_from_local_python_batches(tmp_path, monkeypatch):
    batches = _cifar_files(tmp_path, np.random.default_rng(1))
    _trust_cifar(monkeypatch, tmp_path)
    ds = CIFAR10(DatasetConfig(data_root=str(tmp_path)))
    assert ds.check_split("train") == 20 and ds.check_split("test") == 4
    te = ds.load("test")
    data, labels = batches["test_batch"]
    # a row is the red plane, then green, then blue, each 32x32 row-major (the CIFAR format)
    assert torch.equal(te.x, torch.from_numpy(data.reshape(4, 3, 32, 32)).float() / 255)
    assert te.y.tolist() == labels
    tr = ds.load_subset("train", 5, 0, "s")
    all_train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(20, 3, 32, 32)
    from latentbench.data import subset_indices

    assert torch.equal(tr.x, torch.from_numpy(all_train[subset_indices(20, 5, 0, "s").numpy()]).float() / 255)
    assert CIFAR10(DatasetConfig(image_size=16, data_root=str(tmp_path))).load("test").x.shape == (4, 3, 16, 16)


def test_cifar10_missing_or_damaged_files_say_where_and_how(tmp_path, monkeypatch):
    with pytest.raises(DatasetError) as e:
        CIFAR10(DatasetConfig(data_root=str(tmp_path))).load("test")
    msg = str(e.value)
    assert f"{tmp_path}/cifar-10-batches-py/batches.meta" in msg and "cifar-10-python.tar.gz" in msg
    assert "--data-root ROOT" in msg and "never downloads" in msg
    _cifar_files(tmp_path, np.random.default_rng(1))
    _trust_cifar(monkeypatch, tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80tampered")  # md5 no longer matches
    with pytest.raises(DatasetError, match=r"damaged or not the published one \(md5 mismatch\) -- replace them"):
        CIFAR10(DatasetConfig(data_root=str(tmp_path))).load("test")


def test_svhn_from_local_mat_files(tmp_path, monkeypatch):
    from scipy.io import savemat
    from torchvision.datasets import SVHN as TV

    rng = np.random.default_rng(2)
    split_list = {}
    for split, n in (("train", 6), ("test", 5)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's layout: H, W, C, N
        y = np.array([[10], [1], [2], [10], [9], [3]][:n], dtype=np.uint8)  # 10 is the digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
        split_list[split] = [None, f"{split}_32x32.mat", _md5(tmp_path / f"{split}_32x32.mat")]
        if split == "test":
            expected_x, expected_y = X, y
    monkeypatch.setattr(TV, "split_list", split_list)
    te = SVHN(DatasetConfig(data_root=str(tmp_path))).load("test")
    assert te.y.tolist() == [0, 1, 2, 0, 9]
    assert torch.equal(te.x, torch.from_numpy(expected_x.transpose(3, 2, 0, 1).copy()).float() / 255)
    with pytest.raises(DatasetError, match=r"svhn.*not found.*train_32x32.mat.*housenumbers"):
        SVHN(DatasetConfig(data_root=str(tmp_path / "none"))).load("train")


def _celeba_files(root):
    """CelebA as torchvision reads it: img_align_celeba/ and five space-separated annotation files."""
    d = root / "celeba"
    (d / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    attrs = ["5_o_Clock_Shadow", "Smiling", "Male"]
    rows = [[1, -1, 1], [-1, 1, 1], [-1, 1, -1], [1, -1, -1]]
    grey = [30, 90, 150, 210]
    for n, g in zip(names, grey):
        Image.new("RGB", (178, 218), (g, g, g)).save(d / "img_align_celeba" / n)
    (d / "list_attr_celeba.txt").write_text(f"{len(names)}\n" + " ".join(attrs) + "\n" + "".join(
        f"{n} " + " ".join(f"{v:2d}" for v in r) + "\n" for n, r in zip(names, rows)))
    (d / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    (d / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n"
                                            + "".join(f"{n} 1 2 3 4\n" for n in names))
    (d / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\nlefteye_x lefteye_y\n" + "".join(f"{n} 69 109\n" for n in names))
    (d / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, [0, 0, 2, 2])))
    return d, grey


def test_celeba_from_local_files(tmp_path, monkeypatch):
    from torchvision.datasets import CelebA as TV

    d, grey = _celeba_files(tmp_path)
    monkeypatch.setattr(TV, "file_list", [(None, _md5(d / f), f) for f in (
        "list_attr_celeba.txt", "identity_CelebA.txt", "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt",
        "list_eval_partition.txt")])
    ds = CelebA(DatasetConfig(image_size=16, data_root=str(tmp_path)))
    assert ds.shape() == (3, 16, 16) and ds.check_split("test") == 2
    te = ds.load("test")  # partition 2: the third and fourth image
    assert te.y.tolist() == [1, 0]  # Smiling of images 3 and 4 ({-1, 1} -> {0, 1})
    assert te.x.shape == (2, 3, 16, 16)
    assert all(abs(float(te.x[i].mean()) - g / 255) < 0.02 for i, g in enumerate(grey[2:]))  # JPEG: nearly
    male = CelebA(DatasetConfig(image_size=16, data_root=str(tmp_path), options={"attribute": "Male"}))
    assert male.load("train").y.tolist() == [1, 1]
    with pytest.raises(ConfigError, match=r"no attribute 'Smile'.*use one of 5_o_Clock_Shadow, Smiling, Male"):
        CelebA(DatasetConfig(data_root=str(tmp_path), options={"attribute": "Smile"})).load("test")
    with pytest.raises(DatasetError, match=r"celeba/img_align_celeba.*mmlab"):
        CelebA(DatasetConfig(data_root=str(tmp_path / "none"))).load("test")
