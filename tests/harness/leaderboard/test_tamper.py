"""`leaderboard verify` catches tampering: a tiny entry (digits, MLP [16] VAE, 1 epoch, 40 images, a
few-step ensemble) written by `latentbench benchmark` under a tiny protocol, then edited the way a
dishonest submitter would. Every changed number is a mismatch (exit 1), `--write` records it as
such, and what cannot be compared at all (other protocol or package version, other weights) is an
error (exit 2)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tests.harness.leaderboard.conftest import read, write

from latentbench import hookimpl
from latentbench.benchmark import BenchmarkRequest, evaluate
from latentbench.cli import main
from latentbench.leaderboard import perimage
from latentbench.plugins.protocols._headline import headline_metric
from latentbench.plugins.protocols.digits import V2_CLASSIFIER
from latentbench.protocol import Protocol
from latentbench.training import TrainConfig

TINY = Protocol(
    name="tiny-v1", version="1", description="test protocol: 40 digits, a few-step ensemble, FID of 200 samples",
    dataset={"name": "digits", "eval_split": "test", "eval_subset": 40},
    metrics=({**headline_metric(V2_CLASSIFIER, [0.5, 1.0]),
              "config": {**headline_metric(V2_CLASSIFIER, [0.5, 1.0])["config"], "ce_steps": 3, "ce_restarts": 1,
                         "latent_targets": 1, "latent_steps": 3, "max_damage_steps": 3, "random_queries": 5,
                         "check_subset": 8, "chunk": 4}},
             {"plugin": "fid", "config": {"n_samples": 200, "feature_extractor": "domain"}}),
    # exact, except FID's cell: the domain features and the eigendecompositions run on a multithreaded
    # BLAS, and two re-runs at the tests' two threads on a loaded machine differed by 3e-9 relative in
    # FID, 4e-7 in KID and 1.4e-8 absolute in the bootstrap bias (-0.0422029 vs -0.0422030): the digits
    # protocols' default bound, far below the 0.05 the FID tampering test moves it
    tolerances={"default": {"abs": 0.0, "rel": 0.0}, "fid": {"abs": 1e-6, "rel": 1e-6}},
    source="tests")


class _TinyProtocolPlugin:
    @hookimpl
    def latentbench_protocols(self):
        return [TINY]


@pytest.fixture(scope="module")
def tiny_registry():
    from latentbench.registry import load_registry

    return load_registry(extra_plugins=[_TinyProtocolPlugin()])


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory, tiny_registry):
    """leaderboard/tiny-v1/vae.json and its checkpoint under a fresh repository root."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("repo")
    entry = evaluate(BenchmarkRequest(protocol="tiny-v1", model="vae", name="vae",
                                      config={"backbone": "mlp", "hidden": [16], "latent_dim": 4},
                                      train=TrainConfig(epochs=1, batch_size=64), work_dir=str(root / "work"),
                                      save_checkpoint_to=str(root / "leaderboard/checkpoints/tiny-v1/vae")),
                     tiny_registry, repo_root=root)
    torch.set_num_threads(threads)
    p = root / "leaderboard" / "tiny-v1" / "vae.json"
    p.parent.mkdir(parents=True)
    write(p, entry)
    # one results store for every test's re-runs: a full re-run of the same checkpoint reuses its cells
    # (the comparison is what the tests are about), which keeps each test to a few seconds
    _WORK["dir"] = str(root / "vwork")
    return p


@pytest.fixture
def entry(tiny_entry, tmp_path, tiny_registry, monkeypatch):
    """A copy of the tiny entry (with its checkpoint) to tamper with; the CLI sees the tiny protocol."""
    monkeypatch.setattr("latentbench.registry.get_registry", lambda *a, **k: tiny_registry)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    shutil.copytree(tiny_entry.parent.parent, tmp_path / "leaderboard")
    yield tmp_path / "leaderboard" / "tiny-v1" / "vae.json"
    torch.set_num_threads(before)


def _record(data, metric):
    return next(r for r in data["reported"]["results"] if r["metric"] == metric)


_WORK: dict[str, str] = {}


def verify(p, *extra):
    return main(["leaderboard", "verify", str(p), "--work-dir", _WORK["dir"], *extra])


def test_untouched_entry_passes_both_modes_and_write_stamps_checked_then_reproduced(entry, capsys):
    data = read(entry)
    assert data["schema_version"] == 2 and len(data["data_digest"]) == 64
    assert verify(entry, "--images", "10", "--images-seed", "3", "--write") == 0
    out = capsys.readouterr().out
    # whole chunks of 4 images are recomputed: 3 chunks hold the 10 asked for
    assert "12 images recomputed, --images-seed 3" in out and "mismatch" not in out
    # FID and the clean MSE have no per-image records: not re-computed in this mode, and said so
    assert "number(s) without per-image records were not re-computed; `--full` re-runs the whole protocol" in out
    written = read(entry)
    assert written["reproduced"]["status"] == "checked" and written["unreliable"] is False
    indices = written["reproduced"]["images"]["indices"]
    assert written["reproduced"]["images"]["seed"] == 3 and len(indices) == 12
    starts = indices[::4]
    assert indices == [s + j for s in starts for j in range(4)] and all(s % 4 == 0 for s in starts)  # whole chunks
    assert verify(entry, "--full", "--write") == 0
    written = read(entry)
    assert written["reproduced"]["status"] == "reproduced" and written["reproduced"]["mode"] == "full"
    # the bulky parts stay in `reported` only
    rec = next(r for r in written["reproduced"]["results"] if r["metric"] == "robust_accuracy")
    assert "per_image" not in rec and "examples" not in rec["info"]


