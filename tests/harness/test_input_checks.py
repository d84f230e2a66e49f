"""Every input is checked before work starts (issue #17): each bad input ends in one
``latentbench: error: <problem> -- <fix>`` line and exit status 2, before any training; ``run --check``
validates without training; ``run`` exits 1 when a cell failed; fashion-mnist loads only its subset."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import latentbench.runner as runner_mod
from latentbench.checkpoint import save_checkpoint
from latentbench.cli import main
from latentbench.data import DatasetConfig, Split
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.datasets.mnist import FashionMNIST
from tests.harness import toy_plugin as toy
from tests.harness.cli import conftest as cli_conftest

toy_cli = cli_conftest.toy_cli  # the CLI on the toy registry (a fixture of tests/harness/cli)


def run_cfg(tmp_path, **over):
    c = {"name": "ic", "output_dir": str(tmp_path / "out"), "progress": False,
         "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 64},
         "models": [{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2}, "train": {"epochs": 1}}],
         "attacks": [{"name": "lat", "plugin": "toy_latent", "config": {"steps": 1}, "budgets": [0.5]}],
         "metrics": [{"plugin": "toy_recon"}]}
    c.update(over)
    return c


def with_dataset(tmp_path, **dataset):
    return run_cfg(tmp_path, dataset={"name": "digits", "eval_subset": 20, "train_subset": 64, **dataset})


def with_train(tmp_path, **train):
    return run_cfg(tmp_path, models=[{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2},
                                      "train": {"epochs": 1, **train}}])


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the runner starts training: every check must come before."""
    def refuse(*a, **k):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(runner_mod, "train", refuse)


def run_cli(tmp_path, capsys, cfg, *flags, name="run.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    rc = main(["run", str(p), *flags])
    out = capsys.readouterr()
    return rc, out.out, out.err


def error_line(rc, err, fix: str = " -- ") -> str:
    """The one stderr line of a refused input (exit 2), which names the fix after ``fix``."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentbench: error: ") and "Traceback" not in err, err
    assert fix in lines[0], f"no fix named: {lines[0]}"
    return lines[0]


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    raw = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_fashion(root: Path, n_train: int = 40, n_test: int = 30, labels=None) -> Path:
    """IDX files of the fashion-mnist layout with random 28x28 images."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n, (img, lbl) in (("train", n_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
                                 ("test", n_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))):
        write_idx(root / img, rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / lbl, np.asarray(labels if labels is not None and split == "test" else rng.integers(0, 10, n)))
    return root


def fashion_cfg(tmp_path, root: Path, **dataset):
    return run_cfg(tmp_path, dataset={"name": "fashion-mnist", "data_root": str(root), "eval_subset": 10,
                                      "train_subset": 20, **dataset})


# -- 1. budgets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("budgets, words", [
    ([float("inf")], "attacks[0].budgets[0]': expected a finite number, got inf -- write a finite number"),
    ([0.5, float("nan")], "attacks[0].budgets[1]': expected a finite number, got nan -- write a finite number"),
    ([], "attacks[0].budgets': empty list of budgets -- give at least one budget"),
    ([0.5, -1.0], "attacks[0].config': eps must be >= 0, got -1.0"),  # the attack config's own check
])
def test_bad_budgets_are_refused_before_any_training(tmp_path, capsys, toy_cli, no_training, budgets, words):
    cfg = run_cfg(tmp_path, attacks=[{"name": "lat", "plugin": "toy_latent", "budgets": budgets}])
    line = error_line(*run_cli(tmp_path, capsys, cfg)[::2], fix="" if budgets[-1:] == [-1.0] else " -- ")
    assert words in line
    assert not (tmp_path / "out" / "cache").exists()


