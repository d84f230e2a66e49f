"""`latentbench.evaluate`: any autoencoder in one call (issue 14), on digits-v2 with a few images.

The headline numbers are checked against independent computations with the protocol's reference
classifier on the same images; a plain nn.Module (no LatentBench base class) with a built-in
model's weights gives that model's numbers, cell for cell.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import latentbench
from latentbench.api import ModelShapeError, adapt
from latentbench.checkpoint import state_hash
from latentbench.data import DatasetConfig
from latentbench.errors import ConfigError, LatentBenchError
from latentbench.training import TrainConfig, train

PROTOCOL = "digits-v2"
N = 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Whole-protocol runs on 16 images are many tiny ops, where a second thread only adds
    synchronisation: 5x slower on a loaded 2-core machine (102 s against 21 s per evaluation)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def eval_images(registry):
    """The first N of digits-v2's seeded draw, read independently of the runner."""
    proto = registry.protocol(PROTOCOL)
    data = registry.dataset("digits")(DatasetConfig(options=dict(proto.dataset["options"])))
    s = data.load_subset("test", N, proto.seed, "digits/test")
    return s.x, s.y


@pytest.fixture(scope="module")
def classifier(registry):
    from latentbench.plugins.metrics._reference_classifier import load_reference_classifier

    cfg = next(m["config"] for m in registry.protocol(PROTOCOL).metrics if m["plugin"] == "robust_accuracy")
    clf, _ = load_reference_classifier(cfg["classifier"], cfg["classifier_sha256"], torch.device("cpu"))
    return clf


def clean_accuracy(clf, recon, y) -> float:
    with torch.no_grad():
        return int((clf(recon).argmax(1) == y).sum()) / len(y)


@pytest.fixture(scope="module")
def vae(registry):
    """A tiny built-in VAE trained for one epoch on digits-v2's training half."""
    proto = registry.protocol(PROTOCOL)
    cls = registry.model("vae")
    torch.manual_seed(0)
    model = cls(cls.config_class.from_dict({"input_shape": [1, 8, 8], "latent_dim": 4, "hidden": [16]}))
    data = registry.dataset("digits")(DatasetConfig(options=dict(proto.dataset["options"]))).load("train")
    train(model, data, TrainConfig(epochs=1, progress=False))
    return model.eval()


class PlainVAE(nn.Module):
    """No LatentBench base class: encode returns (mean, log_var), decode images in [0, 1]."""

    def __init__(self, vae):
        super().__init__()
        self.encoder, self.decoder, self.k = copy.deepcopy(vae.encoder), copy.deepcopy(vae.decoder), vae.latent_dim

    def encode(self, x):
        h = self.encoder(x)
        return h[:, : self.k], h[:, self.k:].clamp(-30, 20)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))


@pytest.fixture(scope="module")
def builtin_result(vae, tmp_path_factory):
    return latentbench.evaluate(vae, PROTOCOL, n_examples=N, progress=False, name="tiny",
                                store=tmp_path_factory.mktemp("builtin"))


def test_builtin_autoencoder_headline_against_the_reference_classifier(builtin_result, vae, eval_images, classifier):
    r = builtin_result
    x, y = eval_images
    with torch.no_grad():
        recon = vae.decode(vae.encode(x).mean)
    assert r.n_images == N and r.n_examples == N and not r.comparable
    assert r.clean_accuracy.value == pytest.approx(clean_accuracy(classifier, recon, y), abs=1e-12)
    p = r.clean_accuracy.value
    assert r.clean_accuracy.se == pytest.approx(math.sqrt(p * (1 - p) / N))
    assert r.clean["mse"] == pytest.approx(((recon - x) ** 2).flatten(1).mean(1).mean().item(), rel=1e-6)
    # the curve: one point per ε of the protocol, never above clean accuracy, never rising
    eps = [e for e, _, _ in r.curve]
    accs = [a for _, a, _ in r.curve]
    assert eps == [0.25, 0.5, 1.0]
    assert all(a <= p for a in accs) and accs == sorted(accs, reverse=True)
    assert r.robust_accuracy.value == pytest.approx(np.mean(accs))
    lo, hi = r.robust_accuracy.ci95
    assert hi - lo == pytest.approx(2 * 1.96 * r.robust_accuracy.se)
    # the main table of the protocol, in its order, and every cell
    assert r.headline[0].name.startswith("robust rec. acc.") and r.rank_by.value == r.robust_accuracy.value
    assert len(r.cells) == 17 and not r.failures
    text = r.table()
    assert "clean rec. acc." in text and "not comparable" in text