@pytest.mark.parametrize("key", ["robust_accuracy@0.5", "clean_accuracy", "robust_accuracy_mean"])
@pytest.mark.parametrize("delta", [0.05, 0.01, 0.001])
def test_a_raised_accuracy_is_a_mismatch_and_never_stamped_reproduced(entry, capsys, key, delta):
    data = read(entry)
    old = _record(data, "robust_accuracy")["values"][key]
    _record(data, "robust_accuracy")["values"][key] = old + delta
    write(entry, data)
    assert verify(entry, "--images", "4", "--write") == 1
    out = capsys.readouterr().out
    assert f"MISMATCH robust_accuracy: {key} (from per-image records): reported {old + delta}, reproduced {old}" in out
    assert "1 mismatch(es)" in out
    written = read(entry)
    assert written["reproduced"]["status"] == "mismatch" and written["unreliable"] is True
    assert [d["field"] for d in written["reproduced"]["differences"]] == [
        f"robust_accuracy: {key} (from per-image records)"]
    # the full re-run finds it too
    assert verify(entry, "--full", "--write") == 1
    assert f"MISMATCH robust_accuracy: {key}: reported {old + delta}" in capsys.readouterr().out
    assert read(entry)["reproduced"]["status"] == "mismatch"


def test_a_lowered_fid_is_a_mismatch_of_the_full_re_run(entry, capsys):
    data = read(entry)
    old = _record(data, "fid")["values"]["fid"]
    _record(data, "fid")["values"]["fid"] = old - 0.05
    write(entry, data)
    assert verify(entry, "--full", "--write") == 1
    out = capsys.readouterr().out
    assert f"MISMATCH fid: fid: reported {old - 0.05}, reproduced " in out
    written = read(entry)
    assert written["reproduced"]["status"] == "mismatch" and written["unreliable"] is True
    # the images mode does not vouch for FID: it passes, and its --write never says `reproduced`
    assert verify(entry, "--images", "4", "--write") == 0
    assert read(entry)["reproduced"]["status"] == "checked"


def test_consistently_edited_records_are_caught_by_the_recomputed_images(entry, capsys):
    """Records and aggregates changed together (one broken image claimed robust): consistent, so
    only recomputing that image exposes it."""
    data = read(entry)
    rec = _record(data, "robust_accuracy")
    records = perimage.decode(rec["per_image"])
    i = int(np.flatnonzero(records["robust@1"] == 0)[0])
    records["clean_correct"][i] = 1
    for k in ("first_breaking_attack@0.5", "first_breaking_attack@1"):
        records[k][i] = -1
    records.update(_robust(records))
    rec["per_image"] = perimage.encode(records)
    from latentbench.plugins.metrics.robust_accuracy import RobustAccuracy

    rec["values"].update(RobustAccuracy.aggregate_images(records, rec["metric_config"]))
    write(entry, data)
    assert verify(entry, "--images", "40") == 1  # every image recomputed
    out = capsys.readouterr().out
    assert "(from per-image records): reported" not in out  # the aggregates agree with the records
    assert f"MISMATCH robust_accuracy: per_image.robust@1: reported {{{i}: 1}}, reproduced {{{i}: 0}}" in out


def _robust(records):
    from latentbench.plugins.metrics.robust_accuracy import robust_flags

    return robust_flags(records, [0.5, 1.0])


def test_other_evaluation_data_is_a_mismatch(entry, capsys):
    data = read(entry)
    data["data_digest"] = "0" * 64
    write(entry, data)
    assert verify(entry, "--images", "2") == 1
    assert f"MISMATCH data_digest: reported {'0' * 64}" in capsys.readouterr().out


@pytest.mark.parametrize("field,value,words", [
    ("protocol.version", "0", ["tiny-v1 version '0'", "is version '1'", "re-run `latentbench benchmark`"]),
    ("provenance.latentbench_version", "0.0.9", ["made by latentbench 0.0.9", "this is latentbench",
                                                 "only compared within one major.minor version"]),
])
def test_an_entry_of_another_version_is_refused(entry, capsys, field, value, words):
    data = read(entry)
    section, key = field.split(".")
    data[section][key] = value
    write(entry, data)
    assert verify(entry) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentbench: error: ") and len(err.strip().splitlines()) == 1
    assert all(w in err for w in words), err


def test_other_weights_are_refused(entry, capsys):
    weights = entry.parent.parent / "checkpoints" / "tiny-v1" / "vae" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    assert verify(entry) == 2
    err = capsys.readouterr().err
    assert "these are different weights" in err and read(entry)["checkpoint"]["sha256"] in err


def test_per_image_encoding_round_trips_and_is_compact():
    rng = np.random.default_rng(0)
    rec = {"flag": rng.integers(0, 2, 1000).astype(np.int8), "first": rng.integers(-1, 4, 1000).astype(np.int8),
           "score": rng.random(1000).astype(np.float32)}
    block = perimage.encode(rec)
    assert block["arrays"]["flag"]["dtype"] == "bits" and len(block["arrays"]["flag"]["data"]) < 200
    back = perimage.decode(json.loads(json.dumps(block)))
    for k, v in rec.items():
        assert back[k].dtype.kind == v.dtype.kind and (back[k] == v).all()
