"""Results that cannot go stale or be lost (issue #17): plugin identity in cell keys, atomic checkpoint
saves, half-written model folders, corrupted stores, folders that are files, NaN decoders, relabelled
weights, disabling one plugin by name, failed cells exposed last."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import latentbench.registry as hp
from latentbench.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from latentbench.cli import main
from latentbench.errors import CheckpointError, ConfigError
from latentbench.registry import load_registry
from latentbench.runconfig import parse_run_config
from latentbench.runner import Runner
from tests.harness import toy_plugin
from tests.harness.cli.conftest import toy_cli  # noqa: F401  (the fixture: the CLI on the toy registry)
from tests.harness.test_registry import make_dist


def one_model_cfg(tmp_path, out="out", **over):
    cfg = {"name": "t", "output_dir": str(tmp_path / out), "progress": False,
           "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 64},
           "models": [{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2}, "train": {"epochs": 1, "progress": False}}],
           "metrics": [{"plugin": "toy_recon"}]}
    cfg.update(over)
    return cfg


def write_yaml(tmp_path, cfg, name="run.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. cache keys change with the plugin's code -----------------------------------------------------

UPG_SOURCE = '''
from dataclasses import dataclass
from latentbench import Metric, MetricConfig, MetricResult, hookimpl

@dataclass
class UpgConfig(MetricConfig):
    pass

class UpgMetric(Metric):
    name = "upg_metric"
    config_class = UpgConfig
    needs = frozenset({"model", "data"})
    def compute(self, ctx):
        return MetricResult({"v": VALUE})

@hookimpl
def latentbench_metrics():
    return [UpgMetric]
'''


def _install_upg(root: Path, version: str, value: float, monkeypatch) -> None:
    """(Re)install the third-party distribution latentbench-upg at ``version`` whose metric returns ``value``."""
    if root.exists():
        shutil.rmtree(root)
    make_dist(root, "latentbench-upg", "lb_upg", UPG_SOURCE.replace("VALUE", repr(value)), version=version)
    sys.modules.pop("lb_upg", None)  # the next registry imports the new code
    importlib.invalidate_caches()


def test_upgraded_or_edited_plugin_recomputes_its_cells_only(tmp_path, monkeypatch, capsys):
    root = tmp_path / "site"
    monkeypatch.syspath_prepend(str(root))
    cfg = one_model_cfg(tmp_path, metrics=[{"plugin": "toy_recon"}, {"plugin": "upg_metric"}])

    def run(version, value):
        _install_upg(root, version, value, monkeypatch)
        s = Runner(parse_run_config(cfg), load_registry(extra_plugins=[toy_plugin])).run()
        upg = next(r for r in s.rows if r["metric"] == "upg_metric")
        return s, upg

    s, upg = run("0.3", 1.0)
    assert (s.computed, s.reused) == (2, 0) and upg["values"] == {"v": 1.0}
    # version bumped, same code: the plugin's cell is recomputed; toy_recon's cell (and the model,
    # its plugins unchanged) reused by a fresh registry
    s, upg = run("0.4", 1.0)
    assert (s.computed, s.reused) == (1, 1)
    assert upg["provenance"]["plugins"]["metric"]["version"] == "0.4"
    assert upg["provenance"]["plugins"]["metric"]["distribution"] == "latentbench-upg"
    # code edited without a version bump (an editable install): recomputed, with the new code's number
    s, upg = run("0.4", 2.5)
    assert (s.computed, s.reused) == (1, 1) and upg["values"] == {"v": 2.5}
    digest = hashlib.sha256((root / "lb_upg" / "__init__.py").read_bytes()).hexdigest()
    assert upg["provenance"]["plugins"]["metric"]["source_sha256"] == digest
    # `latentbench report` says which plugin code produced each row
    assert main(["report", cfg["output_dir"]]) == 0
    out = capsys.readouterr().out
    assert f"metric upg_metric: latentbench-upg 0.4 #{digest[:8]}" in out
    # the row of the edited code's result points at the note ([n]) naming that code
    row = next(line for line in out.splitlines() if line.startswith("| m ") and "upg_metric" in line and "2.5" in line)
    ref = row.rstrip(" |").split()[-1]
    note = next(line for line in out.splitlines() if line.startswith(ref + " "))
    assert f"metric upg_metric: latentbench-upg 0.4 #{digest[:8]}" in note
    assert "1.0" not in row and "latentbench-upg 0.3" in out  # the older rows keep their own notes


def test_cell_key_and_model_folder_hold_plugin_identities(tmp_path, toy_registry):
    runner = Runner(parse_run_config(one_model_cfg(tmp_path)), toy_registry)
    ident = toy_registry.plugin_identity("metric", "toy_recon")
    assert ident["distribution"] == "(registered directly)" and ident["provider"] == toy_plugin.__name__
    assert ident["source_sha256"] == hashlib.sha256(Path(toy_plugin.__file__).read_bytes()).hexdigest()
    builtin = toy_registry.plugin_identity("dataset", "digits")
    assert builtin["distribution"] == "latentbench" and builtin["version"]
    # the model's cache folder changes when the model plugin's identity does
    spec = runner.cfg.models[0]
    before = runner.model_folder(spec)
    runner._identities[("model", "toy_ae")] = {**runner.identity("model", "toy_ae"), "version": "9"}
    assert runner.model_folder(spec) != before


# -- 2. atomic saves, half-written model folders -----------------------------------------------------

def test_killed_save_leaves_a_folder_that_is_retrained_with_a_message(tmp_path, toy_cli, monkeypatch, capsys):
    import latentbench.checkpoint as ck

    real = ck.atomic_write_text

    def killed_at_config(path, text):
        if Path(path).name == CONFIG_FILE:
            raise KeyboardInterrupt  # the process dies after the weights and metadata, before config.json
        return real(path, text)

    cfg_path = write_yaml(tmp_path, one_model_cfg(tmp_path))
    monkeypatch.setattr(ck, "atomic_write_text", killed_at_config)
    assert main(["run", str(cfg_path)]) == 130
    folder = next((tmp_path / "out" / "cache" / "models").iterdir())
    assert (folder / WEIGHTS_FILE).exists() and not (folder / CONFIG_FILE).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no temporary files left behind
    weights_before = sha256(folder / WEIGHTS_FILE)
    capsys.readouterr()

    monkeypatch.setattr(ck, "atomic_write_text", real)
    assert main(["run", str(cfg_path)]) == 0
    cap = capsys.readouterr()
    msg = [line for line in cap.err.splitlines() if "incomplete" in line]
    assert len(msg) == 1 and str(folder) in msg[0] and "retraining 'm'" in msg[0] and "config.json" in msg[0]
    assert "1 cells computed" in cap.out
    # the retrained folder is complete; same seed, so the same weights as the interrupted save
    assert json.loads((folder / CONFIG_FILE).read_text())["model"] == "toy_ae"
    assert sha256(folder / WEIGHTS_FILE) == weights_before
    # invalid JSON in config.json (a torn write by an older version) is retrained the same way
    (folder / CONFIG_FILE).write_text('{"model": "toy_')
    rc = main(["run", str(cfg_path)])
    assert rc == 0 and "retraining 'm'" in capsys.readouterr().err


def test_outputs_are_written_through_a_temporary_file(tmp_path, toy_registry, monkeypatch):
    import latentbench.atomic as at

    replaced = []
    real = os.replace
    monkeypatch.setattr(at.os, "replace", lambda src, dst: (replaced.append((Path(src).name, Path(dst).name)), real(src, dst)))
    Runner(parse_run_config(one_model_cfg(tmp_path)), toy_registry).run()
    targets = {dst for _, dst in replaced}
    assert {"run_config.json", "results.md", "results.csv", "results.json", CONFIG_FILE, WEIGHTS_FILE,
            "metadata.json"} <= targets
    assert all(src != dst and src.startswith(f".{dst}.") for src, dst in replaced)
    assert [dst for _, dst in replaced if dst in (CONFIG_FILE, WEIGHTS_FILE, "metadata.json")][-1] == CONFIG_FILE


# -- 4. bad stores and output folders ----------------------------------------------------------------

def _assert_one_error_line(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("latentbench: error:")]
    assert len(line) == 1, err
    for w in words:
        assert w in line[0], line[0]
    return line[0]


def test_corrupted_or_truncated_store_is_one_error_line(tmp_path, toy_cli, capsys):
    cfg_path = write_yaml(tmp_path, one_model_cfg(tmp_path))
    assert main(["run", str(cfg_path)]) == 0
    store = tmp_path / "out" / "results.sqlite"
    good = store.read_bytes()
    capsys.readouterr()
    store.write_bytes(good[: len(good) // 2])  # cut in half
    assert main(["run", str(cfg_path)]) == 2
    _assert_one_error_line(capsys, str(store), "move it away or delete it")
    assert main(["report", str(tmp_path / "out")]) == 2
    _assert_one_error_line(capsys, str(store), "move it away or delete it")
    store.write_bytes(os.urandom(4096))  # random bytes
    assert main(["run", str(cfg_path)]) == 2
    _assert_one_error_line(capsys, str(store), "not an SQLite database")
    store.unlink()
    store.mkdir()  # a folder where the store should be
    assert main(["run", str(cfg_path)]) == 2
    _assert_one_error_line(capsys, str(store), "is a folder")


def test_output_folder_that_is_a_file(tmp_path, toy_cli, capsys):
    cfg_path = write_yaml(tmp_path, one_model_cfg(tmp_path))
    a_file = tmp_path / "taken.txt"
    a_file.write_text("not a folder")
    for folder in (a_file, a_file / "sub"):
        for flag in ("--output-dir", "--work-dir"):
            assert main(["run", str(cfg_path), flag, str(folder)]) == 2
            _assert_one_error_line(capsys, "output_dir", str(folder), "not a folder", "pass a folder path")
    assert a_file.read_text() == "not a folder"
    assert main(["run", str(cfg_path)]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out"), "--format", "files", "--out", str(a_file)]) == 2
    _assert_one_error_line(capsys, str(a_file), "not a folder")
    with pytest.raises(CheckpointError, match="it is a file"):
        save_checkpoint(toy_plugin.ToyAE(toy_plugin.ToyConfig(input_shape=(1, 8, 8), latent_dim=2)), a_file)


# -- 5. model pre-checks: NaN decoder, relabelled weights --------------------------------------------

def test_nan_decoder_fails_every_cell_of_the_model(tmp_path, toy_registry):
    torch.manual_seed(0)
    model = toy_plugin.ToyAE(toy_plugin.ToyConfig(input_shape=(1, 8, 8), latent_dim=2))
    with torch.no_grad():
        model.dec.bias.fill_(float("nan"))  # codes are finite, every decoded pixel is NaN
    folder = save_checkpoint(model, tmp_path / "nan_dec")
    cfg = one_model_cfg(tmp_path, models=[{"name": "nd", "checkpoint": str(folder)}],
                        attacks=[{"name": "lat", "plugin": "toy_latent", "budgets": [0.5]}],
                        metrics=[{"plugin": "toy_attack_gain"}, {"plugin": "toy_recon"}])
    s = Runner(parse_run_config(cfg), toy_registry).run()
    # toy_attack_gain only looks at codes: without the decoder check it would be stored as ok
    assert (s.computed, s.failed) == (0, 2)
    for r in s.rows:
        assert r["status"] == "error" and r["error"].startswith("NonFiniteError")
        assert "'nd' decodes" in r["error"] and "NaN/inf images" in r["error"]


def _tiny_vae(registry, name="vae"):
    cls = registry.model(name)
    return cls(cls.config_class.from_dict({"input_shape": [1, 8, 8], "latent_dim": 2, "hidden": [16]}))


def test_relabelled_weights_are_refused_naming_both_models(tmp_path, registry, capsys, monkeypatch):
    folder = save_checkpoint(_tiny_vae(registry), tmp_path / "ck")
    data = json.loads((folder / CONFIG_FILE).read_text())
    data["model"] = "beta_vae"  # same tensors, another model
    (folder / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"names model 'beta_vae' but model.safetensors was saved from model 'vae'"
                                              r".*set \"model\": \"vae\""):
        load_checkpoint(folder, registry)
    # through the command line: one error line, exit 2
    monkeypatch.setattr(hp, "_REGISTRY", registry)
    cfg = one_model_cfg(tmp_path, models=[{"name": "x", "checkpoint": str(folder)}], metrics=[{"plugin": "l2_distance"}],
                        attacks=[{"name": "a", "plugin": "latent_space", "budgets": [0.1]}])
    assert main(["run", str(write_yaml(tmp_path, cfg))]) == 2
    _assert_one_error_line(capsys, "'beta_vae'", "'vae'")


def test_checkpoint_saved_without_the_model_name_still_loads(tmp_path, registry):
    model = _tiny_vae(registry)
    folder = save_checkpoint(model, tmp_path / "ck")
    tensors = load_file(str(folder / WEIGHTS_FILE))
    save_file(tensors, str(folder / WEIGHTS_FILE))  # the format before the name was recorded: no metadata
    loaded = load_checkpoint(folder, registry)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


# -- 6. disabling one plugin by name -----------------------------------------------------------------

def test_disable_one_plugin_with_dash_p_and_environment(monkeypatch, capsys):
    monkeypatch.setattr(hp, "_REGISTRY", None)  # the CLI loads its own; restored afterwards
    monkeypatch.delenv(hp.ENV_DISABLE, raising=False)

    def names(argv):
        assert main(argv) == 0
        return {p["name"] for p in json.loads(capsys.readouterr().out)}

    every = names(["plugins", "--json"])
    assert {"builtin_experiments", "builtin_protocols"} <= every
    assert names(["-p", "no:builtin_experiments", "plugins", "--json"]) == every - {"builtin_experiments"}
    assert names(["-p", "no:builtin_experiments", "-pno:builtin_protocols", "plugins", "--json"]) == \
        every - {"builtin_experiments", "builtin_protocols"}
    monkeypatch.setattr(hp, "_REGISTRY", None)
    monkeypatch.setenv(hp.ENV_DISABLE, "builtin_protocols, builtin_experiments")
    assert names(["plugins", "--json"]) == every - {"builtin_experiments", "builtin_protocols"}
    monkeypatch.delenv(hp.ENV_DISABLE)
    assert main(["-p", "builtin_experiments", "plugins"]) == 2
    _assert_one_error_line(capsys, "'builtin_experiments' is not no:NAME", "-p no:NAME")


def test_disabled_plugin_components_are_unknown_and_a_misspelt_name_warns(tmp_path):
    reg = load_registry(extra_plugins=[toy_plugin], disabled=[toy_plugin.__name__])
    assert "toy_ae" not in reg.names("model") and "vae" in reg.names("model")
    with pytest.warns(RuntimeWarning, match=r"\['builtin_metrix'\].*not installed.*builtin_metrics"):
        reg = load_registry(disabled=["builtin_metrix"])
    assert "toy_recon" not in reg.names("metric") and "l2_distance" in reg.names("metric")


# -- 7. failed cells exposed for printing last --------------------------------------------------------

def test_summary_lists_failed_rows(tmp_path, toy_registry):
    toy_plugin._CALLS["n"] = 0
    cfg = one_model_cfg(tmp_path, models=[{"name": f"m{i}", "plugin": "toy_ae", "config": {"latent_dim": 2 + i},
                                           "train": {"epochs": 1, "progress": False}} for i in range(3)],
                        metrics=[{"plugin": "toy_recon", "config": {"fail_after": 1}}])
    s = Runner(parse_run_config(cfg), toy_registry).run()
    assert s.failed == 2 and [r["model"] for r in s.failed_rows] == ["m1", "m2"]
    assert s.failure_lines() == [f"failed: m{i} x toy_recon: RuntimeError: toy metric failure on purpose" for i in (1, 2)]


def test_bad_claim_lease_environment_is_a_config_error(tmp_path, toy_registry, monkeypatch):
    monkeypatch.setenv("LATENTBENCH_CLAIM_LEASE_S", "-5")
    with pytest.raises(ConfigError, match="LATENTBENCH_CLAIM_LEASE_S.*positive number of seconds"):
        Runner(parse_run_config(one_model_cfg(tmp_path)), toy_registry)
