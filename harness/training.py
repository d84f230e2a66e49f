"""One generic trainer for every model plugin: it calls ``model.loss`` and nothing model-specific."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from latentbench.data import Split
from latentbench.errors import NonFiniteError
from latentbench.model import Autoencoder
from latentbench.seeding import component_generator, seed_everything

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    #: None takes the model config's ``lr``
    lr: Optional[float] = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    #: stop after this many optimiser steps in total (quick runs and tests)
    max_steps: Optional[int] = None
    progress: bool = True

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{self.optimizer}': use one of {', '.join(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got epochs {self.epochs}, batch_size {self.batch_size} "
                             "-- use e.g. epochs: 10, batch_size: 128")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps} -- give a positive step count or null for no limit")
        if self.lr is not None:
            check_learning_rate(self.lr, "lr")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay} -- use e.g. weight_decay: 0.0")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be from 0 to 2**63 - 1, got {self.seed} -- use e.g. seed: 0")


def check_learning_rate(lr: float, name: str) -> None:
    """A learning rate the optimisers accept: finite and > 0 (torch's own error would come mid-training)."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {lr} -- use e.g. lr: 0.001")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # mean of each loss term per epoch
    seconds: float = 0.0
    steps: int = 0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def train(model: Autoencoder, data: Split, config: TrainConfig | None = None, desc: str | None = None) -> TrainResult:
    """Train ``model`` on ``data`` with the model's own ``loss``; returns the per-epoch loss history."""
    config = config or TrainConfig()
    config.validate()
    seed_everything(config.seed)
    device = torch.device(config.device)
    model.to(device).train()
    lr = config.lr if config.lr is not None else float(getattr(model.config, "lr", 1e-3))
    if not any(p.requires_grad for p in model.parameters()):
        # an analytic model (e.g. the identity reference row): nothing to optimise; it may still
        # read the data once (the constant reference row takes the mean image there)
        # the whole split as one batch: _batches drops a short last batch, an analytic model must see every example
        yb = None if data.y is None else data.y.to(device)
        model.on_train_start([(data.x.to(device), yb)])
        model.eval()
        return TrainResult()
    opt = OPTIMIZERS[config.optimizer](model.parameters(), lr=lr, weight_decay=config.weight_decay)
    shuffle = component_generator(config.seed, "train", "shuffle")
    n = len(data)
    bs = min(config.batch_size, n)
    model.on_train_start(_batches(data, bs, shuffle, device))
    result = TrainResult()
    start = time.perf_counter()
    steps_per_epoch = math.ceil(n / bs)
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    bar = tqdm(total=total, desc=desc or f"train {model.name}", disable=not config.progress, leave=False)
    try:
        for epoch in range(config.epochs):
            sums: dict[str, float] = {}
            count = 0
            for xb, yb in _batches(data, bs, shuffle, device):
                out = model.loss(xb, yb)
                loss = out["loss"]
                if not torch.isfinite(loss):
                    raise NonFiniteError(
                        f"model '{model.name}' produced a non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, "
                        f"step {result.steps + 1}. Lower the learning rate (now {lr}) or check the input range [0, 1].")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                model.on_train_step_end()
                result.steps += 1
                count += 1
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
                if config.max_steps is not None and result.steps >= config.max_steps:
                    break
            result.history.append({k: v / max(count, 1) for k, v in sums.items()})
            if config.max_steps is not None and result.steps >= config.max_steps:
                break
    finally:
        bar.close()
        result.seconds = time.perf_counter() - start
        model.eval()
    return result


def _batches(data: Split, bs: int, generator: torch.Generator, device: torch.device):
    perm = torch.randperm(len(data), generator=generator)
    # drop a final batch smaller than half a batch: pairwise and batch-statistic losses need size > 1
    for i in range(0, len(data), bs):
        idx = perm[i:i + bs]
        if len(idx) < max(2, bs // 2) and i > 0:
            break
        yb = None if data.y is None else data.y[idx].to(device)
        yield data.x[idx].to(device), yb


def training_metadata(model: Autoencoder, dataset: str, config: TrainConfig, result: TrainResult) -> dict[str, Any]:
    from latentbench.provenance import provenance

    return {"dataset": dataset, "train_config": config.__dict__, "train_seconds": result.seconds,
            "steps": result.steps, "final_losses": result.final, "history": result.history,
            "provenance": provenance(seed=config.seed, device=config.device)}
