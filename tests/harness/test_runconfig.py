"""Run config: one model shape (run, train and benchmark files), parsed once, validated once; the
runner carries the typed configs validation built and never rebuilds them."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest

import latentbench.typed_config as tc_mod
from latentbench.errors import ConfigError
from latentbench.runconfig import (AttackBudget, ModelSpec, TrainRunConfig, load_run_config, parse_model_spec,
                                   parse_run_config, parse_train_config, validate_run_config)
from latentbench.runner import Runner
from latentbench.store import cell_key
from latentbench.typed_config import to_plain
from tests.harness import toy_plugin as toy


def raw_cfg(tmp_path, **over):
    c = {"name": "rc", "output_dir": str(tmp_path / "out"), "progress": False,
         "dataset": {"name": "digits", "eval_subset": 20, "train_subset": 64},
         "models": [{"name": f"m{i}", "plugin": "toy_ae", "config": {"latent_dim": 2 + i},
                     "train": {"epochs": 1, "progress": False}} for i in range(2)],
         "attacks": [{"name": "lat", "plugin": "toy_latent", "config": {"steps": 2}, "budgets": [0.25, 0.5]}],
         "metrics": [{"plugin": "toy_recon"}, {"plugin": "toy_attack_gain"}]}
    c.update(over)
    return c


def test_validation_builds_every_typed_config(tmp_path, toy_registry):
    cfg = parse_run_config(raw_cfg(tmp_path))
    assert cfg.models[0].typed_config is None and cfg.attacks[0].typed_configs == []
    validate_run_config(cfg, toy_registry)
    m = cfg.models[0].typed_config
    assert isinstance(m, toy.ToyConfig) and m.latent_dim == 2 and m.input_shape == (1, 8, 8)  # shape from the dataset
    assert [(ab.budget, type(ab.config), ab.config.eps, ab.config.steps) for ab in cfg.attacks[0].typed_configs] == \
        [(0.25, toy.ToyAttackConfig, 0.25, 2), (0.5, toy.ToyAttackConfig, 0.5, 2)]
    assert isinstance(cfg.metrics[0].typed_config, toy.ToyMetricConfig)
    assert isinstance(cfg.metrics[1].typed_config, toy.ToyAdvConfig)
    # without budgets the config's own eps is the one budget
    cfg = parse_run_config(raw_cfg(tmp_path, attacks=[{"name": "lat", "plugin": "toy_latent", "config": {"eps": 0.1}}]))
    validate_run_config(cfg, toy_registry)
    assert [ab.budget for ab in cfg.attacks[0].typed_configs] == [0.1]
    # the typed configs are derived, not keys: run_config.json keeps what the user wrote
    plain = to_plain(cfg)
    assert "typed_configs" not in plain["attacks"][0] and "typed_config" not in plain["models"][0]


@pytest.fixture
def build_counts(monkeypatch):
    """Count build_dataclass calls per built class, wherever the function was imported by name."""
    real = tc_mod.build_dataclass
    counts: Counter = Counter()

    def counting(cls, data, path="config"):
        counts[cls.__name__] += 1
        return real(cls, data, path)

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("latentbench") and getattr(mod, "build_dataclass", None) is real:
            monkeypatch.setattr(mod, "build_dataclass", counting)
    return counts


def test_one_attack_config_per_budget_built_once_and_reused_by_the_runner(tmp_path, toy_registry, build_counts,
                                                                          monkeypatch):
    seen_attack, seen_metric = [], []
    a_init, m_init = toy.ToyLatentAttack.__init__, toy.ToyAttackGain.__init__

    def attack_init(self, model, config=None, generator=None, **kw):
        seen_attack.append(config)
        a_init(self, model, config, generator=generator, **kw)

    def metric_init(self, config=None, **kw):
        seen_metric.append(config)
        m_init(self, config, **kw)

    monkeypatch.setattr(toy.ToyLatentAttack, "__init__", attack_init)
    monkeypatch.setattr(toy.ToyAttackGain, "__init__", metric_init)
    runner = Runner(parse_run_config(raw_cfg(tmp_path)), toy_registry)
    s = runner.run()
    assert (s.computed, s.failed) == (6, 0)  # 2 models x (toy_recon + toy_attack_gain x 2 budgets)
    # one attack config per budget, one config per metric, one per model: built once for the whole run
    assert build_counts["ToyAttackConfig"] == 2
    assert build_counts["ToyMetricConfig"] == 1 and build_counts["ToyAdvConfig"] == 1
    assert build_counts["ToyConfig"] == 2
    # ... and the attacks and metrics of every cell received those very objects
    budgets = runner.cfg.attacks[0].typed_configs
    assert len(seen_attack) == 4 and {id(c) for c in seen_attack} == {id(ab.config) for ab in budgets}
    assert len(seen_metric) == 4 and all(c is runner.cfg.metrics[1].typed_config for c in seen_metric)


def test_cell_keys_hash_the_typed_configs(tmp_path, toy_registry):
    runner = Runner(parse_run_config(raw_cfg(tmp_path)), toy_registry)
    s = runner.run()
    by_key = {r["key"]: r for r in s.rows}
    attack_rows = [r for r in s.rows if r["attack"]]
    assert len(attack_rows) == 4
    for r in s.rows:
        spec = r["config"]["cell"]
        assert cell_key(spec) == r["key"] and by_key[r["key"]] is r
        assert spec["metric_config"] == to_plain(next(m.typed_config for m in runner.cfg.metrics if m.plugin == r["metric"]))
    for r in attack_rows:
        ab = next(ab for ab in runner.cfg.attacks[0].typed_configs if ab.budget == r["budget"])
        assert r["config"]["cell"]["attack_config"] == to_plain(ab.config)
        # the key is what it was when the runner rebuilt the config from the YAML dict per budget
        raw = {**{"steps": 2}, "eps": r["budget"]}
        assert r["config"]["cell"]["attack_config"] == to_plain(tc_mod.build_dataclass(toy.ToyAttackConfig, raw))
    written = json.loads((tmp_path / "out" / "run_config.json").read_text())
    assert written["attacks"][0] == {"name": "lat", "plugin": "toy_latent", "config": {"steps": 2}, "budgets": [0.25, 0.5]}


def test_a_bad_budget_fails_validation_before_any_work(tmp_path, toy_registry):
    cfg = parse_run_config(raw_cfg(tmp_path, attacks=[{"name": "lat", "plugin": "toy_latent", "budgets": [0.5, -1.0]}]))
    with pytest.raises(ConfigError, match=r"attacks\[0\].config.*eps must be >= 0"):
        Runner(cfg, toy_registry)
    assert not (tmp_path / "out").exists()


def test_model_entry_is_one_shape_everywhere():
    entry = {"name": "v", "plugin": "vae", "config": {"latent_dim": 4}, "train": {"epochs": 3}}
    from_run = parse_run_config({"models": [entry]}).models[0]
    from_train = parse_train_config({"model": entry, "dataset": {"name": "digits"}, "output": "ck"}).model
    from_benchmark = parse_model_spec(entry)
    assert from_run == from_train == from_benchmark
    assert from_run.train.epochs == 3 and from_run.config == {"latent_dim": 4}
    # the label defaults to the plugin, or the checkpoint folder's name
    assert parse_model_spec({"plugin": "vae"}).name == "vae"
    assert parse_model_spec({"checkpoint": "ck/my-model"}).name == "my-model"
    assert isinstance(parse_train_config({}), TrainRunConfig) and parse_train_config({}).model == ModelSpec()


def test_errors_name_the_key_path(toy_registry):
    with pytest.raises(ConfigError, match=r"'t.yaml.model.train.epochs'.*expected an integer"):
        parse_train_config({"model": {"plugin": "toy_ae", "train": {"epochs": "many"}}}, "t.yaml")
    with pytest.raises(ConfigError, match=r"'c.yaml.models\[0\]'.*expected a mapping, got str 'vae'"):
        parse_run_config({"models": ["vae"]}, "c.yaml")
    with pytest.raises(ConfigError, match=r"'m.yaml.confg'.*did you mean config"):
        parse_model_spec({"plugin": "vae", "confg": {}}, "m.yaml")


def test_old_shapes_get_one_error_saying_how_to_write_them():
    with pytest.raises(ConfigError, match=r"old shape.*write 'model:' as a run config's model entry") as e:
        parse_train_config({"model": "vae", "config": {"latent_dim": 8}, "train": {"epochs": 30}, "output": "ck"})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"'train config.model'.*expected a mapping.*'models:'"):
        parse_train_config({"model": ["vae"]})
    with pytest.raises(ConfigError, match=r"bare model config fields \(latent_dim\).*under 'config:'") as e:
        parse_model_spec({"latent_dim": 10})
    assert "\n" not in str(e.value)


def test_shipped_quickstart_parses_to_typed_specs(registry):
    cfg = load_run_config("quickstart")
    validate_run_config(cfg, registry)
    assert all(isinstance(ab, AttackBudget) for a in cfg.attacks for ab in a.typed_configs)
    assert [len(a.typed_configs) for a in cfg.attacks] == [len(a.budgets) for a in cfg.attacks]
    assert all(m.typed_config.input_shape == (1, 8, 8) for m in cfg.models)