def test_budget_check_backstops_an_attack_config_that_does_not_check_eps():
    import dataclasses

    from latentbench.errors import ConfigError
    from latentbench.runconfig import AttackSpec, _attack_configs

    @dataclasses.dataclass
    class LaxConfig:  # a third-party attack config without its own eps check
        eps: float = 0.1

    class Lax:
        config_class = LaxConfig

    with pytest.raises(ConfigError, match=r"budgets\[0\]': budget -2.0 is not a finite number >= 0"):
        _attack_configs(Lax, AttackSpec("a", "lax", budgets=[-2.0]), "attacks[0]")
    with pytest.raises(ConfigError, match=r"config.eps': budget -0.5 is not a finite number >= 0"):
        _attack_configs(Lax, AttackSpec("a", "lax", config={"eps": -0.5}), "attacks[0]")


# -- 2. image size and memory ---------------------------------------------------------------------
@pytest.mark.parametrize("size", [-4, 0, 4, 1000])
def test_image_size_outside_what_the_dataset_supports(tmp_path, capsys, toy_cli, no_training, size):
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, image_size=size))[::2])
    assert f"'dataset.image_size': {size} is outside the sizes dataset 'digits' supports (8..256" in line
    assert "use an image_size from 8 to 256" in line


def test_image_size_on_a_dataset_without_images(tmp_path, capsys, toy_cli):
    cfg = run_cfg(tmp_path, dataset={"name": "grid2d", "image_size": 32}, attacks=[])
    line = error_line(*run_cli(tmp_path, capsys, cfg, "--check")[::2])
    assert "dataset 'grid2d' has no images" in line and "remove image_size" in line


def test_memory_estimate_against_available_memory(tmp_path, capsys, toy_cli, no_training, monkeypatch):
    import latentbench.runconfig as rc_mod

    monkeypatch.setattr(rc_mod, "available_memory", lambda: 10 * 2**20)  # a 10 MB machine
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, image_size=64, eval_subset=100, train_subset=None))[::2])
    n_train = len(Digits().load("train"))  # the whole training split: train_subset is null
    total = (100 + n_train) * 64 * 64 * 4
    assert f"test: 100 x 1x64x64 x 4 bytes; train: {n_train} x 1x64x64 x 4 bytes" in line
    assert f"about {total / 2**20:.1f} MB in memory" in line and "10.0 MB available" in line
    assert "lower dataset.image_size or set eval_subset/train_subset" in line


# -- 3. subsets, labels, data_root, IDX files -----------------------------------------------------
def test_eval_subset_larger_than_the_split(tmp_path, capsys, toy_cli, no_training):
    n_test = len(Digits().load("test"))
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, eval_subset=5000))[::2])
    assert f"'dataset.eval_subset': 5000 examples asked but the 'test' split of digits has {n_test}" in line
    assert f"set eval_subset to at most {n_test}" in line
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, train_subset=99999))[::2])
    assert f"'dataset.train_subset': 99999 examples asked but the 'train' split of digits has {1797 - n_test}" in line
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, eval_subset=0))[::2])
    assert "'dataset.eval_subset': must be >= 1, got 0" in line


def test_label_outside_the_classes(tmp_path, capsys, toy_cli, no_training):
    root = fake_fashion(tmp_path / "data", n_test=5, labels=[0, 1, 200, 3, 4])
    for flags in ((), ("--check",)):
        line = error_line(*run_cli(tmp_path, capsys, fashion_cfg(tmp_path, root, eval_subset=5), *flags)[::2])
        assert f"{root / 't10k-labels-idx1-ubyte'} has label 200, outside the dataset's 10 classes (0..9)" in line


def test_label_range_is_checked_on_load_too():
    from latentbench.data import Dataset, DatasetError

    class Bad(Dataset):
        name, num_classes, native_shape = "bad", 3, (1, 2, 2)

        def _load(self, split):
            return Split(torch.zeros(2, 1, 2, 2), torch.tensor([0, 7]))

    with pytest.raises(DatasetError, match=r"dataset 'bad' \(train\) has label 7, outside the dataset's 3 classes"):
        Bad().load("train")


