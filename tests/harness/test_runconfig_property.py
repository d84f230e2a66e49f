"""Property: whatever a run config holds, ``latentbench run CONFIG --check`` either accepts it (exit 0)
or refuses it with exactly one ``latentbench: error:`` line (exit 2), never a traceback.

Random mutations of a valid config (keys dropped, values replaced by other types, NaN, infinities,
negative or huge numbers, unknown names and keys, values wrapped in a list or a mapping) are written
to a YAML file and checked through the command line with the installed plugins. Any exception that
escapes ``main`` fails the test.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentbench.cli import main

VALID = {
    "name": "prop", "seed": 0, "device": "cpu", "output_dir": "runs/prop", "trials": 1, "progress": False,
    "dataset": {"name": "digits", "image_size": 8, "eval_split": "test", "eval_subset": 50, "train_subset": 100,
                "options": {"test_fraction": 0.2}},
    "models": [{"name": "vae", "plugin": "vae", "config": {"backbone": "mlp", "latent_dim": 4, "hidden": [16]},
                "train": {"epochs": 1, "batch_size": 32, "lr": 0.001}},
               {"name": "ae", "plugin": "gmm_dae", "config": {"latent_dim": 10, "hidden": [16]}, "train": {"epochs": 1}}],
    "attacks": [{"name": "lat", "plugin": "latent_space", "config": {"steps": 2, "restarts": 1}, "budgets": [0.5, 1.0]}],
    "metrics": [{"plugin": "spectral_radius"}, {"plugin": "l2_distance", "config": {"images_per_trial": 10, "trials": 1}},
                {"plugin": "downstream_adv_accuracy", "config": {"budgets": [0.1], "steps": 2, "restarts": 1},
                 "attacks": ["lat"]}],
}

WEIRD = [None, float("nan"), float("inf"), float("-inf"), -1, 0, -1e-9, 0.5, 10**12, 10**30, 1e308, True, "x",
         "no_such_plugin", "", [], {}, [1, "a"], {"a": 1}, [None], {"name": None},
         # valid names in the wrong place: other datasets, splits, backbones, a protocol
         "grid2d", "fashion-mnist", "train", "conv", "digits-v1"]
OPS = ["drop", "replace", "insert_key", "wrap_list", "wrap_map", "misspell"]


def paths(node, prefix=()):
    """Every location in the tree: (path of keys/indices) for each dict value and list item."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def mutate(cfg, pick: int, op: str, value):
    locs = list(paths(cfg))
    path = locs[pick % len(locs)]
    if not path:  # the root: replace the whole config or add a key to it
        return value if op == "replace" else {**cfg, "no_such_key": value}
    parent = cfg
    for k in path[:-1]:
        parent = parent[k]
    key, old = path[-1], parent[path[-1]]
    if op == "drop":
        del parent[key]
    elif op == "replace":
        parent[key] = value
    elif op == "insert_key":
        target = old if isinstance(old, dict) else parent
        if isinstance(target, dict):
            target["no_such_key"] = value
        else:
            target.append(value)
    elif op == "wrap_list":
        parent[key] = [old]
    elif op == "wrap_map":
        parent[key] = {"value": old}
    elif op == "misspell":
        parent[key] = old + "x" if isinstance(old, str) else value
    return cfg


def run_check(cfg) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "run.yaml"
        p.write_text(yaml.safe_dump(cfg))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["run", str(p), "--check"])
        assert not (Path(d) / "runs").exists()
    return rc, err.getvalue()


def test_the_unmutated_config_passes_the_check():
    rc, err = run_check(copy.deepcopy(VALID))
    assert rc == 0 and err == ""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(OPS), st.sampled_from(WEIRD)), min_size=1, max_size=3))
def test_any_mutation_is_accepted_or_refused_in_one_line(mutations):
    cfg = copy.deepcopy(VALID)
    for pick, op, value in mutations:
        cfg = mutate(cfg, pick, op, copy.deepcopy(value))
        if not isinstance(cfg, dict):
            break
    rc, err = run_check(cfg)
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("latentbench: error: "), err
    assert "Traceback" not in err
