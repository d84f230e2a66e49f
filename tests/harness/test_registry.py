"""Out-of-tree plugins through the `latentbench` entry-point group, with real dist-info folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from latentbench.errors import PluginError, UnknownComponentError
from latentbench.registry import load_registry

EXT_SOURCE = textwrap.dedent('''
    from dataclasses import dataclass
    import torch
    from torch import nn
    from latentbench import (Attack, AttackConfig, Autoencoder, LatentGaussian, Metric, MetricConfig,
                         MetricResult, ModelConfig, hookimpl)

    @dataclass
    class ExtConfig(ModelConfig):
        pass

    class ExtAE(Autoencoder):
        name = "ext_ae"
        config_class = ExtConfig
        def __init__(self, config):
            super().__init__(config)
            n = int(torch.tensor(config.input_shape).prod())
            self.enc = nn.Linear(n, config.latent_dim)
            self.dec = nn.Linear(config.latent_dim, n)
        def encode(self, x):
            return LatentGaussian(self.enc(x.flatten(1)), None)
        def decode(self, z):
            return torch.sigmoid(self.dec(z)).view(-1, *self.config.input_shape)
        def loss(self, x, y=None):
            return {"loss": ((self.reconstruct(x) - x) ** 2).mean()}

    class ExtAttack(Attack):
        name = "ext_shift"
        config_class = AttackConfig
        def perturb(self, x, y=None, target=None):
            from latentbench.perturbation import project
            x_adv = project(x, x + self.config.eps, self.config.eps, self.config.norm)
            obj = (self.model.encode(x_adv).mean - self.model.encode(x).mean).norm(dim=1)
            return self.make_result(x, x_adv, obj, 2, 0)

    @dataclass
    class ExtMetricConfig(MetricConfig):
        pass

    class ExtMetric(Metric):
        name = "ext_gain"
        config_class = ExtMetricConfig
        needs = frozenset({"model", "data", "attack"})
        def compute(self, ctx):
            r = ctx.attack(ctx.x)
            return MetricResult({"gain": float(r.objective.mean())})

    @hookimpl
    def latentbench_models():
        return [ExtAE]

    @hookimpl
    def latentbench_attacks():
        return [ExtAttack]

    @hookimpl
    def latentbench_metrics():
        return [ExtMetric]
''')


#: a second distribution: a metric that declares its leaderboard value (direction and range) and a
#: protocol that runs it, on the first distribution's model and attack. Nothing in LatentBench names it.
EXT_LEADERBOARD_SOURCE = textwrap.dedent('''
    from dataclasses import dataclass
    from latentbench import LeaderboardValue, Metric, MetricConfig, MetricResult, hookimpl
    from latentbench.protocol import Protocol

    @dataclass
    class KeptConfig(MetricConfig):
        radius: float = 0.5

    class ExtKept(Metric):
        """Share of images whose latent code the attack moves less than ``radius``."""
        name = "ext_kept"
        config_class = KeptConfig
        needs = frozenset({"model", "data", "attack"})
        # a share: in [0, 1], and more kept codes is more robust
        leaderboard = (LeaderboardValue("kept", "kept share", better="higher", range=(0.0, 1.0)),)
        def compute(self, ctx):
            r = ctx.attack(ctx.x)
            return MetricResult({"kept": float((r.objective < self.config.radius).double().mean())})

    EXT_DIGITS = Protocol(
        name="ext-digits-v1", version="1", description="ext_kept under ext_shift on 30 digits",
        dataset={"name": "digits", "eval_split": "test", "eval_subset": 30, "train_subset": 100},
        attacks=({"name": "shift", "plugin": "ext_shift", "config": {}, "budgets": [0.05]},),
        metrics=({"plugin": "ext_kept"},),
        rank_by={"metric": "ext_kept", "value": "kept", "attack": "shift", "budget": 0.05})

    @hookimpl
    def latentbench_metrics():
        return [ExtKept]

    @hookimpl
    def latentbench_protocols():
        return [EXT_DIGITS]
''')


def make_dist(root: Path, dist: str, module: str, source: str, version: str = "0.3") -> None:
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"  # wheel naming: no dashes in the name part
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[latentbench]\n{module} = {module}\n")
    (info / "RECORD").write_text("")


def cli(args, root: Path, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]), **(env_extra or {})}
    env.pop("LATENTBENCH_STRICT_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "latentbench", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or root, timeout=300)  # outside the repository: only the installed package is importable


@pytest.fixture
def ext_root(tmp_path):
    root = tmp_path / "site"
    make_dist(root, "latentbench-ext", "lb_ext", EXT_SOURCE)
    return root


def test_plugins_command_lists_out_of_tree_distribution(ext_root):
    r = cli(["plugins", "--json"], ext_root)
    assert r.returncode == 0, r.stderr
    plugins = {p["name"]: p for p in json.loads(r.stdout)}
    ext = plugins["lb_ext"]
    assert ext["distribution"] == "latentbench-ext" and ext["version"] == "0.3"
    assert ext["provides"] == {"models": ["ext_ae"], "attacks": ["ext_shift"], "metrics": ["ext_gain"]}
    r = cli(["plugins"], ext_root)
    assert "lb_ext" in r.stdout and "ext_ae" in r.stdout


def test_run_uses_out_of_tree_plugins(ext_root, tmp_path):
    cfg = {"name": "ext", "output_dir": str(tmp_path / "out"), "progress": False,
           "dataset": {"name": "digits", "eval_subset": 30, "train_subset": 100},
           "models": [{"name": "e", "plugin": "ext_ae", "config": {"latent_dim": 3}, "train": {"epochs": 1}}],
           "attacks": [{"name": "shift", "plugin": "ext_shift", "config": {"eps": 0.05}}],
           "metrics": [{"plugin": "ext_gain"}]}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = cli(["run", str(p), "--fail-on-error"], ext_root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ext_gain" in r.stdout and "1 cells computed" in r.stdout


def test_out_of_tree_metric_gets_a_leaderboard_column_and_range_check(ext_root, tmp_path):
    """A third-party metric's declaration (direction, range) reaches `leaderboard render` and
    `leaderboard validate` with no change to LatentBench: the entry comes from `latentbench
    benchmark` under the third-party protocol."""
    make_dist(ext_root, "latentbench-ext-leaderboard", "lb_ext_lb", EXT_LEADERBOARD_SOURCE)
    lb = tmp_path / "lb"
    entry = lb / "ext-digits-v1" / "ext.json"
    r = cli(["benchmark", "--protocol", "ext-digits-v1", "--model", "ext_ae", "--set", "latent_dim=3",
             "--train-epochs", "1", "--name", "ext", "--out", str(entry), "--work-dir", str(tmp_path / "work"),
             "--no-progress"], ext_root)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(entry.read_text())
    assert [(x["metric"], x["attack"], x["budget"]) for x in data["reported"]["results"]] == [
        ("ext_kept", "shift", 0.05)]
    assert 0.0 <= data["reported"]["results"][0]["values"]["kept"] <= 1.0

    r = cli(["leaderboard", "validate", str(lb)], ext_root)
    assert r.returncode == 0 and "1 entries in" in r.stdout, r.stdout + r.stderr
    r = cli(["leaderboard", "render", str(lb)], ext_root)
    assert r.returncode == 0, r.stdout + r.stderr
    md = (lb / "LEADERBOARD.md").read_text()
    section = md[md.index("## ext-digits-v1"):]
    # the declared label, after the attack and budget, with the declared direction's arrow; and the
    # protocol's rank_by is the default order
    assert "| shift λ=0.05 kept share ↑ |" in " ".join(section.split())
    assert "Sorted by shift λ=0.05 kept share ↑." in section
    page = (lb / "index.html").read_text()
    assert "<th class='num' data-better='higher'>shift λ=0.05 kept share ↑</th>" in page

    data["reported"]["results"][0]["values"]["kept"] = 1.5
    entry.write_text(json.dumps(data))
    r = cli(["leaderboard", "validate", str(lb)], ext_root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("ext-digits-v1/ext.json: reported.results[0].values.kept (ext_kept x shift@0.05): 1.5 is outside [0, 1]"
            in r.stdout.splitlines()), r.stdout


def test_disable_autoload_env_skips_third_party(ext_root):
    r = cli(["plugins", "--json"], ext_root, {"LATENTBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0, r.stderr
    names = [p["name"] for p in json.loads(r.stdout)]
    assert "lb_ext" not in names and "builtin_datasets" in names


def _with_path(monkeypatch, root):
    monkeypatch.syspath_prepend(str(root))
    import importlib

    importlib.invalidate_caches()


def test_plugin_raising_on_import_is_reported_and_skipped(tmp_path, monkeypatch):
    make_dist(tmp_path, "broken-plugin", "lb_broken", "raise ImportError('needs libfoo')\n")
    make_dist(tmp_path, "latentbench-ext", "lb_ext", EXT_SOURCE)
    _with_path(monkeypatch, tmp_path)
    with pytest.warns(RuntimeWarning, match="lb_broken.*needs libfoo"):
        reg = load_registry()
    info = {p.name: p for p in reg.plugins}["lb_broken"]
    assert info.distribution == "broken-plugin" and "needs libfoo" in info.error
    assert "ext_ae" in reg.names("model")  # the others still load
    with pytest.raises(PluginError, match="lb_broken.*broken-plugin.*needs libfoo"):
        load_registry(strict=True)
    monkeypatch.setenv("LATENTBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_registry()


def test_bad_hook_signature_is_reported(tmp_path, monkeypatch):
    src = "from latentbench import hookimpl\n\n@hookimpl\ndef latentbench_models(config):\n    return []\n"
    make_dist(tmp_path, "badsig", "lb_badsig", src)
    _with_path(monkeypatch, tmp_path)
    with pytest.warns(RuntimeWarning, match="lb_badsig.*config"):
        reg = load_registry()
    assert "does not provide" in {p.name: p for p in reg.plugins}["lb_badsig"].error
    with pytest.raises(PluginError, match="lb_badsig"):
        load_registry(strict=True)


def test_unknown_hook_name_is_reported(tmp_path, monkeypatch):
    src = "from latentbench import hookimpl\n\n@hookimpl\ndef latentbench_modles():\n    return []\n"
    make_dist(tmp_path, "typo", "lb_typo", src)
    _with_path(monkeypatch, tmp_path)
    with pytest.raises(PluginError, match="unknown hook 'latentbench_modles'"):
        load_registry(strict=True)


def test_duplicate_component_name_names_both_plugins(tmp_path, monkeypatch):
    make_dist(tmp_path, "latentbench-ext", "lb_ext", EXT_SOURCE)
    dup = EXT_SOURCE.replace("latentbench_attacks", "_x").replace("latentbench_metrics", "_y")
    make_dist(tmp_path, "latentbench-ext2", "lb_ext2", dup)
    _with_path(monkeypatch, tmp_path)
    with pytest.raises(PluginError, match=r"model name 'ext_ae' is provided by two plugins: 'lb_ext2?' and 'lb_ext2?'"):
        load_registry()


def test_unknown_component_suggests_close_names(toy_registry):
    with pytest.raises(UnknownComponentError, match=r"unknown model 'toy_aa' at 'models\[0\].plugin'.*Did you mean: toy_ae"):
        toy_registry.model("toy_aa", path="models[0].plugin")