def test_explicit_data_root_without_files_is_an_error_not_a_fallback(tmp_path, capsys, toy_cli, no_training):
    empty = tmp_path / "empty"
    empty.mkdir()
    for flags in ((), ("--check",)):
        line = error_line(*run_cli(tmp_path, capsys, fashion_cfg(tmp_path, empty), *flags)[::2])
        assert f"data_root {empty} holds no t10k-images-idx3-ubyte[.gz]" in line
        assert "point --data-root (data_root in the config) at the folder holding the IDX files" in line


@pytest.mark.parametrize("damage, words", [
    ("empty", "{f} is empty"),
    ("false_gz", "{f} has a .gz name but is not gzip data"),
    ("short_labels", "{lbl} has 7 labels but {img} has 8 images"),
    ("truncated", "{f} is truncated: expected 6272 values, found 100"),
    ("truncated_gz", "{f} is truncated: expected 6272 values, found 100"),
    ("not_idx", "{f} is not an unsigned-byte IDX file"),
])
def test_damaged_idx_files_name_the_file(tmp_path, capsys, toy_cli, no_training, damage, words):
    root = fake_fashion(tmp_path / "data", n_test=8)
    img, lbl = root / "t10k-images-idx3-ubyte", root / "t10k-labels-idx1-ubyte"
    f = img
    if damage == "empty":
        img.write_bytes(b"")
    elif damage == "false_gz":
        f = img.rename(root / "t10k-images-idx3-ubyte.gz")
    elif damage == "short_labels":
        write_idx(lbl, np.arange(7))
    elif damage == "truncated":
        img.write_bytes(img.read_bytes()[:16 + 100])
    elif damage == "truncated_gz":
        f = root / "t10k-images-idx3-ubyte.gz"
        f.write_bytes(gzip.compress(img.read_bytes()[:16 + 100]))
        img.unlink()
    else:
        img.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    for flags in ((), ("--check",)):
        line = error_line(*run_cli(tmp_path, capsys, fashion_cfg(tmp_path, root, eval_subset=5), *flags)[::2])
        assert words.format(f=f, img=img, lbl=lbl) in line


# -- 4. training numbers, config path, model input shape ---------------------------------------------
@pytest.mark.parametrize("train, words", [
    ({"lr": float("nan")}, "models[0].train.lr': expected a finite number, got nan"),
    ({"lr": float("inf")}, "models[0].train.lr': expected a finite number, got inf"),
    ({"lr": 0.0}, "models[0].train': lr must be a finite number > 0, got 0.0 -- use e.g. lr: 0.001"),
    ({"lr": -0.1}, "lr must be a finite number > 0, got -0.1"),
    ({"epochs": 0}, "epochs and batch_size must be >= 1, got epochs 0, batch_size 128 -- use e.g."),
    ({"batch_size": -5}, "batch_size -5"),
    ({"max_steps": 0}, "max_steps must be >= 1, got 0 -- give a positive step count"),
    ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0, got -1.0"),
    ({"seed": -1}, "seed must be from 0 to 2**63 - 1, got -1"),
])
def test_bad_training_numbers(tmp_path, capsys, toy_cli, no_training, train, words):
    assert words in error_line(*run_cli(tmp_path, capsys, with_train(tmp_path, **train))[::2])


def test_model_config_learning_rate_is_checked_when_train_leaves_it_open(tmp_path, capsys, toy_cli, no_training):
    cfg = run_cfg(tmp_path, models=[{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2, "lr": -1.0}}])
    line = error_line(*run_cli(tmp_path, capsys, cfg)[::2])
    assert "'models[0].config.lr': the learning rate must be a finite number > 0, got -1.0 -- use e.g. lr: 0.001" in line


def test_run_numbers(tmp_path, capsys, toy_cli, no_training):
    assert "'trials': must be >= 1, got 0" in error_line(*run_cli(tmp_path, capsys, run_cfg(tmp_path, trials=0))[::2])
    assert "'seed': must be from 0 to 2**63 - 1, got -3" in error_line(*run_cli(tmp_path, capsys, run_cfg(tmp_path, seed=-3))[::2])


