"""Per-dataset classifiers and feature extractors the harness trains once and caches (docs/methods.md §3).

The class radius (Manoj Def. 2.5) needs a classifier c of decoded images, and FID (Saseendran (thesis) §2.2.5) needs
a feature extractor; Inception weights cannot be downloaded in tests or CI (docs/methods.md §5), so the harness
trains a small CNN per (dataset, image size, seed) and stores it as ``model.safetensors`` plus
``config.json`` under ``cache_dir/<name>/``. The next call with the same name reloads it (never
unpickles). The FID feature extractor is that classifier's penultimate layer. Numbers from
different extractors are never comparable, so the extractor's name travels with every FID value.

Choices the papers leave open: architecture (two 3x3 conv blocks 32-64 with ReLU and 2x2 max-pool,
global 4x4 average pool, a 128-unit ReLU feature layer, a linear head; a 2-layer MLP for vector data
such as grid2d), training (Adam 1e-3, 3 epochs, batch 128, plain cross-entropy, at most
``max_train`` training examples), and determinism (weights initialised under a seeded RNG derived
from the name, batches shuffled by a generator derived from the same seed, training on CPU unless
a device is given; on CPU the same seed gives bit-identical weights).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from latentbench.data import Split
from latentbench.errors import LatentBenchError
from latentbench.seeding import component_generator, derive_seed

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class DomainModelConfig:
    """Training settings of the domain classifier (part of the cache key through ``config.json``)."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    #: train on at most this many examples (a deterministic subset); None uses the whole split
    max_train: Optional[int] = 20000
    width: int = 32
    feature_dim: int = 128

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1 or self.feature_dim < 1:
            raise ValueError("epochs, batch_size, width and feature_dim must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class DomainNet(nn.Module):
    """CNN for images (C, H, W) or MLP for vectors (n,); ``features`` is the penultimate layer."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) == 3:
            c = self.input_shape[0]
            self.body = nn.Sequential(
                nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                nn.Flatten(), nn.Linear(2 * width * 16, feature_dim), nn.ReLU())
        elif len(self.input_shape) == 1:
            self.body = nn.Sequential(nn.Linear(self.input_shape[0], feature_dim), nn.ReLU(),
                                      nn.Linear(feature_dim, feature_dim), nn.ReLU())
        else:
            raise LatentBenchError(f"domain models take (C, H, W) images or (n,) vectors, got shape {self.input_shape}")
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes)."""
        return self.head(self.body(x))


class DomainFeatureExtractor:
    """Callable images -> penultimate features (B, feature_dim), with the extractor's ``name``."""

    def __init__(self, net: DomainNet, name: str):
        self.net = net
        self.name = name

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        return self.net.features(x)


def domain_model_name(dataset_name: str, input_shape: tuple[int, ...], seed: int) -> str:
    kind = "cnn" if len(input_shape) == 3 else "mlp"
    size = input_shape[-1] if len(input_shape) == 3 else input_shape[0]
    return f"latentbench-domain-{kind}-{dataset_name}-{size}-seed{seed}"


def _fingerprint(split: Split) -> str:
    """Hash of the training data, so a cached model trained on other data is never reused silently."""
    h = hashlib.sha256()
    h.update(str(tuple(split.x.shape)).encode())
    h.update(split.x.detach().cpu().contiguous().float().numpy().tobytes())
    h.update(split.y.detach().cpu().contiguous().long().numpy().tobytes())
    return h.hexdigest()


def _train(net: DomainNet, split: Split, cfg: DomainModelConfig, seed: int, name: str, device: torch.device) -> float:
    g = component_generator(seed, "domain_model", name, "shuffle")
    x, y = split.x, split.y
    if cfg.max_train is not None and len(x) > cfg.max_train:
        idx = torch.randperm(len(x), generator=g)[:cfg.max_train]
        x, y = x[idx], y[idx]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    net.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = F.cross_entropy(net(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x[i:i + 1000].to(device)).argmax(1) == y[i:i + 1000].to(device)).sum())
                      for i in range(0, len(x), 1000))
    return correct / len(x)


def domain_classifier(dataset_name: str, train_split: Split, num_classes: int, cache_dir: str | Path = ".latentbench_cache",
                      seed: int = 0, device: str | torch.device = "cpu",
                      config: DomainModelConfig | None = None) -> DomainNet:
    """The per-dataset classifier (logits), trained on ``train_split`` once and reloaded from ``cache_dir``.

    Returns a frozen :class:`DomainNet` in eval mode on ``device``; its ``latentbench_name``
    attribute is the cache name, e.g. ``latentbench-domain-cnn-fashion-mnist-32-seed0``.
    """
    cfg = config or DomainModelConfig()
    cfg.validate()
    if train_split.y is None:
        raise LatentBenchError(f"dataset '{dataset_name}' has no labels: a domain classifier needs a labelled training split")
    if num_classes < 2:
        raise LatentBenchError(f"num_classes must be >= 2 for a classifier, got {num_classes}")
    device = torch.device(device)
    input_shape = tuple(train_split.x.shape[1:])
    name = domain_model_name(dataset_name, input_shape, seed)
    folder = Path(cache_dir) / name
    meta = {"name": name, "dataset": dataset_name, "input_shape": list(input_shape), "num_classes": int(num_classes),
            "seed": int(seed), "config": asdict(cfg), "train_fingerprint": _fingerprint(train_split)}
    net = DomainNet(input_shape, num_classes, cfg.width, cfg.feature_dim)
    if (folder / WEIGHTS_FILE).exists() and (folder / CONFIG_FILE).exists():
        stored = json.loads((folder / CONFIG_FILE).read_text())
        diff = sorted(k for k in meta if stored.get(k) != meta[k])
        if diff:
            raise LatentBenchError(
                f"cached domain model {folder} was built with different {', '.join(diff)}; delete that folder to "
                f"retrain it, or pass another cache_dir")
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "domain_model", name, "init"))
            net = DomainNet(input_shape, num_classes, cfg.width, cfg.feature_dim)
        net.to(device)
        meta["train_accuracy"] = _train(net, train_split, cfg, seed, name, device)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    net.latentbench_name = name
    return net


def domain_feature_extractor(dataset_name: str, train_split: Split, num_classes: int,
                             cache_dir: str | Path = ".latentbench_cache", seed: int = 0,
                             device: str | torch.device = "cpu",
                             config: DomainModelConfig | None = None) -> DomainFeatureExtractor:
    """FID features: the penultimate layer of :func:`domain_classifier` (same cache, same name)."""
    net = domain_classifier(dataset_name, train_split, num_classes, cache_dir, seed, device, config)
    return DomainFeatureExtractor(net, net.latentbench_name)
