"""Bad input gets an error that names the problem and the fix."""

from __future__ import annotations

import pickle

import pytest
import torch
import yaml

from latentbench.checkpoint import load_checkpoint, save_checkpoint
from latentbench.cli import main
from latentbench.errors import CheckpointError, ConfigError, UnknownComponentError
from latentbench.runconfig import load_run_config, parse_run_config, validate_run_config


def cfg(**over):
    c = {"dataset": {"name": "digits"}, "models": [{"name": "m", "plugin": "toy_ae"}],
         "attacks": [{"name": "a", "plugin": "toy_latent"}], "metrics": [{"plugin": "toy_recon"}]}
    c.update(over)
    return c


def check(raw, registry):
    validate_run_config(parse_run_config(raw), registry)


def test_broken_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("models: [\n  - name: x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_run_config(tmp_path / "nope.yaml")


def test_unknown_top_level_key_suggests(toy_registry):
    with pytest.raises(ConfigError, match=r"'config.modles'.*did you mean models"):
        check({**cfg(), "modles": []}, toy_registry)


def test_unknown_model_plugin_names_path_and_suggestion(toy_registry):
    with pytest.raises(UnknownComponentError, match=r"unknown model 'toy_ea' at 'models\[0\].plugin'.*toy_ae"):
        check(cfg(models=[{"name": "m", "plugin": "toy_ea"}]), toy_registry)


def test_unknown_metric_and_attack(toy_registry):
    with pytest.raises(UnknownComponentError, match=r"metrics\[0\].plugin.*toy_recon"):
        check(cfg(metrics=[{"plugin": "toy_recoon"}]), toy_registry)
    with pytest.raises(UnknownComponentError, match=r"attacks\[0\].plugin"):
        check(cfg(attacks=[{"name": "a", "plugin": "pgd_nope"}]), toy_registry)
    with pytest.raises(UnknownComponentError, match=r"metrics\[0\].attacks\[0\]"):
        check(cfg(metrics=[{"plugin": "toy_attack_gain", "attacks": ["b"]}]), toy_registry)


def test_wrong_type_in_plugin_config(toy_registry):
    with pytest.raises(ConfigError, match=r"models\[0\].config.latent_dim.*expected an integer"):
        check(cfg(models=[{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": "ten"}}]), toy_registry)
    with pytest.raises(ConfigError, match=r"attacks\[0\].config.eps.*expected a number"):
        check(cfg(attacks=[{"name": "a", "plugin": "toy_latent", "config": {"eps": "big"}}]), toy_registry)
    with pytest.raises(ConfigError, match=r"attacks\[0\].config.*unknown norm"):
        check(cfg(attacks=[{"name": "a", "plugin": "toy_latent", "config": {"norm": "l3"}}]), toy_registry)
    with pytest.raises(ConfigError, match=r"models\[0\].train.epochs"):
        check(cfg(models=[{"name": "m", "plugin": "toy_ae", "train": {"epochs": 1.5}}]), toy_registry)


def test_unknown_dataset(toy_registry):
    with pytest.raises(UnknownComponentError, match=r"dataset 'fashion_mnist' at 'dataset.name'.*fashion-mnist"):
        check(cfg(dataset={"name": "fashion_mnist"}), toy_registry)


def test_model_needs_plugin_or_checkpoint(toy_registry, tmp_path):
    with pytest.raises(ConfigError, match="exactly one of 'plugin'"):
        check(cfg(models=[{"name": "m"}]), toy_registry)
    with pytest.raises(ConfigError, match="does not exist"):
        check(cfg(models=[{"name": "m", "checkpoint": str(tmp_path / "none")}]), toy_registry)


def test_attack_metric_without_attacks(toy_registry):
    with pytest.raises(ConfigError, match="needs an attack"):
        check(cfg(attacks=[], metrics=[{"plugin": "toy_attack_gain"}]), toy_registry)


def _toy_model(**kw):
    from tests.harness import toy_plugin as toy

    torch.manual_seed(0)
    return toy.ToyAE(toy.ToyConfig(input_shape=(1, 8, 8), latent_dim=3, **kw))


def test_checkpoint_round_trip_is_bit_identical(tmp_path, toy_registry):
    m = _toy_model().eval()
    save_checkpoint(m, tmp_path / "ck")
    m2 = load_checkpoint(tmp_path / "ck", toy_registry)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(m.encode(x).mean, m2.encode(x).mean)
    assert torch.equal(m.encode(x).std, m2.encode(x).std)
    assert torch.equal(m.reconstruct(x), m2.reconstruct(x))
    assert isinstance(m2.config, type(m.config)) and m2.config == m.config


def test_checkpoint_wrong_shape(tmp_path, toy_registry):
    import json

    save_checkpoint(_toy_model(), tmp_path / "ck")
    c = json.loads((tmp_path / "ck" / "config.json").read_text())
    c["config"]["latent_dim"] = 5
    (tmp_path / "ck" / "config.json").write_text(json.dumps(c))
    with pytest.raises(CheckpointError, match=r"shape mismatch enc.weight: checkpoint \(3, 64\) vs model \(5, 64\)"):
        load_checkpoint(tmp_path / "ck", toy_registry)


def test_checkpoint_config_of_wrong_type(tmp_path, toy_registry):
    import json

    save_checkpoint(_toy_model(), tmp_path / "ck")
    c = json.loads((tmp_path / "ck" / "config.json").read_text())
    c["config"]["unknown_field"] = 1
    (tmp_path / "ck" / "config.json").write_text(json.dumps(c))
    with pytest.raises(CheckpointError, match="unknown_field"):
        load_checkpoint(tmp_path / "ck", toy_registry)


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_pickle_files_are_refused_never_unpickled(tmp_path, toy_registry):
    f = tmp_path / "model.pt"
    f.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(f, toy_registry)
    d = tmp_path / "ck"
    d.mkdir()
    (d / "weights.pth").write_bytes(pickle.dumps(Boom()))
    (d / "config.json").write_text('{"model": "toy_ae", "config": {}}')
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(d, toy_registry)
    # a pickle disguised with the safetensors name is rejected by the safetensors parser, not executed
    (d / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(d, toy_registry)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"dataset": {"name": "digitz"}, "models": [{"name": "m", "plugin": "vae"}]}))
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'digitz'" in err and "digits" in err and "Traceback" not in err


def test_unusable_device(toy_registry):
    with pytest.raises(ConfigError, match="not a torch device"):
        check(cfg(device="gpu0"), toy_registry)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no usable CUDA device.*device: cpu"):
            check(cfg(device="cuda"), toy_registry)