def test_a_folder_as_the_config(tmp_path, capsys, toy_cli):
    rc = main(["run", str(tmp_path)])
    line = error_line(rc, capsys.readouterr().err)
    assert f"'{tmp_path}': is a folder, not a YAML file" in line


def test_yaml_error_is_one_line(tmp_path, capsys, toy_cli):
    p = tmp_path / "bad.yaml"
    p.write_text("models: [\n  - name: x\n")
    line = error_line(main(["run", str(p)]), capsys.readouterr().err)
    assert "not valid YAML" in line


def test_checkpoint_for_other_image_sizes_is_refused_before_training(tmp_path, capsys, toy_cli, no_training):
    torch.manual_seed(0)
    save_checkpoint(toy.ToyAE(toy.ToyConfig(input_shape=(1, 28, 28), latent_dim=2)), tmp_path / "ck28")
    # the plugin model comes first: it would be trained before the checkpoint is loaded
    cfg = run_cfg(tmp_path, models=[{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2}, "train": {"epochs": 1}},
                                    {"name": "ck", "checkpoint": str(tmp_path / "ck28")}])
    line = error_line(*run_cli(tmp_path, capsys, cfg)[::2])
    assert (f"'models[1].checkpoint': checkpoint '{tmp_path / 'ck28'}' (model 'toy_ae') expects inputs of shape "
            f"(B, 1, 28, 28) but dataset 'digits' gives (B, 1, 8, 8)") in line
    assert "set input_shape in the model config to the dataset's shape (or resize the data" in line


def test_pinned_input_shape_other_than_the_dataset(tmp_path, capsys, toy_cli, no_training):
    cfg = run_cfg(tmp_path, models=[{"name": "m", "plugin": "toy_ae", "config": {"input_shape": [1, 16, 16]}}])
    line = error_line(*run_cli(tmp_path, capsys, cfg)[::2])
    assert "'models[0].config.input_shape': model 'toy_ae' expects inputs of shape (B, 1, 16, 16)" in line


def test_checkpoint_naming_an_unknown_model(tmp_path, capsys, toy_cli, no_training):
    save_checkpoint(toy.ToyAE(toy.ToyConfig(input_shape=(1, 8, 8), latent_dim=2)), tmp_path / "ck")
    c = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**c, "model": "toy_ea"}))
    line = error_line(*run_cli(tmp_path, capsys, run_cfg(tmp_path, models=[{"checkpoint": str(tmp_path / "ck")}]))[::2],
                      fix="Run `latentbench plugins`")
    assert "unknown model 'toy_ea' at 'models[0].checkpoint (config.json: model)'. Did you mean: toy_ae?" in line


# -- 5. run --check ---------------------------------------------------------------------------------
def test_check_validates_without_training_or_writing(tmp_path, capsys, toy_cli, no_training):
    cfg = run_cfg(tmp_path, models=[{"name": f"m{i}", "plugin": "toy_ae", "config": {"latent_dim": 2}} for i in range(2)],
                  attacks=[{"name": "lat", "plugin": "toy_latent", "config": {"steps": 1}, "budgets": [0.25, 0.5]}],
                  metrics=[{"plugin": "toy_recon"}, {"plugin": "toy_attack_gain"}])
    rc, out, err = run_cli(tmp_path, capsys, cfg, "--check")
    # 2 models x (1 clean metric + 1 attack metric x 2 budgets) = 6 cells
    assert rc == 0 and err == ""
    assert out.startswith("config OK: 2 models x 2 metrics, 1 attacks (2 attack configurations) = 6 cells; ")
    n_test = len(Digits().load("test"))
    assert f"dataset digits 1x8x8: test 20 of {n_test}, train 64 of {1797 - n_test} examples" in out
    assert not (tmp_path / "out").exists()


