"""`latentbench benchmark`: clean reconstruction MSE, the entry's metadata, the regenerate command."""

import shlex

import pytest
import torch
from tests.harness.leaderboard.conftest import CHEAP_ENTRY, ROOT, read

from latentbench.benchmark import BenchmarkRequest, clean_reconstruction, regenerate_command
from latentbench.checkpoint import WEIGHTS_FILE, load_checkpoint, sha256_file
from latentbench.cli import build_parser
from latentbench.errors import ConfigError
from latentbench.model import LatentGaussian
from latentbench.training import TrainConfig


class _Halver(torch.nn.Module):
    """encode = identity code, decode = half the code: the reconstruction error is x / 2."""

    def encode(self, x):
        return LatentGaussian(x.flatten(1), None)

    def decode(self, z):
        return 0.5 * z.reshape(-1, 1, 3, 3)


def test_clean_reconstruction_against_numpy():
    x = torch.rand(7, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    got = clean_reconstruction(_Halver(), x, batch_size=3)  # batches of 3, 3, 1
    per_image = ((0.5 * x.double().numpy()) ** 2).reshape(7, -1).mean(axis=1)
    assert got["mse"] == pytest.approx(per_image.mean(), rel=1e-6)
    assert got["mse_std"] == pytest.approx(per_image.std(), rel=1e-6)
    assert got["n_images"] == 7


def test_shipped_entry_records_its_checkpoint_and_clean_mse(registry):
    entry = read(CHEAP_ENTRY)
    ck = ROOT / entry["checkpoint"]["path"]
    assert sha256_file(ck / WEIGHTS_FILE) == entry["checkpoint"]["sha256"]
    assert entry["model"]["plugin"] == "vae" and entry["model"]["distribution"] == "latentbench"
    assert entry["protocol"] == {"name": "digits-v1", "version": registry.protocol("digits-v1").version}
    assert entry["reproduced"] is None or entry["reproduced"]["status"] in ("reproduced", "mismatch")
    # clean MSE recomputed by hand on the protocol's subset (300 test images drawn from seed 0)
    from latentbench.data import DatasetConfig

    split = registry.dataset("digits")(DatasetConfig()).load("test").subset(300, 0, "digits/test")
    model = load_checkpoint(ck, registry)
    with torch.no_grad():
        rec = model.decode(model.encode(split.x).mean).double().numpy()
    mse = ((rec - split.x.double().numpy()) ** 2).reshape(300, -1).mean(axis=1).mean()
    assert entry["reported"]["clean"]["mse"] == pytest.approx(mse, rel=1e-5)
    assert entry["reported"]["clean"]["n_images"] == 300


def test_regenerate_command_parses_back_to_the_same_request():
    req = BenchmarkRequest(protocol="digits-v1", model="vae", name="my-vae",
                           config={"latent_dim": 10, "backbone": "mlp", "hidden": [128, 128], "beta": 0.5},
                           train=TrainConfig(epochs=40, batch_size=64), save_checkpoint_to="ck/my-vae")
    argv = shlex.split(regenerate_command(req))
    assert argv[:2] == ["latentbench", "benchmark"]
    args = build_parser().parse_args(argv[1:])
    from latentbench.cli.options import parse_set

    assert parse_set(args.set) == req.config
    assert (args.protocol, args.model, args.name, args.train_epochs, args.batch_size, args.save_checkpoint) == \
        ("digits-v1", "vae", "my-vae", 40, 64, "ck/my-vae")


def test_request_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of --model"):
        BenchmarkRequest(protocol="digits-v1").validate()
    with pytest.raises(ConfigError, match="exactly one of --model"):
        BenchmarkRequest(protocol="digits-v1", model="vae", checkpoint="x").validate()


def test_cli_rejects_training_flags_with_a_checkpoint(capsys):
    from latentbench.cli import main

    assert main(["benchmark", "--protocol", "digits-v1", "--checkpoint", "x", "--train-epochs", "3"]) == 2
    assert "--config/--set/--train-epochs apply to a model being trained" in capsys.readouterr().err