def test_plain_module_gives_the_numbers_of_the_same_weights_as_a_plugin(builtin_result, vae, tmp_path):
    plain = PlainVAE(vae)
    r = latentbench.evaluate(plain, PROTOCOL, n_examples=N, progress=False, name="tiny", store=tmp_path)
    assert r.computed == 17  # its own cells (another weights file), not the plugin's
    got = {(c["metric"], c["attack"], c["budget"]): c["values"] for c in r.cells}
    want = {(c["metric"], c["attack"], c["budget"]): c["values"] for c in builtin_result.cells}
    assert got.keys() == want.keys()
    for cell, values in want.items():
        assert got[cell] == pytest.approx(values, rel=1e-6, abs=1e-9), cell
    assert r.clean == pytest.approx(builtin_result.clean)


def test_a_second_call_reuses_the_store(builtin_result, vae):
    again = latentbench.evaluate(vae, PROTOCOL, n_examples=N, progress=False, name="tiny", store=builtin_result.store)
    assert (again.computed, again.reused) == (0, 17)
    assert again.to_json()["headline"] == builtin_result.to_json()["headline"]
    assert json.loads(json.dumps(again.to_json()))["rank_by"]["value"] == builtin_result.robust_accuracy.value


class SpatialCodec(nn.Module):
    """Images in [-1, 1], codes (B, 2, 4, 4)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.down = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1)


def spatial_model(net):
    return latentbench.wrap(lambda x: net.down(x), lambda z: torch.tanh(net.up(z)), input_range=(-1, 1),
                            latent_shape=(2, 4, 4))


def test_the_adapter_maps_ranges_and_flattens_spatial_codes():
    net, seen = SpatialCodec(), {}

    def encode(x):
        seen["encode_in"] = x
        return net.down(x)

    def decode(z):
        seen["decode_in"] = z
        return torch.tanh(net.up(z))

    model = adapt(latentbench.wrap(encode, decode, input_range=(-1, 1), latent_shape=(2, 4, 4)), (1, 8, 8),
                  torch.device("cpu"))
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        q = model.encode(x)
        out = model.decode(q.mean)
        code = net.down(x * 2 - 1)
    assert torch.equal(seen["encode_in"], x * 2 - 1)
    assert q.mean.shape == (3, 32) and q.std is None and torch.equal(q.mean, code.flatten(1))
    assert seen["decode_in"].shape == (3, 2, 4, 4) and torch.equal(seen["decode_in"], code)
    assert torch.allclose(out, (torch.tanh(net.up(code)) + 1) / 2)
    assert model.latent_dim == 32
    # batch_size: the same codes and images, two images at a time
    small = adapt(latentbench.wrap(encode, decode, input_range=(-1, 1)), (1, 8, 8), torch.device("cpu"), batch_size=2)
    with torch.no_grad():
        assert torch.equal(small.encode(x).mean, q.mean) and torch.allclose(small.decode(q.mean), out)
    assert seen["decode_in"].shape == (1, 2, 4, 4)  # the last of the batches of 2


def test_wrap_with_a_spatial_code_and_the_minus_one_one_range(eval_images, classifier, tmp_path):
    net = SpatialCodec()
    r = latentbench.evaluate(spatial_model(net), PROTOCOL, n_examples=N, progress=False, store=tmp_path)
    assert not r.failures and len(r.cells) == 17
    x, y = eval_images
    with torch.no_grad():
        recon = (torch.tanh(net.up(net.down(x * 2 - 1))) + 1) / 2
    assert r.clean_accuracy.value == pytest.approx(clean_accuracy(classifier, recon, y), abs=1e-12)
    assert r.clean["mse"] == pytest.approx(((recon - x) ** 2).flatten(1).mean(1).mean().item(), rel=1e-6)


def test_changed_weights_or_settings_change_the_key():
    net = SpatialCodec()

    def key(**kw):
        m = latentbench.wrap(lambda x: net.down(x), lambda z: torch.tanh(net.up(z)), latent_shape=(2, 4, 4), **kw)
        return state_hash(adapt(m, (1, 8, 8), torch.device("cpu")))

    first = key(input_range=(-1, 1))
    assert key(input_range=(-1, 1)) == first
    assert key(input_range=(0, 1)) != first
    with torch.no_grad():
        net.up.bias += 1
    assert key(input_range=(-1, 1)) != first


class DictEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 4)

    def encode(self, x):
        return {"z": self.lin(x.flatten(1)), "mu": None}

    def decode(self, z):
        return z


def test_a_model_that_fits_no_shape_gets_one_error_naming_each(tmp_path):
    with pytest.raises(ModelShapeError) as e:
        latentbench.evaluate(DictEncoder(), PROTOCOL, n_examples=N, progress=False, store=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, LatentBenchError)
    assert "(1) a latentbench.Autoencoder: it is not one" in msg
    assert "encode returned a dict with keys ['mu', 'z']; expected a tensor, a (mean, log_var) pair" in msg
    assert "(3) latentbench.wrap(" in msg and " -- " in msg
    assert not any(tmp_path.iterdir())  # refused before any work
    class EncodeOnly(nn.Module):
        def encode(self, x):
            return x

    with pytest.raises(ModelShapeError, match="it has no decode method"):
        latentbench.evaluate(EncodeOnly(), PROTOCOL, n_examples=N, store=tmp_path)


def test_decode_of_the_wrong_shape_is_refused(tmp_path):
    model = latentbench.wrap(lambda x: x.flatten(1), lambda z: z)  # decode returns flat vectors
    with pytest.raises(ModelShapeError, match=r"\(2\) an nn.Module .*: it is a wrap\(\) result, see \(3\); \(3\) "
                                              r"latentbench.wrap\(.*\): decode returned images of shape \(64,\), the "
                                              r"protocol's images are \(1, 8, 8\)"):
        latentbench.evaluate(model, PROTOCOL, n_examples=N, store=tmp_path)


def test_bad_arguments_are_named(tmp_path):
    model = latentbench.wrap(lambda x: x.flatten(1), lambda z: z.view(-1, 1, 8, 8))
    with pytest.raises(ConfigError, match="n_examples.*below the protocol's 898 evaluation images"):
        latentbench.evaluate(model, PROTOCOL, n_examples=898, store=tmp_path)
    with pytest.raises(ConfigError, match="Ray workers never unpickle a model"):
        latentbench.evaluate(model, PROTOCOL, executor="ray", store=tmp_path)
    with pytest.raises(ConfigError, match=r"use \(0, 1\) or \(-1, 1\)"):
        latentbench.wrap(lambda x: x, lambda z: z, input_range=(0, 255))


def test_to_entry_refuses_a_subset_result_and_another_name(builtin_result, tmp_path):
    with pytest.raises(LatentBenchError, match="computed on n_examples=16 images.*without n_examples"):
        builtin_result.to_entry(tmp_path / "leaderboard" / PROTOCOL / "tiny.json")
    full = copy.copy(builtin_result)
    full.comparable, full.n_examples = True, None
    with pytest.raises(LatentBenchError, match="differs from the name 'tiny'"):
        full.to_entry(tmp_path / "leaderboard" / PROTOCOL / "other.json", name="other")
    with pytest.raises(ConfigError, match="is not <leaderboard>/digits-v2/tiny.json"):
        full.to_entry(tmp_path / "tiny.json")


@pytest.mark.slow
def test_to_entry_writes_an_entry_validate_accepts(vae, tmp_path, capsys):
    """The whole protocol (898 images): about 4 minutes on 2 CPU cores, 10 under load."""
    from latentbench.checkpoint import load_checkpoint
    from latentbench.cli import main

    r = latentbench.evaluate(vae, PROTOCOL, progress=False, name="tiny", store=tmp_path / "store")
    assert r.comparable and r.n_images == 898
    out = r.to_entry(tmp_path / "repo" / "leaderboard" / PROTOCOL / "tiny.json", paper="https://example.org")
    assert main(["leaderboard", "validate", str(tmp_path / "repo" / "leaderboard")]) == 0, capsys.readouterr()

    entry = json.loads(out.read_text())
    assert entry["model"]["plugin"] == "vae" and entry["provenance"]["cells_reused"] == 17
    ck = tmp_path / "repo" / entry["checkpoint"]["path"]
    assert entry["checkpoint"]["path"] == f"runs/leaderboard-checkpoints/{PROTOCOL}/tiny"
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(load_checkpoint(ck).reconstruct(x), vae.reconstruct(x))


def test_the_readme_three_line_example_runs_as_written(monkeypatch, tmp_path, capsys):
    """README's "Python API" block, executed line for line with a shipped zoo entry; only the image
    count and the store folder are set here (the whole protocol takes a minute)."""
    import functools
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len([l for l in block.splitlines() if l.strip()]) == 4 and "load_model(" in block and "evaluate(" in block
    monkeypatch.setattr(latentbench, "evaluate", functools.partial(
        latentbench.evaluate, n_examples=N, progress=False, store=tmp_path))
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    # the printed table names the headline numbers and gives intervals
    assert "clean" in out and "robust" in out and "±" in out