def test_check_count_matches_the_cells_a_run_computes(tmp_path, capsys, toy_cli):
    cfg = run_cfg(tmp_path, metrics=[{"plugin": "toy_recon"}, {"plugin": "toy_attack_gain"}],
                  attacks=[{"name": "lat", "plugin": "toy_latent", "config": {"steps": 1}, "budgets": [0.25, 0.5, 1.0]}])
    rc, out, _ = run_cli(tmp_path, capsys, cfg, "--check")
    assert rc == 0 and "= 4 cells" in out
    rc, out, _ = run_cli(tmp_path, capsys, cfg)
    assert rc == 0 and "4 cells computed, 0 reused" in out


def test_check_reports_an_error_as_one_line(tmp_path, capsys, toy_cli):
    line = error_line(*run_cli(tmp_path, capsys, with_dataset(tmp_path, eval_subset=10**6), "--check")[::2])
    assert "eval_subset" in line


# -- 6. exit status of a run with failed cells -------------------------------------------------------
def test_run_with_a_failed_cell_exits_1_and_lists_it_last(tmp_path, capsys, toy_cli):
    cfg = run_cfg(tmp_path, attacks=[], metrics=[{"plugin": "toy_recon", "name": "boom", "config": {"fail_after": 0}}])
    rc, out, err = run_cli(tmp_path, capsys, cfg)
    assert rc == 1
    tail = out.strip().splitlines()[-2:]
    assert tail == ["1 of 1 cells failed:", "failed: m x boom: RuntimeError: toy metric failure on purpose"]
    assert "1 cell(s) failed" in err and "--allow-failed-cells" in err
    rc, out, _ = run_cli(tmp_path, capsys, cfg, "--allow-failed-cells")
    assert rc == 0 and out.strip().splitlines()[-1] == "failed: m x boom: RuntimeError: toy metric failure on purpose"
    assert run_cli(tmp_path, capsys, cfg, "--fail-on-error")[0] == 1  # the old flag is still accepted


def test_run_without_failed_cells_exits_0(tmp_path, capsys, toy_cli):
    rc, out, err = run_cli(tmp_path, capsys, run_cfg(tmp_path, attacks=[]))
    assert rc == 0 and "cells failed:" not in out and ", 0 failed." in out and err == ""


# -- 8. fashion-mnist: the subset first, the same values ------------------------------------------------
def test_subset_first_loading_is_bit_identical_to_load_then_subset(tmp_path):
    root = fake_fashion(tmp_path / "data", n_train=300, n_test=50)
    for size in (None, 32, 16):
        ds = FashionMNIST(DatasetConfig(image_size=size, data_root=str(root)))
        for split, n in (("train", 37), ("test", 50), ("test", None)):
            new = ds.load_subset(split, n, 3, f"fashion-mnist/{split}")
            old = ds.load(split).subset(n, 3, f"fashion-mnist/{split}")  # the whole split resized, then the subset
            assert torch.equal(new.x, old.x) and torch.equal(new.y, old.y)
            assert new.x.shape == (n if n is not None else 50, 1, size or 28, size or 28)


def test_load_subset_refuses_more_than_the_split(tmp_path):
    from latentbench.data import DatasetError

    ds = FashionMNIST(DatasetConfig(data_root=str(fake_fashion(tmp_path / "data", n_test=12))))
    with pytest.raises(DatasetError, match=r"a subset of 13 examples was asked of dataset 'fashion-mnist' \(test\), which has 12"):
        ds.load_subset("test", 13, 0, "x")


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST IDX files not installed")
def test_real_fashion_mnist_subset_matches_the_whole_split_path():
    ds = FashionMNIST(DatasetConfig(image_size=32))
    new = ds.load_subset("test", 1000, 0, "fashion-mnist/test")
    old = ds.load("test").subset(1000, 0, "fashion-mnist/test")
    assert torch.equal(new.x, old.x) and torch.equal(new.y, old.y) and new.x.shape == (1000, 1, 32, 32)
    assert ds.check_split("test", download=False) == 10000 and ds.check_split("train", download=False) == 60000
