"""Nominal and adversarial accuracy of a probe on frozen encoder means (Cemgil et al. §4, Saseendran
(thesis) Table 5.7; docs/methods.md §3 ``downstream_adv_accuracy``).

A probe -- ``linear`` (Cemgil et al. §4) or a 2-layer ``mlp`` (Saseendran (thesis) Table 5.7) -- is
trained with plain cross-entropy on mu(train_x) with the encoder frozen. Nominal accuracy is its
accuracy on mu(x) for the evaluation images; for every budget in ``budgets`` the attack named
``attack`` (looked up in the plugin registry, default ``downstream_pgd``) is built with
``classifier=probe`` and run on the evaluation images, and adversarial accuracy is the share of
images whose attacked version the probe still classifies correctly (the share the attack fails on).
Correctness at x_adv is recomputed here from the probe, so any registered attack with the same
constructor works.

Choices the sources leave open: probe training uses Adam (lr ``probe_lr``), ``probe_epochs`` epochs
of minibatches of ``batch_size``, weights initialised and batches shuffled from generators derived
from (ctx.seed, "downstream_probe"); codes are not standardised (the probe sees the encoder's own
scale, which is what an attacker faces). The MLP probe has one hidden ReLU layer of ``hidden``
units. Budget 0 runs the attack too (it must then return x itself).

Leaderboard: accuracies are shares in [0, 1], higher is more robust (the attack fails more often);
``adv_accuracy@<eps>`` keys follow the configured budgets, so they are declared as a pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentbench.errors import LatentBenchError
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult
from latentbench.seeding import component_generator, derive_seed

PROBES = ("linear", "mlp")


@dataclass
class DownstreamConfig(MetricConfig):
    probe: str = "linear"
    hidden: int = 256
    attack: str = "downstream_pgd"
    budgets: list[float] = field(default_factory=lambda: [0.01, 0.1, 0.2, 0.3])
    norm: str = "linf"
    steps: int = 100
    restarts: int = 10
    probe_epochs: int = 30
    probe_lr: float = 1e-2
    batch_size: int = 256

    def validate(self) -> None:
        if self.probe not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(PROBES)}, got '{self.probe}'")
        if not self.budgets or any(b < 0 for b in self.budgets):
            raise ValueError(f"budgets must be a non-empty list of numbers >= 0, got {self.budgets}")
        if self.hidden < 1 or self.probe_epochs < 1 or self.batch_size < 1 or not self.probe_lr > 0:
            raise ValueError("hidden, probe_epochs and batch_size must be >= 1 and probe_lr > 0")


def make_probe(kind: str, latent_dim: int, num_classes: int, hidden: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(latent_dim, num_classes)
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@torch.no_grad()
def encode_means(model, x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model.encode(x[i:i + batch_size]).mean.reshape(min(batch_size, x.shape[0] - i), -1)
                      for i in range(0, x.shape[0], batch_size)])


def train_probe(codes: Tensor, labels: Tensor, num_classes: int, cfg: DownstreamConfig, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "downstream_probe", "init"))
        probe = make_probe(cfg.probe, codes.shape[1], num_classes, cfg.hidden)
    probe = probe.to(codes.device, codes.dtype)
    opt = torch.optim.Adam(probe.parameters(), lr=cfg.probe_lr)
    g = component_generator(seed, "downstream_probe", "shuffle")
    labels = labels.to(codes.device).long()
    for _ in range(cfg.probe_epochs):
        perm = torch.randperm(codes.shape[0], generator=g).to(codes.device)
        for i in range(0, codes.shape[0], cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = F.cross_entropy(probe(codes[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    probe.eval()
    for p in probe.parameters():
        p.requires_grad_(False)
    return probe


class DownstreamAdvAccuracy(Metric):
    """Probe accuracy on encoder means, clean and under an attack per budget."""

    name = "downstream_adv_accuracy"
    config_class = DownstreamConfig
    needs = frozenset({"model", "data", "train_data"})
    source = "Cemgil et al. §4, Saseendran (thesis) Table 5.7"
    leaderboard = (
        LeaderboardValue("nominal_accuracy", "probe acc.", better="higher", range=(0.0, 1.0)),
        LeaderboardValue("adv_accuracy@*", "adv. acc. ε={}", better="higher", range=(0.0, 1.0)),
    )

    def compute(self, ctx: MetricContext) -> MetricResult:
        from latentbench.registry import get_registry

        cfg = self.config
        if ctx.y is None or ctx.train_x is None or ctx.train_y is None:
            raise LatentBenchError("downstream_adv_accuracy needs labelled training and evaluation data "
                                   "(ctx.train_x/train_y and ctx.y)")
        model = ctx.model
        model.eval()
        num_classes = int(ctx.num_classes or int(torch.cat([ctx.train_y, ctx.y]).max()) + 1)
        probe = train_probe(encode_means(model, ctx.train_x, cfg.batch_size), ctx.train_y, num_classes, cfg, ctx.seed)
        y = ctx.y.to(ctx.x.device).long()
        with torch.no_grad():
            nominal = probe(encode_means(model, ctx.x, cfg.batch_size)).argmax(1) == y
        values = {"nominal_accuracy": float(nominal.double().mean())}
        per_sample = {"nominal_correct": nominal.cpu().numpy().astype(np.float64)}
        attack_cls = get_registry().attack(cfg.attack)
        for b in cfg.budgets:
            atk = attack_cls(model, generator=component_generator(ctx.seed, "downstream_attack", cfg.attack, b),
                             classifier=probe, eps=float(b), norm=cfg.norm, steps=cfg.steps, restarts=cfg.restarts)
            correct = []
            for i in range(0, ctx.x.shape[0], cfg.batch_size):
                xb, yb = ctx.x[i:i + cfg.batch_size], y[i:i + cfg.batch_size]
                res = atk(xb, y=yb)
                with torch.no_grad():
                    correct.append(probe(encode_means(model, res.x_adv, cfg.batch_size)).argmax(1) == yb)
            c = torch.cat(correct)
            values[f"adv_accuracy@{b:g}"] = float(c.double().mean())
            per_sample[f"adv_correct@{b:g}"] = c.cpu().numpy().astype(np.float64)
        info = {"probe": cfg.probe, "attack": cfg.attack, "norm": cfg.norm, "num_classes": num_classes,
                "n_train": int(ctx.train_x.shape[0]), "n_eval": int(ctx.x.shape[0])}
        return MetricResult(values=values, per_sample=per_sample, info=info)
