"""A trivial model, attack and metric for the core harness tests (the real ones live in plugins/)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from latentbench import (Attack, AttackConfig, Autoencoder, LatentGaussian, Metric, MetricConfig, MetricResult,
                         ModelConfig, hookimpl)


@dataclass
class ToyConfig(ModelConfig):
    stochastic: bool = True
    #: make encode return NaN (bad-model tests)
    nan: bool = False


class ToyAE(Autoencoder):
    """Linear Gaussian autoencoder: z = W x + b, x_hat = sigmoid(V z + c)."""

    name = "toy_ae"
    config_class = ToyConfig
    source = "tests"

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        n = int(torch.tensor(config.input_shape).prod())
        self.enc = nn.Linear(n, config.latent_dim)
        self.logstd = nn.Linear(n, config.latent_dim)
        self.dec = nn.Linear(config.latent_dim, n)

    def encode(self, x):
        h = x.flatten(1)
        mean = self.enc(h)
        if self.config.nan:
            mean = mean * float("nan")
        std = torch.exp(0.5 * self.logstd(h)) if self.config.stochastic else None
        return LatentGaussian(mean, std)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.config.input_shape)

    def loss(self, x, y=None):
        q = self.encode(x)
        rec = ((self.decode(q.rsample()) - x) ** 2).flatten(1).sum(1).mean()
        kl = 0.0
        if q.std is not None:
            kl = 0.5 * (q.mean**2 + q.std**2 - 1 - 2 * torch.log(q.std)).sum(1).mean()
        return {"loss": rec + kl, "rec": rec}


@dataclass
class ToyAttackConfig(AttackConfig):
    norm: str = "l2"
    eps: float = 0.5
    steps: int = 5


class ToyLatentAttack(Attack):
    """Maximise ||mu(x+d) - mu(x)||: a config and an objective, the base class does the rest."""

    name = "toy_latent"
    config_class = ToyAttackConfig

    def prepare(self, x, y=None, target=None):
        return (self.model.encode(x).mean,)

    def objective(self, x_adv, z0):
        return (self.model.encode(x_adv).mean - z0).norm(dim=1)


@dataclass
class ToyMetricConfig(MetricConfig):
    #: raise after this many calls in this process (failure tests)
    fail_after: int = -1
    #: SIGKILL the process after this many calls (resume tests)
    kill_after: int = -1
    #: unused by the computation; named by the out-of-memory message (runner test)
    batch_size: int = 32


_CALLS = {"n": 0}


class ToyReconMetric(Metric):
    """Mean squared reconstruction error on the clean data."""

    name = "toy_recon"
    config_class = ToyMetricConfig
    needs = frozenset({"model", "data"})

    def compute(self, ctx):
        _CALLS["n"] += 1
        if self.config.kill_after >= 0 and _CALLS["n"] > self.config.kill_after:
            os.kill(os.getpid(), 9)
        if self.config.fail_after >= 0 and _CALLS["n"] > self.config.fail_after:
            raise RuntimeError("toy metric failure on purpose")
        with torch.no_grad():
            err = ((ctx.model.reconstruct(ctx.x) - ctx.x) ** 2).flatten(1).mean(1)
        return MetricResult({"mse": float(err.mean())}, {"mse": err.cpu().numpy()})


@dataclass
class ToyAdvConfig(MetricConfig):
    pass


class ToyAttackGain(Metric):
    """Mean latent displacement achieved by the cell's attack."""

    name = "toy_attack_gain"
    config_class = ToyAdvConfig
    needs = frozenset({"model", "data", "attack"})

    def compute(self, ctx):
        res = ctx.attack(ctx.x)
        return MetricResult({"objective": float(res.objective.mean()), "norm": float(res.norm.mean())})


@hookimpl
def latentbench_models():
    return [ToyAE]


@hookimpl
def latentbench_attacks():
    return [ToyLatentAttack]


@hookimpl
def latentbench_metrics():
    return [ToyReconMetric, ToyAttackGain]
