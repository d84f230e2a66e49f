"""The distribution as a user gets it: one import name, the data files inside, and a wheel that works
outside the repository in a fresh virtual environment.

The fresh environment gets LatentBench from the wheel (non-editable, ``--no-deps``) and its
dependencies (torch, ...) by a path entry pointing at the test environment's site-packages: a path
entry does not run that folder's ``.pth`` files, so the editable install of the source tree stays
invisible, and nothing is downloaded.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

from tests import REPO_ROOT

SOURCES = ("harness", "plugins", "pyproject.toml", "README.md", "LICENSE")


def _copy_sources(dest: Path) -> Path:
    """The files the wheel is built from, copied so the build leaves nothing in the checkout."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    out = tmp / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("latentbench-*.whl")
    return whl


def test_wheel_installs_one_import_name_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    dist_info = [t for t in top if t.endswith(".dist-info")]
    assert len(dist_info) == 1 and top - set(dist_info) == {"latentbench"}, sorted(top)
    for data in ("latentbench/leaderboard/schema.json", "latentbench/leaderboard/template.html",
                 "latentbench/configs/quickstart.yaml", "latentbench/plugins/protocols/digits.py",
                 "latentbench/plugins/protocols/fashion_mnist.py", "latentbench/__main__.py"):
        assert data in names, f"{data} missing from {wheel.name}"
    assert f"{dist_info[0]}/licenses/LICENSE" in names
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info[0]}/entry_points.txt").decode()
    assert "latentbench = latentbench.cli:main" in entry_points
    assert "builtin_models = latentbench.plugins.models" in entry_points


def test_every_source_package_is_listed_in_pyproject():
    """setuptools' discovery does not follow package-dir, so pyproject lists the packages: a new
    folder with an __init__.py that is not listed would be missing from the wheel."""
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in (("harness", "latentbench"), ("plugins", "latentbench.plugins")):
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO_ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed


def test_version_lives_in_one_place():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in meta and "version" in meta["dynamic"]
    from importlib.metadata import version

    import latentbench

    assert version("latentbench") == latentbench.__version__


def test_core_imports_no_builtin_plugin():
    """harness/ is the contract and the engine: no module of it may import latentbench.plugins."""
    offenders = []
    for path in (REPO_ROOT / "harness").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                mods = [str(node.args[0].value)]
            for m in mods:
                if m == "plugins" or m.startswith(("plugins.", "latentbench.plugins")):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {m}")
    assert not offenders, "\n".join(offenders)


def _fresh_env(tmp: Path) -> dict:
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site_dir = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies of the test environment, without its .pth files (no editable install)
    (site_dir / "deps.pth").write_text("\n".join(p for p in site.getsitepackages() if Path(p).is_dir()) + "\n")
    return {"python": py, "site": site_dir, "bin": env_dir / "bin"}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fresh")
    env = _fresh_env(tmp)
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(env["python"]), "install", "--no-deps",
                        "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    work = tmp / "work"  # outside the repository
    work.mkdir()
    return env, work


def _run(env, work, *args, timeout=600):
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LATENTBENCH_STRICT_PLUGINS")}
    return subprocess.run([str(env["bin"] / "latentbench"), *args], capture_output=True, text=True, cwd=work,
                          env={**clean, "OMP_NUM_THREADS": "1"}, timeout=timeout)


def test_installed_wheel_runs_outside_the_repository(installed, registry):
    env, work = installed
    where = subprocess.run([str(env["python"]), "-c", "import latentbench, sys; print(latentbench.__file__); "
                            "import importlib.util as u; print(u.find_spec('harness'), u.find_spec('plugins'))"],
                           capture_output=True, text=True, cwd=work, check=True).stdout.split("\n")
    assert where[0].startswith(str(env["site"])), where  # the wheel, not the source tree
    assert where[1] == "None None"  # nothing installs top-level harness or plugins

    r = _run(env, work, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    provided = {k: set(v) for p in json.loads(r.stdout) for k, v in p["provides"].items()}
    for kind in ("model", "attack", "metric", "dataset", "protocol", "experiment"):
        assert set(registry.names(kind)) <= provided[kind + "s"], kind

    cfg = {"name": "wheel-smoke", "seed": 0, "output_dir": "out", "progress": False,
           "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 200},
           "models": [{"name": "vae", "plugin": "vae", "config": {"latent_dim": 4, "hidden": [32]},
                       "train": {"epochs": 1, "batch_size": 64}}],
           "attacks": [{"name": "md", "plugin": "max_damage", "config": {"steps": 3, "restarts": 1},
                        "budgets": [0.5]}],
           "metrics": [{"plugin": "l2_distance", "config": {"images_per_trial": 10, "trials": 1}}]}
    (work / "run.yaml").write_text(yaml.safe_dump(cfg))
    r = _run(env, work, "run", "run.yaml", "--fail-on-error")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((work / "out" / "results.json").read_text())
    assert [(x["model"], x["metric"], x["attack"], x["status"]) for x in rows] == [("vae", "l2_distance", "md", "ok")]

    lb = work / "lb" / "digits-v1"
    lb.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "leaderboard" / "digits-v1" / "vae.json", lb / "vae.json")
    r = _run(env, work, "leaderboard", "validate", "lb")
    assert r.returncode == 0 and "1 entries in lb: ok" in r.stdout, r.stdout + r.stderr


def test_cli_in_a_folder_with_its_own_plugins_package_keeps_every_builtin(tmp_path, registry):
    """A user's own top-level `plugins` (or `harness`) package must not shadow the built-ins."""
    for pkg in ("plugins", "plugins/models", "harness"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("MINE = True\n")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # `python -m` puts the working folder first on sys.path, where the user's packages are
    r = subprocess.run([sys.executable, "-m", "latentbench", "plugins", "--json"], capture_output=True, text=True,
                       cwd=tmp_path, env=clean, timeout=300)
    assert r.returncode == 0, r.stderr
    provided = {k: set(v) for p in json.loads(r.stdout) for k, v in p["provides"].items()}
    for kind in ("model", "attack", "metric", "dataset", "protocol", "experiment"):
        assert set(registry.names(kind)) <= provided.get(kind + "s", set()), kind
