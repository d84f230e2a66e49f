"""CLI: train from YAML, run, report, plugins, help."""

from __future__ import annotations

import json

import pytest
import yaml

import latentbench.registry as hp
from latentbench.checkpoint import load_checkpoint
from latentbench.cli import main


@pytest.fixture
def toy_cli(toy_registry, monkeypatch):
    monkeypatch.setattr(hp, "_REGISTRY", toy_registry)
    return toy_registry


def test_train_from_yaml_writes_a_loadable_checkpoint(tmp_path, toy_cli, capsys):
    cfg = {"model": "toy_ae", "config": {"latent_dim": 3}, "dataset": {"name": "digits", "train_subset": 200},
           "train": {"epochs": 2, "batch_size": 50, "progress": False}, "output": str(tmp_path / "ck")}
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(p), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "trained toy_ae on digits (200 examples) for 8 steps" in out
    meta = json.loads((tmp_path / "ck" / "metadata.json").read_text())
    assert meta["dataset"] == "digits" and meta["train_config"]["seed"] == 3 and len(meta["history"]) == 2
    assert meta["provenance"]["latentbench_version"]
    m = load_checkpoint(tmp_path / "ck", toy_cli)
    assert m.latent_dim == 3 and m.input_shape == (1, 8, 8)


def test_train_rejects_unknown_keys_and_models(tmp_path, toy_cli, capsys):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"model": "toy_ae", "epochs": 3}))
    assert main(["train", str(p)]) == 2
    assert "unknown keys" in capsys.readouterr().err
    assert main(["train", "--model", "toy_aee"]) == 2
    assert "Did you mean: toy_ae" in capsys.readouterr().err
    assert main(["train", "--model", "toy_ae", "--set", "latent_dim=abc"]) == 2
    assert "config.latent_dim" in capsys.readouterr().err


def test_run_then_report(tmp_path, toy_cli, capsys):
    cfg = {"name": "cli", "output_dir": str(tmp_path / "out"), "progress": False,
           "dataset": {"eval_subset": 20, "train_subset": 64},
           "models": [{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2}, "train": {"epochs": 1}}],
           "metrics": [{"plugin": "toy_recon"}]}
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(p)]) == 0
    assert "1 cells computed, 0 reused" in capsys.readouterr().out
    assert main(["run", str(p)]) == 0
    assert "0 cells computed, 1 reused" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "toy_recon" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "out"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["provenance"]["seed"] == 0 and rows[0]["config"]["cell"]["metric"] == "toy_recon"
    assert main(["report", str(tmp_path / "nowhere")]) == 2


def test_plugins_table_and_help(toy_cli, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "toy_ae" in out and "builtin_datasets" in out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "latentbench run" in capsys.readouterr().out
