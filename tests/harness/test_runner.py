"""Runner: cells, resume after a kill, failures recorded per cell, outputs with provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from latentbench.runconfig import parse_run_config
from latentbench.runner import Runner
from latentbench.store import ResultStore
from tests import REPO_ROOT

ROOT = REPO_ROOT


def base_cfg(tmp_path, **over):
    cfg = {"name": "t", "output_dir": str(tmp_path / "out"), "progress": False,
           "dataset": {"name": "digits", "eval_subset": 40, "train_subset": 128},
           "models": [{"name": f"m{i}", "plugin": "toy_ae", "config": {"latent_dim": 2 + i},
                       "train": {"epochs": 1, "progress": False}} for i in range(3)],
           "attacks": [{"name": "lat", "plugin": "toy_latent", "budgets": [0.25, 0.5]}],
           "metrics": [{"plugin": "toy_recon"}, {"plugin": "toy_attack_gain"}]}
    cfg.update(over)
    return cfg


def test_grid_is_models_x_attack_configs_x_metrics(tmp_path, toy_registry):
    s = Runner(parse_run_config(base_cfg(tmp_path)), toy_registry).run()
    # per model: toy_recon (no attack) + toy_attack_gain x 2 budgets
    assert (s.computed, s.reused, s.failed) == (9, 0, 0)
    gains = [r for r in s.rows if r["metric"] == "toy_attack_gain"]
    assert sorted({r["budget"] for r in gains}) == [0.25, 0.5]
    for r in gains:  # the achieved norm never exceeds the budget
        assert r["values"]["norm"] <= r["budget"] + 1e-5
    row = s.rows[0]
    prov = row["provenance"]
    for key in ("latentbench_version", "torch_version", "seed", "hardware", "dataset"):
        assert key in prov
    assert row["config"]["cell"]["metric_config"] is not None
    out = Path(s.outputs["csv"]).read_text()
    assert "latentbench_version" in out.splitlines()[0]
    again = Runner(parse_run_config(base_cfg(tmp_path)), toy_registry).run()
    assert (again.computed, again.reused) == (0, 9)
    assert [r["values"] for r in again.rows] == [r["values"] for r in s.rows]


def test_failing_cell_is_recorded_and_run_goes_on(tmp_path, toy_registry):
    from tests.harness import toy_plugin as toy

    toy._CALLS["n"] = 0
    cfg = base_cfg(tmp_path, metrics=[{"plugin": "toy_recon", "config": {"fail_after": 1}}, {"plugin": "toy_attack_gain"}])
    s = Runner(parse_run_config(cfg), toy_registry).run()
    assert s.failed == 2 and s.computed == 7
    errors = [r for r in s.rows if r["status"] == "error"]
    assert all("toy metric failure on purpose" in r["error"] for r in errors)
    # failed cells are retried on the next run, finished ones are reused
    toy._CALLS["n"] = -100
    s2 = Runner(parse_run_config(cfg), toy_registry).run()
    assert (s2.computed, s2.reused, s2.failed) == (2, 7, 0)


def test_nan_model_is_reported_per_cell(tmp_path, toy_registry):
    # train a healthy model, then flip its saved config so that the loaded model emits NaN codes
    ok = base_cfg(tmp_path, models=[{"name": "bad", "plugin": "toy_ae", "config": {"latent_dim": 2},
                                     "train": {"epochs": 1, "progress": False}}])
    s = Runner(parse_run_config(ok), toy_registry).run()
    folder = Path(s.rows[0]["config"]["model_checkpoint"])
    c = json.loads((folder / "config.json").read_text())
    c["config"]["nan"] = True
    (folder / "config.json").write_text(json.dumps(c))
    cfg = base_cfg(tmp_path, models=[{"name": "bad", "checkpoint": str(folder)}], output_dir=str(tmp_path / "o2"))
    s = Runner(parse_run_config(cfg), toy_registry).run()
    assert s.failed == 3 and s.computed == 0
    assert all("NaN" in r["error"] and "bad" in r["error"] for r in s.rows)


def test_nan_training_loss_names_the_fix(tmp_path, toy_registry):
    from latentbench.errors import NonFiniteError

    cfg = base_cfg(tmp_path, models=[{"name": "bad", "plugin": "toy_ae", "config": {"latent_dim": 2, "nan": True},
                                      "train": {"epochs": 1, "progress": False}}])
    with pytest.raises(NonFiniteError, match="non-finite loss.*Lower the learning rate"):
        Runner(parse_run_config(cfg), toy_registry).run()


def test_killed_run_resumes_and_computes_only_missing_cells(tmp_path):
    """SIGKILL the process in the middle of a run; the re-run computes exactly the cells left."""
    out = tmp_path / "out"
    cfg = base_cfg(tmp_path, metrics=[{"plugin": "toy_recon", "config": {"kill_after": 2}}, {"plugin": "toy_attack_gain"}])
    cfg["output_dir"] = str(out)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    script = ("import sys; from tests.harness import toy_plugin as toy; from latentbench.registry import load_registry; from latentbench.runconfig import load_run_config;"
              "from latentbench.runner import Runner; s = Runner(load_run_config(sys.argv[1]), load_registry(extra_plugins=[toy])).run();"
              "print('SUMMARY', s.computed, s.reused, s.failed)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", script, str(p)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == -9, r.stderr  # killed by SIGKILL on the third toy_recon call
    with ResultStore(out / "results.sqlite") as st:
        done = list(st.rows())
    assert 0 < len(done) < 9 and all(d["status"] == "ok" for d in done)
    # same config (same cell keys); the re-run starts its call counter far below the kill threshold
    r2 = subprocess.run([sys.executable, "-c", script.replace("as toy;", "as toy; toy._CALLS['n'] = -1000;"), str(p)],
                        capture_output=True, text=True, env=env, timeout=300)
    assert r2.returncode == 0, r2.stderr
    computed, reused, failed = map(int, r2.stdout.split("SUMMARY")[1].split())
    assert reused == len(done) and computed == 9 - len(done) and failed == 0


def test_out_of_memory_names_the_batch_size_and_keeps_the_rest(tmp_path, toy_registry, monkeypatch):
    # device memory cannot be exhausted on purpose in a CPU test: the metric raises the error torch
    # raises on CUDA, once, for its first cell
    from tests.harness import toy_plugin as toy

    calls = {"n": 0}
    compute = toy.ToyReconMetric.compute

    def short_of_memory(self, ctx):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return compute(self, ctx)

    monkeypatch.setattr(toy.ToyReconMetric, "compute", short_of_memory)
    cfg = base_cfg(tmp_path, metrics=[{"plugin": "toy_recon", "config": {"batch_size": 64}}, {"plugin": "toy_attack_gain"}])
    s = Runner(parse_run_config(cfg), toy_registry).run()
    failed = [r for r in s.rows if r["status"] == "error"]
    assert s.failed == 1 and len(failed) == 1 and s.computed == len(s.rows) - 1
    err = failed[0]["error"]
    assert err.startswith("OutOfMemoryError: out of memory on cpu in cell ") and "toy_recon" in err
    assert "batch_size" in err and "(now 64)" in err and "--device cpu" in err and "\n" not in err
