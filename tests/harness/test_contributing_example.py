"""The plugin example in CONTRIBUTING.md is real: install it as a distribution, list it, run it."""

from __future__ import annotations

import json
import re

import yaml

from tests.harness.test_registry import cli, make_dist
from tests import REPO_ROOT

ROOT = REPO_ROOT


def blocks(lang: str) -> list[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_contributing_example_plugin_installs_lists_and_runs(tmp_path):
    source = next(b for b in blocks("python") if "latentbench_example/__init__.py" in b)
    root = tmp_path / "site"
    make_dist(root, "latentbench-example", "latentbench_example", source, version="0.1.0")
    # the entry point name in the docs' pyproject block is what we register
    toml = next(b for b in blocks("toml") if "entry-points.latentbench" in b)
    assert 'example = "latentbench_example"' in toml
    (root / "latentbench_example-0.1.0.dist-info" / "entry_points.txt").write_text("[latentbench]\nexample = latentbench_example\n")
    r = cli(["plugins", "--json"], root)
    assert r.returncode == 0, r.stderr
    ex = {p["name"]: p for p in json.loads(r.stdout)}["example"]
    assert ex["provides"] == {"models": ["tiny_ae"], "attacks": ["latent_push"], "metrics": ["code_shift"]}
    cfg = yaml.safe_load(next(b for b in blocks("yaml") if "code_shift" in b))
    cfg.update(output_dir=str(tmp_path / "out"), progress=False)
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = cli(["run", str(p), "--fail-on-error"], root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 cells computed" in r.stdout and "code_shift" in r.stdout
