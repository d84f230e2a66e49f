"""The metric interface: a metric declares what it needs and returns named values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch
from torch import Tensor

#: what a metric can ask the runner for
NEEDS = frozenset({"model", "data", "attack", "classifier", "train_data"})


@dataclass
class MetricConfig:
    """Base of metric configs; plugins subclass with their own fields."""

    def validate(self) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MetricContext:
    """Everything a metric may use for one cell; the runner fills what ``needs`` asks for.

    ``x``/``y`` are the evaluation subset (already on ``device``). ``train_x``/``train_y`` are the
    training split (for probes and for metrics that need a classifier: the runner fills them when
    ``needs`` has ``train_data`` or ``classifier``). ``attack`` is a constructed attack for
    attack-based metrics. ``classifier`` is an optional callable returning a classifier, for callers
    that bring their own; the runner leaves it None and such metrics build the domain classifier of
    the built-in metrics from the training split (cached under ``cache_dir``).
    """

    model: Any
    x: Tensor
    y: Optional[Tensor]
    dataset: str
    device: torch.device
    generator: torch.Generator
    seed: int
    attack: Any = None
    attack_name: Optional[str] = None
    train_x: Optional[Tensor] = None
    train_y: Optional[Tensor] = None
    num_classes: Optional[int] = None
    classifier: Optional[Callable[[], Any]] = None
    cache_dir: Path = Path(".latentbench_cache")
    trials: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    """Named scalar values, optional per-sample arrays, and the configuration that produced them."""

    values: dict[str, float]
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the feature extractor used

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {k: float(v) for k, v in self.values.items()},
            "per_sample": {k: np.asarray(v).tolist() for k, v in self.per_sample.items()},
            "config": self.config,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MetricResult":
        return cls(values=dict(d["values"]),
                   per_sample={k: np.asarray(v) for k, v in d.get("per_sample", {}).items()},
                   config=d.get("config", {}), info=d.get("info", {}))


class Metric:
    """Base class of metric plugins: set ``name``, ``config_class``, ``needs``; implement ``compute``."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[MetricConfig]] = MetricConfig
    needs: ClassVar[frozenset[str]] = frozenset({"model", "data"})
    source: ClassVar[str] = ""
    #: does this metric only make sense for stochastic encoders / generative models?
    requires_generative: ClassVar[bool] = False

    def __init__(self, config: MetricConfig | None = None, **overrides):
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        config.validate()
        self.config = config

    def compute(self, ctx: MetricContext) -> MetricResult:
        raise NotImplementedError

    def __call__(self, ctx: MetricContext) -> MetricResult:
        res = self.compute(ctx)
        res.config = {"metric": self.name, **self.config.to_dict(), **res.config}
        return res
