"""CLI commands: train from YAML, run, report, plugins, benchmark's model entry, help, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from latentbench.checkpoint import load_checkpoint
from latentbench.cli import main


def test_train_from_yaml_writes_a_loadable_checkpoint(tmp_path, toy_cli, capsys):
    # the model is a run config's model entry; dataset a run config's dataset
    cfg = {"model": {"plugin": "toy_ae", "config": {"latent_dim": 3},
                     "train": {"epochs": 2, "batch_size": 50, "progress": False}},
           "dataset": {"name": "digits", "train_subset": 200}, "output": str(tmp_path / "ck")}
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


def test_train_flags_override_the_yaml(tmp_path, toy_cli, capsys):
    cfg = {"model": {"name": "small", "plugin": "toy_ae", "config": {"latent_dim": 3}, "train": {"epochs": 5}},
           "dataset": {"name": "digits", "train_subset": 100}, "output": str(tmp_path / "from_yaml")}
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(p), "--set", "latent_dim=2", "--epochs", "1", "--batch-size", "50", "--no-progress",
                 "-o", str(tmp_path / "ck")]) == 0
    assert "trained small (toy_ae) on digits (100 examples) for 2 steps" in capsys.readouterr().out
    meta = json.loads((tmp_path / "ck" / "metadata.json").read_text())
    assert meta["train_config"]["epochs"] == 1 and meta["train_config"]["progress"] is False
    assert meta["train_config"]["device"] == "cpu"
    assert load_checkpoint(tmp_path / "ck", toy_cli).latent_dim == 2
    assert not (tmp_path / "from_yaml").exists()


def test_train_rejects_unknown_keys_and_models(tmp_path, toy_cli, capsys):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"model": {"plugin": "toy_ae"}, "epochs": 3}))
    assert main(["train", str(p)]) == 2
    err = capsys.readouterr().err
    assert "'t.yaml.epochs': unknown key" in err and "valid keys: dataset, model, output" in err
    assert main(["train", "--model", "toy_aee"]) == 2
    assert "Did you mean: toy_ae" in capsys.readouterr().err
    assert main(["train", "--model", "toy_ae", "--set", "latent_dim=abc"]) == 2
    assert "config.latent_dim" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "no model given" in capsys.readouterr().err


def test_train_config_in_the_old_shape_gets_one_line_saying_how_to_write_it(tmp_path, toy_cli, capsys):
    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump({"model": "toy_ae", "config": {"latent_dim": 3}, "train": {"epochs": 2}}))
    assert main(["train", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "old shape" in err and "model: {plugin: vae, config: {latent_dim: 8}, train: {epochs: 30}}" in err


def test_shipped_train_configs_build_and_validate(registry):
    from latentbench.runconfig import load_train_config, validate_train_config

    for name, dataset in (("train_vae_digits", "digits"), ("train_vae", "fashion-mnist")):
        tc = load_train_config(name)
        assert (tc.model.plugin, tc.dataset.name) == ("vae", dataset) and tc.output.startswith("checkpoints/")
        validate_train_config(tc, registry)  # no data is loaded: the model config is built with the dataset's shape
        assert tc.model.typed_config.input_shape == ((1, 8, 8) if dataset == "digits" else (1, 32, 32))


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
    # --output-dir (and its other spelling --work-dir) moves the run; the flag's device beats the config's
    assert main(["run", str(p), "--work-dir", str(tmp_path / "elsewhere"), "--no-progress"]) == 0
    assert (tmp_path / "elsewhere" / "results.sqlite").exists()
    assert main(["run", str(p), "--device", "gpu0"]) == 2
    assert "'device': 'gpu0' is not a torch device" in capsys.readouterr().err


def test_plugins_table_and_help(toy_cli, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "toy_ae" in out and "builtin_datasets" in out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "latentbench run" in capsys.readouterr().out


class _Captured(Exception):
    pass


@pytest.fixture
def captured_request(monkeypatch):
    """``latentbench.benchmark.evaluate`` replaced by one that records the request and stops."""
    import latentbench.benchmark as bm

    got = []

    def fake(req, registry=None, repo_root=None):
        got.append(req)
        raise _Captured()

    monkeypatch.setattr(bm, "evaluate", fake)
    return got


def test_benchmark_config_is_a_model_entry_and_flags_override_it(tmp_path, captured_request):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"name": "my-vae", "plugin": "vae", "config": {"latent_dim": 4, "hidden": [32]},
                                 "train": {"epochs": 3, "batch_size": 32}}))
    with pytest.raises(_Captured):
        main(["benchmark", "--protocol", "digits-v1", "--config", str(p), "--set", "beta=2.0", "--train-epochs", "5"])
    req = captured_request[-1]
    assert (req.model, req.checkpoint, req.name, req.label) == ("vae", None, "my-vae", "my-vae")
    assert req.config == {"latent_dim": 4, "hidden": [32], "beta": 2.0}
    assert (req.train.epochs, req.train.batch_size, req.device, req.progress) == (5, 32, "cpu", True)
    # the earlier {config:, train:} file with --model is a model entry as it is
    p.write_text(yaml.safe_dump({"config": {"latent_dim": 4}, "train": {"epochs": 2}}))
    with pytest.raises(_Captured):
        main(["benchmark", "--protocol", "digits-v1", "--model", "beta_vae", "--config", str(p), "--no-progress"])
    req = captured_request[-1]
    assert (req.model, req.name, req.config, req.train.epochs, req.progress) == ("beta_vae", "beta_vae", {"latent_dim": 4}, 2, False)


def test_benchmark_config_in_the_old_shape_gets_one_line(tmp_path, capsys):
    p = tmp_path / "bare.yaml"
    p.write_text(yaml.safe_dump({"latent_dim": 10, "backbone": "mlp"}))
    assert main(["benchmark", "--protocol", "digits-v1", "--model", "vae", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "bare model config fields (backbone, latent_dim)" in err and "put them under 'config:'" in err
    assert main(["benchmark", "--protocol", "digits-v1"]) == 2
    assert "no model given" in capsys.readouterr().err


def test_python_dash_m_latentbench(tmp_path):
    r = subprocess.run([sys.executable, "-m", "latentbench", "--version"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("latentbench ")
