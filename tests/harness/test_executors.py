"""Executors (issue #15): the ray executor gives the local executor's cells and numbers, keeps every
finished cell when its driver is killed, records failed tasks as failed cells; one progress bar
without carriage returns when the output is not a terminal; bad executor settings are one error line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch
import yaml

from latentbench import Metric, MetricConfig, MetricResult, hookimpl
from latentbench.cli.options import executor_from
from latentbench.errors import ConfigError, LatentBenchError
from latentbench.executors import CellProgress
from latentbench.registry import load_registry
from latentbench.runconfig import parse_run_config
from latentbench.runner import Runner
from latentbench.store import ResultStore
from tests import REPO_ROOT
from tests.harness import toy_plugin


# -- test plugins (imported by Ray workers from this module: the tests run from the repository root)
@dataclass
class LogConfig(MetricConfig):
    #: every try appends a line "<unix time>" here, at its start: an independent count of the work done
    log: str = ""
    seconds: float = 0.0
    #: end the worker process (as an out-of-memory kill would) instead of returning
    crash: bool = False


class LoggedMetric(Metric):
    name = "logged"
    config_class = LogConfig
    needs = frozenset({"model", "data", "attack"})

    def compute(self, ctx):
        with open(self.config.log, "a") as f:
            f.write(f"{time.time()}\n")
        if self.config.crash:
            os._exit(3)
        time.sleep(self.config.seconds)
        return MetricResult({"budget_seen": float(ctx.attack.config.eps)})


class LoggedPlugin:
    @staticmethod
    @hookimpl
    def latentbench_metrics():
        return [LoggedMetric]


def toy_registry_with_log():
    return load_registry(extra_plugins=[toy_plugin, LoggedPlugin])


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance of 2 CPUs for the module (starting Ray takes seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def digits_cfg(out):
    """The quick start's grid at reduced size: two MLP autoencoders x one attack x two metrics that share
    its run (one Ray task), plus two unattacked metrics (one task each)."""
    return {"name": "ex", "output_dir": str(out), "progress": False, "seed": 3,
            "dataset": {"name": "digits", "eval_subset": 64, "train_subset": 256},
            "models": [{"name": f"m{i}", "plugin": "vae", "config": {"backbone": "mlp", "hidden": [16], "latent_dim": 3 + i},
                        "train": {"epochs": 1, "progress": False}} for i in range(2)],
            "attacks": [{"name": "latent_space", "plugin": "latent_space", "config": {"steps": 3, "restarts": 1},
                         "budgets": [0.5]}],
            "metrics": [{"plugin": "ms_ssim", "config": {"images_per_trial": 8, "trials": 1}},
                        {"plugin": "l2_distance", "config": {"images_per_trial": 8, "trials": 1}},
                        {"plugin": "spectral_radius"}, {"plugin": "vn_entropy"}]}


def test_ray_gives_the_local_cells_and_numbers(tmp_path, ray_instance):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray task of 1 CPU trains and evaluates with 1 thread (sums depend on it)
    try:
        local = Runner(parse_run_config(digits_cfg(tmp_path / "local"))).run()
    finally:
        torch.set_num_threads(threads)
    on_ray = Runner(parse_run_config(digits_cfg(tmp_path / "ray")), executor="ray").run()
    assert (local.computed, local.failed) == (on_ray.computed, on_ray.failed) == (8, 0)
    # same keys (so the same model weights), same values, same order
    assert [r["key"] for r in on_ray.rows] == [r["key"] for r in local.rows]
    assert [r["values"] for r in on_ray.rows] == [r["values"] for r in local.rows]
    assert {r["model_hash"] for r in on_ray.rows} == {r["model_hash"] for r in local.rows}
    # each cell records the threads its task ran with (1), whatever the driver's count
    assert {r["provenance"]["hardware"]["torch_threads"] for r in on_ray.rows} == {1}
    # the models were trained on Ray, in this run's own cache, not taken from the local run's
    assert len(list((tmp_path / "ray" / "cache" / "models").iterdir())) == 2
    again = Runner(parse_run_config(digits_cfg(tmp_path / "ray")), executor="ray").run()
    assert (again.computed, again.reused) == (0, 8)


def kill_cfg(tmp_path, budgets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
    return {"name": "k", "output_dir": str(tmp_path / "out"), "progress": False,
            "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 64},
            "models": [{"name": "m0", "plugin": "toy_ae", "config": {"latent_dim": 2}, "train": {"epochs": 1, "progress": False}}],
            "attacks": [{"name": "lat", "plugin": "toy_latent", "budgets": list(budgets)}],
            "metrics": [{"plugin": "logged", "config": {"log": str(tmp_path / "tries.log"), "seconds": 1.0}}]}


def test_killed_ray_driver_keeps_finished_cells_and_rerun_computes_the_rest(tmp_path, ray_instance):
    cfg = kill_cfg(tmp_path)
    n_cells = len(cfg["attacks"][0]["budgets"])
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    address = ray_instance.get_runtime_context().gcs_address
    # a second driver joins this module's Ray instance (--ray-address) and is killed half way
    script = ("import sys; from tests.harness.test_executors import toy_registry_with_log; "
              "from latentbench.runconfig import load_run_config; from latentbench.runner import Runner; "
              "Runner(load_run_config(sys.argv[1]), toy_registry_with_log(), executor='ray', ray_address=sys.argv[2]).run()")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-c", script, str(path), address], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store_path = tmp_path / "out" / "results.sqlite"
    stored, deadline = 0, time.time() + 120
    while stored < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
        if store_path.exists():
            with ResultStore(store_path) as st:
                stored = sum(r["status"] == "ok" for r in st.rows())
    driver.send_signal(signal.SIGKILL)
    err = driver.communicate()[1].decode()[-2000:]
    assert 2 <= stored < n_cells, (stored, err)
    time.sleep(1.0)  # the killed driver's tasks end with it
    with ResultStore(store_path) as st:
        kept = sum(r["status"] == "ok" for r in st.rows())
    assert kept >= stored  # every cell stored before the kill is still there
    rerun_start = time.time()
    s = Runner(parse_run_config(cfg), toy_registry_with_log(), executor="ray").run()
    assert (s.computed, s.reused, s.failed) == (n_cells - kept, kept, 0)
    # the independent count: tries started by the re-run are the missing cells, no more
    tries = [float(t) for t in (tmp_path / "tries.log").read_text().split()]
    assert sum(t >= rerun_start for t in tries) == n_cells - kept
    assert sorted(r["values"]["budget_seen"] for r in s.rows) == pytest.approx(cfg["attacks"][0]["budgets"])
    with ResultStore(store_path) as st:
        assert st.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # every claim released


def test_failed_tasks_are_retried_then_recorded_and_the_run_goes_on(tmp_path, ray_instance):
    cfg = kill_cfg(tmp_path, budgets=(0.25,))
    # toy_recon raises in its first call in each process; logged ends its worker every time, and shares
    # its task with toy_attack_gain (both use the attack at 0.25)
    cfg["metrics"] = [{"plugin": "toy_recon", "config": {"fail_after": 0}},
                      {"plugin": "logged", "config": {"log": str(tmp_path / "tries.log"), "crash": True}},
                      {"plugin": "toy_attack_gain"}]
    s = Runner(parse_run_config(cfg), toy_registry_with_log(), executor="ray", max_retries=1).run()
    assert [r["metric"] for r in s.rows] == ["toy_recon", "logged", "toy_attack_gain"]  # the grid's order
    recon, crashed, gain = s.rows
    # a metric that raises: a failed cell, as in the local executor (the task itself succeeds)
    assert recon["status"] == "error" and "toy metric failure on purpose" in recon["error"]
    # a task whose worker dies: Ray runs it 1 + max_retries times; then its two cells get a task each,
    # tried as often again; the crashing cell is recorded failed, its companion finishes
    assert crashed["status"] == "error" and "the Ray task failed 2 times" in crashed["error"]
    assert len((tmp_path / "tries.log").read_text().split()) == 2 + 2
    assert crashed["provenance"]["seed"] == 0 and crashed["config"]["cell"]["metric"] == "logged"
    assert gain["status"] == "ok" and gain["values"]["norm"] <= 0.25 + 1e-5
    assert (s.computed, s.failed) == (1, 2)
    with ResultStore(tmp_path / "out" / "results.sqlite") as st:
        assert [st.get(r["key"])["status"] for r in s.rows] == ["error", "error", "ok"]


# -- without Ray ----------------------------------------------------------------------------------
def test_bad_executor_settings_are_one_line_errors(tmp_path, monkeypatch):
    toy_registry = toy_registry_with_log()
    cfg = parse_run_config(kill_cfg(tmp_path))
    with pytest.raises(ConfigError, match="unknown executor 'dask'.*use one of: local, ray"):
        Runner(cfg, toy_registry, executor="dask")
    with pytest.raises(ConfigError, match="Ray address .* local executor -- add --executor ray"):
        Runner(cfg, toy_registry, ray_address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"needs Ray, which is not installed -- pip install 'latentbench\[ray\]'"):
        Runner(cfg, toy_registry, executor="ray")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_worker_with_other_plugin_code_refuses_to_compute(tmp_path):
    from latentbench.executors import check_same_code

    runner = Runner(parse_run_config(kill_cfg(tmp_path)), toy_registry_with_log())
    ident = runner.identity("attack", "toy_latent")
    check_same_code(runner)  # the same code: nothing to say
    runner._identities[("attack", "toy_latent")] = {**ident, "source_sha256": "0" * 64}  # as if the driver's differed
    with pytest.raises(LatentBenchError, match="attack 'toy_latent' on this Ray worker .* other source code .*"
                                               "-- install the same plugins"):
        check_same_code(runner)
    runner.version = "0.0.0-driver"
    with pytest.raises(LatentBenchError, match="driver has 0.0.0-driver -- install the same latentbench on every node"):
        check_same_code(runner)


def test_the_local_executor_never_imports_ray(tmp_path):
    cfg = kill_cfg(tmp_path, budgets=(0.25,))
    cfg["metrics"] = [{"plugin": "toy_attack_gain"}]
    script = ("import sys, yaml; from tests.harness import toy_plugin; from latentbench.registry import load_registry; "
              "from latentbench.runconfig import parse_run_config; from latentbench.runner import Runner; "
              "s = Runner(parse_run_config(yaml.safe_load(sys.argv[1])), load_registry(extra_plugins=[toy_plugin])).run(); "
              "print(s.computed, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script, yaml.safe_dump(cfg)], capture_output=True, text=True, cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}, timeout=120)
    assert out.stdout.split() == ["1", "False"], out.stderr[-2000:]


def test_ray_address_implies_the_ray_executor():
    import argparse

    assert executor_from(argparse.Namespace(executor=None, ray_address=None)) == {"executor": "local", "ray_address": None}
    assert executor_from(argparse.Namespace(executor=None, ray_address="auto"))["executor"] == "ray"
    assert executor_from(argparse.Namespace(executor="ray", ray_address=None))["executor"] == "ray"


def test_progress_without_a_terminal_prints_plain_lines(tmp_path):
    out = io.StringIO()  # not a terminal
    p = CellProgress(3, "run x", file=out, every_s=0.0)
    p.started(2)
    p.ended(True)
    p.ended(False)
    p.ended(True, was_running=False)
    p.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[-1] == "run x: 3/3 cells (running 0, finished 2, failed 1)"
    assert "run x: 0/3 cells (running 2, finished 0, failed 0)" in lines
    quiet = io.StringIO()
    p = CellProgress(3, "run x", file=quiet)  # lines at most every 30 s: only the last one here
    for _ in range(3):
        p.started()
        p.ended(True)
    p.close()
    assert quiet.getvalue() == "run x: 3/3 cells (running 0, finished 3, failed 0)\n"


def test_local_run_progress_is_one_line_per_interval_off_a_terminal(tmp_path, toy_registry, capsys):
    cfg = kill_cfg(tmp_path, budgets=(0.25, 0.5))
    cfg.update(progress=True, metrics=[{"plugin": "toy_attack_gain"}])
    cfg["models"][0]["train"]["progress"] = False
    s = Runner(parse_run_config(cfg), toy_registry).run()
    err = capsys.readouterr().err
    assert s.computed == 2
    assert "\r" not in err
    assert err.splitlines()[-1] == "run k: 2/2 cells (running 0, finished 2, failed 0)"


@pytest.mark.parametrize("threads", [1, 2])
def test_provenance_records_the_thread_count_at_the_time_of_the_call(threads):
    """verify and Ray workers change torch's thread count within a process; the provenance written
    afterwards must name the count the numbers were computed with (it was once cached at first use)."""
    from latentbench.provenance import provenance

    before = torch.get_num_threads()
    try:
        provenance(device="cpu")
        torch.set_num_threads(3 - threads)
        provenance(device="cpu")
        torch.set_num_threads(threads)
        assert provenance(device="cpu")["hardware"]["torch_threads"] == threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("num_cpus, recorded", [(1, 1), (2, 2), (0.5, 1)])
def test_a_ray_entry_records_its_tasks_threads_not_the_drivers(num_cpus, recorded):
    from latentbench.benchmark import entry_provenance
    from latentbench.executors import RayExecutor

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # the driver's count, which the tasks do not use
        assert entry_provenance(7, "cpu", None)["hardware"]["torch_threads"] == 3
        ray_prov = entry_provenance(7, "cpu", RayExecutor(None, num_cpus, None, 0))
        assert ray_prov["hardware"]["torch_threads"] == recorded and ray_prov["seed"] == 7
        # the machine's cached part is not changed by the entry's override
        assert entry_provenance(7, "cpu", None)["hardware"]["torch_threads"] == 3
    finally:
        torch.set_num_threads(before)
