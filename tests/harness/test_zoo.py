"""`latentbench.load_model` and `latentbench zoo`: leaderboard checkpoints by name, sha256-checked."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import latentbench
from latentbench.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint, sha256_file
from latentbench.cli import main
from latentbench.errors import CheckpointError, ConfigError
from tests import REPO_ROOT

PROTOCOL = "digits-v2"
SHIPPED = "robust_dae"  # any digits-v2 entry with a checkpoint kept in git


@pytest.fixture
def tiny_zoo(tmp_path, registry):
    """A leaderboard folder with one digits-v2 entry and its checkpoint (a tiny random VAE)."""
    lb = tmp_path / "leaderboard"
    cls = registry.model("vae")
    torch.manual_seed(0)
    model = cls(cls.config_class.from_dict({"input_shape": [1, 8, 8], "latent_dim": 4, "hidden": [16]})).eval()
    rel = f"runs/leaderboard-checkpoints/{PROTOCOL}/tiny"
    save_checkpoint(model, tmp_path / rel)
    entry = {"name": "tiny", "protocol": {"name": PROTOCOL, "version": "2"},
             "model": {"plugin": "vae", "config": model.config.to_dict()},
             "checkpoint": {"path": rel, "sha256": sha256_file(tmp_path / rel / WEIGHTS_FILE), "regenerate": "x"}}
    (lb / PROTOCOL).mkdir(parents=True)
    (lb / PROTOCOL / "tiny.json").write_text(json.dumps(entry))
    return lb, model, tmp_path / rel


def test_a_shipped_entry_loads_as_its_checkpoint_folder_does():
    entry = json.loads((REPO_ROOT / "leaderboard" / PROTOCOL / f"{SHIPPED}.json").read_text())
    direct = load_checkpoint(REPO_ROOT / entry["checkpoint"]["path"])
    model = latentbench.load_model(SHIPPED, PROTOCOL)  # the source checkout's leaderboard/
    assert type(model) is type(direct) and not model.training
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), direct.reconstruct(x))


def test_load_model_round_trips_an_entry(tiny_zoo):
    lb, model, _ = tiny_zoo
    loaded = latentbench.load_model("tiny", PROTOCOL, leaderboard=lb)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))


def test_a_tampered_checkpoint_is_refused(tiny_zoo):
    lb, _, folder = tiny_zoo
    weights = folder / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last tensor: still a readable safetensors file
    weights.write_bytes(bytes(data))
    load_checkpoint(folder)  # loads: only the entry's sha256 tells
    with pytest.raises(CheckpointError, match="has sha256 .* the entry records .*weights were changed or replaced"):
        latentbench.load_model("tiny", PROTOCOL, leaderboard=lb)


def test_a_path_outside_the_checkpoint_roots_is_not_read(tiny_zoo):
    lb, _, _ = tiny_zoo
    p = lb / PROTOCOL / "tiny.json"
    entry = json.loads(p.read_text())
    entry["checkpoint"]["path"] = "../outside/tiny"
    p.write_text(json.dumps(entry))
    with pytest.raises(CheckpointError, match="has a '..' component; refusing to read it"):
        latentbench.load_model("tiny", PROTOCOL, leaderboard=lb)


def test_a_missing_checkpoint_names_its_rebuild_command(tiny_zoo, capsys):
    lb, _, folder = tiny_zoo
    shutil.rmtree(folder)
    with pytest.raises(CheckpointError) as e:
        latentbench.load_model("tiny", PROTOCOL, leaderboard=lb)
    msg = str(e.value)
    assert "\n" not in msg and "is not here" in msg
    assert f"latentbench benchmark --protocol {PROTOCOL} --model vae --name tiny" in msg
    assert f"--save-checkpoint runs/leaderboard-checkpoints/{PROTOCOL}/tiny" in msg


def test_unknown_names_are_named(tiny_zoo):
    lb, _, _ = tiny_zoo
    with pytest.raises(ConfigError, match="no entry 'tiyn' under digits-v2; did you mean tiny"):
        latentbench.load_model("tiyn", PROTOCOL, leaderboard=lb)
    with pytest.raises(ConfigError, match="no zoo entries under protocol 'digits-v9'.*use one of: digits-v2"):
        latentbench.load_model("tiny", "digits-v9", leaderboard=lb)


def test_zoo_command_lists_entries_and_their_checkpoint_status(tiny_zoo, capsys):
    lb, _, folder = tiny_zoo
    shutil.copytree(lb / PROTOCOL, lb / "digits-v1")  # the same entry filed under another protocol
    p = lb / "digits-v1" / "tiny.json"
    p.write_text(p.read_text().replace('"name": "digits-v2"', '"name": "digits-v1"'))
    (folder / WEIGHTS_FILE).write_bytes(b"not the weights")
    assert main(["zoo", "--leaderboard", str(lb), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["protocol"], r["name"], r["checkpoint"]) for r in rows] == \
        [("digits-v1", "tiny", "sha256 mismatch"), (PROTOCOL, "tiny", "sha256 mismatch")]
    shutil.rmtree(folder)
    assert main(["zoo", "--leaderboard", str(lb), "--protocol", PROTOCOL]) == 0
    out = capsys.readouterr().out
    assert "| digits-v2" in out and "missing" in out and "digits-v1" not in out


def test_zoo_command_errors_are_one_line(tmp_path, capsys):
    assert main(["zoo", "--leaderboard", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentbench: error:") and "does not exist" in err and " -- " in err and "\n" not in err
