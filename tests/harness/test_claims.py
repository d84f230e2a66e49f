"""Claimed cells (issue #17): runs sharing a results store never compute a cell twice, and a claim
left by a killed process is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from latentbench import Metric, MetricConfig, MetricResult, hookimpl
from latentbench.registry import load_registry
from latentbench.runconfig import parse_run_config
from latentbench.runner import Runner
from latentbench.store import ResultStore
from tests import REPO_ROOT
from tests.harness import toy_plugin


@dataclass
class SlowConfig(MetricConfig):
    seconds: float = 0.0
    #: every computation appends its model's name here: an independent count of the work done
    log: str = ""


class SlowMetric(Metric):
    name = "slow_count"
    config_class = SlowConfig
    needs = frozenset({"model", "data"})

    def compute(self, ctx):
        time.sleep(self.config.seconds)
        with open(self.config.log, "a") as f:
            f.write(f"{ctx.model.config.latent_dim}\n")
        return MetricResult({"latent_dim": float(ctx.model.config.latent_dim)})


class SlowPlugin:
    @staticmethod
    @hookimpl
    def latentbench_metrics():
        return [SlowMetric]


def grid_cfg(tmp_path, seconds, models=2):
    return {"name": "c", "output_dir": str(tmp_path / "out"), "progress": False,
            "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 64},
            "models": [{"name": f"m{i}", "plugin": "toy_ae", "config": {"latent_dim": 2 + i},
                        "train": {"epochs": 1, "progress": False}} for i in range(models)],
            "attacks": [{"name": "lat", "plugin": "toy_latent", "budgets": [0.25, 0.5]}],
            "metrics": [{"plugin": "slow_count", "config": {"seconds": seconds, "log": str(tmp_path / "computed.log")}},
                        {"plugin": "toy_attack_gain"}]}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_claim_is_exclusive_and_lapses_with_its_owner(tmp_path):
    host = socket.gethostname()
    live = f"{host}:{os.getppid()}:other"  # a process that exists (the one that started pytest)
    me = f"{host}:{os.getpid()}:me"
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert st.claim("k", live, 60)
        assert not st.claim("k", me, 60)  # held by a live owner, unexpired
        assert st.claim_owner("k") == live
        st.release("k", me)  # only the owner releases
        assert st.claim_owner("k") == live
        st.release("k", live)
        assert st.claim("k", me, 60) and st.claim_owner("k") == me
        # an expired claim is taken over, whoever holds it (here: a live owner on another host)
        assert st.claim("e", "elsewhere:1:x", -1)
        assert st.claim("e", me, 60)
        assert st.claim("f", "elsewhere:1:x", 60)
        assert not st.claim("f", me, 60)  # unexpired on another host: nobody can tell it is dead
        # a claim of a process on this host that has exited is taken at once, long before it expires
        assert st.claim("d", f"{host}:{_dead_pid()}:gone", 3600)
        assert st.claim("d", me, 60) and st.claim_owner("d") == me


def test_cell_claimed_by_another_run_is_waited_for_not_computed(tmp_path, capsys):
    """A live owner holds one cell's claim; this run does the rest, waits, then takes the result the
    owner stores instead of computing it."""
    registry = load_registry(extra_plugins=[toy_plugin, SlowPlugin])
    cfg = grid_cfg(tmp_path, 0.0, models=1)
    first = Runner(parse_run_config(cfg), registry).run()  # computes the 3 cells and the model
    slow_row = next(r for r in first.rows if r["metric"] == "slow_count")
    other = f"{socket.gethostname()}:{os.getppid()}:other-run"
    with ResultStore(tmp_path / "out" / "results.sqlite") as st:
        st.conn.execute("DELETE FROM results WHERE key = ?", (slow_row["key"],))  # as if never computed
        assert st.claim(slow_row["key"], other, 3600)
    (tmp_path / "computed.log").unlink()

    def other_run_finishes():
        time.sleep(1.0)
        with ResultStore(tmp_path / "out" / "results.sqlite") as st:
            st.put({**slow_row, "values": {"latent_dim": 2.0}, "seconds": 0.5})
            st.release(slow_row["key"], other)

    t = threading.Thread(target=other_run_finishes)
    t.start()
    start = time.perf_counter()
    s = Runner(parse_run_config(cfg), registry).run()
    t.join()
    assert (s.computed, s.reused, s.failed) == (0, 3, 0)
    assert time.perf_counter() - start >= 1.0  # it waited for the owner
    assert not (tmp_path / "computed.log").exists()  # and never computed the claimed cell itself
    assert "waiting for 1 cells that another run" in capsys.readouterr().err
    assert [r["metric"] for r in s.rows] == [r["metric"] for r in first.rows]  # rows in grid order


def test_two_concurrent_runs_compute_every_cell_once(tmp_path):
    cfg = grid_cfg(tmp_path, 1.0)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    ready = tmp_path / "ready"
    ready.mkdir()
    # both processes import and load the data, then start the run together (a file barrier), on one store
    script = ("import sys, time, pathlib; from tests.harness import toy_plugin as toy; "
              "from tests.harness.test_claims import SlowPlugin; from latentbench.registry import load_registry; "
              "from latentbench.runconfig import load_run_config; from latentbench.runner import Runner; "
              "runner = Runner(load_run_config(sys.argv[1]), load_registry(extra_plugins=[toy, SlowPlugin])); "
              "runner.split('train'); runner.split(runner.cfg.dataset.eval_split); "
              "r = pathlib.Path(sys.argv[2]); (r / sys.argv[3]).touch(); "
              "[time.sleep(0.02) for _ in iter(lambda: len(list(r.iterdir())) < 2, False)]; "
              "s = runner.run(); print('SUMMARY', s.computed, s.reused, s.failed)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(p), str(ready), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT) for name in ("a", "b")]
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [o[1][-2000:] for o in outs]
    sums = [tuple(map(int, o[0].split("SUMMARY")[1].split())) for o in outs]
    n_cells = 2 * (1 + 2)  # per model: slow_count, toy_attack_gain at two budgets
    assert sum(s[0] for s in sums) == n_cells, sums  # computed: once each, across both runs
    assert all(s[0] + s[1] == n_cells and s[2] == 0 for s in sums), sums  # each run reports every cell
    # the independent count: slow_count ran once per model, not once per model per run
    assert sorted(Path(tmp_path / "computed.log").read_text().split()) == ["2", "3"]
    with ResultStore(tmp_path / "out" / "results.sqlite") as st:
        assert len(list(st.rows())) == n_cells
        assert st.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # every claim released
    assert len(list((tmp_path / "out" / "cache" / "models").iterdir())) == 2  # one folder per model
