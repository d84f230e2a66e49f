"""Throughput of every built-in attack on a Fashion-MNIST-sized (1x28x28) MLP autoencoder, and batched
restarts against the same restarts run one after another (ratio in extra_info).

Each attack runs with its config's defaults, capped by ``CAPS`` for any config that has the field.

Run: python -m pytest tests/benchmarks/test_bench_attacks.py --benchmark-only
"""

import dataclasses
import math
import time

import pytest
import torch
from torch import nn

from latentbench.attack import frozen
from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins.attacks import ATTACKS
from tests.benchmarks._versus import versus

SHAPE = (1, 28, 28)
B = 32


class BenchMLPAE(Autoencoder):
    """784-256-256 tanh encoder (mean, softplus std, latent 32), mirrored sigmoid decoder (Khan & Storkey App. A)."""

    name = "bench_mlp_ae"

    def __init__(self):
        super().__init__(ModelConfig(input_shape=SHAPE, latent_dim=32))
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh())
        self.mu, self.sd = nn.Linear(256, 32), nn.Linear(256, 32)
        self.dec = nn.Sequential(nn.Linear(32, 256), nn.Tanh(), nn.Linear(256, 784), nn.Sigmoid())

    def encode(self, x):
        h = self.enc(x.reshape(x.shape[0], -1))
        return LatentGaussian(self.mu(h), nn.functional.softplus(self.sd(h)) + 1e-3)

    def decode(self, z):
        return self.dec(z).reshape(z.shape[0], *SHAPE)


#: upper bounds on config fields, applied to every attack whose config has the field: the defaults
#: (e.g. 200 steps x 10 restarts) would make one benchmark round take minutes
CAPS = {"steps": 20, "restarts": 4}


def settings(cls) -> dict:
    """Overrides of ``cls``'s config defaults: every capped field it has, at min(default, cap)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls.config_class)}
    return {k: min(defaults[k], cap) for k, cap in CAPS.items() if k in defaults}


@pytest.fixture(scope="module")
def setup():
    model = BenchMLPAE().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand((B, *SHAPE), generator=g)
    target = torch.rand((B, *SHAPE), generator=g)
    probe = nn.Linear(32, 10)
    # the headline ensemble's attacks classify reconstructed images, downstream_pgd classifies codes
    image_clf = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 10))
    with torch.no_grad():
        y = probe(model.encode(x).mean).argmax(1)
        y_img = image_clf(model.reconstruct(x)).argmax(1)
    return model, probe, x, y, target, image_clf, y_img


#: attacks whose classifier takes images (through the autoencoder), not codes
IMAGE_CLASSIFIER = {"reconstruction_ce", "random_search"}
#: attacks whose objective runs the decoder too (their floor is encoder + decoder passes)
THROUGH_DECODER = IMAGE_CLASSIFIER | {"max_damage"}


def _run(cls, setup, **kw):
    model, probe, x, y, target, image_clf, y_img = setup
    on_images = cls.name in IMAGE_CLASSIFIER
    clf = (image_clf if on_images else probe) if cls.needs_classifier else None
    atk = cls(model, generator=torch.Generator().manual_seed(0), classifier=clf, **kw)
    return atk(x, y=y_img if on_images else y, target=target if cls.targeted else None)


@pytest.mark.parametrize("cls", ATTACKS, ids=lambda c: c.name)
def test_bench_attack_throughput(benchmark, cls, setup):
    kw = settings(cls)
    benchmark.pedantic(_run, args=(cls, setup), kwargs=kw, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = B / benchmark.stats.stats.mean
    benchmark.extra_info["settings"] = kw
    print(f"\n{cls.name}: {B / benchmark.stats.stats.mean:.1f} images/s with {kw}")


# attacks that are one objective optimisation: their restarts are the base class's batched restarts
OBJECTIVE_ATTACKS = [c for c in ATTACKS if c.objective is not None]


@pytest.mark.parametrize("cls", OBJECTIVE_ATTACKS, ids=lambda c: c.name)
def test_bench_batched_vs_sequential_restarts(benchmark, cls, setup):
    """R = 8 restarts in one batched call against the same 8 restarts as 8 calls (the reference), and
    against the floor: 8 x (steps + 1) bare forward+backward passes of the objective's network on the
    R*B batch, which no implementation of the same restarts can undercut on this hardware."""
    R = 8
    kw = dict(settings(cls), restarts=R)
    seq_kw = dict(kw, restarts=1)

    def sequential():
        for _ in range(R):
            _run(cls, setup, **seq_kw)

    cmp = versus(benchmark, lambda: _run(cls, setup, **kw), sequential, rounds=5)
    floor = _floor_seconds(setup, R, kw.get("steps", 1), on_images=cls.name in THROUGH_DECODER)
    # no implementation of the batched restarts can beat the floor, so sequential / floor bounds the
    # speed-up any batching could reach on this hardware
    benchmark.extra_info.update({"sequential_over_batched": cmp.speedup, "batched_over_floor": cmp.subject_s / floor,
                                 "floor_s": floor, "speedup_bound": cmp.reference_s / floor})
    print(f"\n{cls.name}: {R} restarts batched {cmp.subject_s * 1e3:.0f} ms, one after another "
          f"{cmp.reference_s * 1e3:.0f} ms -> {cmp.speedup:.2f}x; bare forward+backward floor {floor * 1e3:.0f} ms "
          f"(batched = {cmp.subject_s / floor:.2f}x the floor; no batching can exceed "
          f"{cmp.reference_s / floor:.2f}x)")
    # regression floor: 1.64-2.04x measured at one thread (the goal of 3x exceeds what the
    # floor allows for max_damage and needs a zero-overhead step for the others)
    assert cmp.speedup >= 1.4


def _floor_seconds(setup, R: int, steps: int, on_images: bool, rounds: int = 3) -> float:
    """Median time of (steps + 1) forward+backward passes of the encoder (and, for attacks through
    the reconstruction, decoder) on R*B inputs: the arithmetic every batched restart must do."""
    model, _probe, x, *_ = setup
    xr = x.repeat(R, 1, 1, 1)

    def passes():
        with frozen(model):  # as attacks run: no weight gradients
            for _ in range(steps + 1):
                xa = xr.detach().requires_grad_(True)
                out = model.reconstruct(xa) if on_images else model.encode(xa).mean
                torch.autograd.grad(out.sum(), xa)

    times = []
    for _ in range(rounds + 1):
        t0 = time.perf_counter()
        passes()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[rounds // 2]
