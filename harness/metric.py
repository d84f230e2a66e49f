"""The metric interface: a metric declares what it needs, returns named values, and declares how the
leaderboard shows and checks those values (:class:`LeaderboardValue`)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch
from torch import Tensor

from latentbench.errors import PluginError

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


BETTER = ("higher", "lower")


@dataclass(frozen=True)
class LeaderboardValue:
    """How the leaderboard shows and checks one value a metric reports.

    The metric owns this knowledge, not the leaderboard: a third-party metric gets columns and range
    checks by declaring them, and the leaderboard code names no metric. A metric lists its
    declarations in ``Metric.leaderboard``; for a value key the first declaration that matches it
    (and whose ``when`` holds) decides its range, and every declaration with a ``label`` gives
    leaderboard columns.

    - ``key``: the value key (``"fid"``), or a pattern where ``*`` stands for any text, for keys that
      depend on the config (``"adv_accuracy@*"`` matches ``adv_accuracy@0.05``, ``adv_accuracy@0.1``).
    - ``label``: the column header; empty for a value that is range-checked but gets no column. For a
      pattern key, ``{}`` in the label is replaced by the text each ``*`` matched
      (``"adv. acc. ε={}"``); a plain key's label is used as written. Columns of attack-based
      metrics get the attack and budget in front (``max_damage λ=1 <label>``).
    - ``better``: ``"higher"`` or ``"lower"``, the more robust direction (the leaderboard's ↑/↓ and
      its sort order), or None where no direction is meaningful (the column is shown, unranked).
    - ``range``: (low, high), inclusive, ``math.inf`` allowed; ``leaderboard validate`` reports a
      value outside it. The default accepts every finite number.
    - ``split_by``: a field of the entry's result record (``feature_extractor``) or of its
      ``result_config`` whose value splits the column in one column per value, for numbers that
      must never share a column (FIDs from different feature extractors).
    - ``when``: metric config values the declaration is limited to, for values whose meaning or
      direction depends on the config (an entropy whose normalisation decides whether higher or
      lower is more robust: one declaration per normalisation). Matched against the metric's
      config with the config class's defaults filled in.
    """

    key: str
    label: str = ""
    better: Optional[str] = None
    range: tuple[float, float] = (-math.inf, math.inf)
    split_by: Optional[str] = None
    when: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"LeaderboardValue.key must be a non-empty value key or pattern, got {self.key!r}")
        if self.better not in (None, *BETTER):
            raise ValueError(f"LeaderboardValue({self.key!r}).better must be 'higher', 'lower' or None, "
                             f"got {self.better!r}")
        try:
            lo, hi = (float(x) for x in self.range)
        except (TypeError, ValueError):
            raise ValueError(f"LeaderboardValue({self.key!r}).range must be (low, high), got {self.range!r}") from None
        if not lo <= hi:  # also rejects NaN
            raise ValueError(f"LeaderboardValue({self.key!r}).range must have low <= high, got {self.range!r}")
        object.__setattr__(self, "range", (lo, hi))
        if not isinstance(self.when, Mapping):
            raise ValueError(f"LeaderboardValue({self.key!r}).when must be a mapping of config fields to values")
        object.__setattr__(self, "when", dict(self.when))
        if self.label and self.is_pattern:
            try:
                self.label.format(*["x"] * self.key.count("*"))
            except (IndexError, KeyError, ValueError) as e:
                raise ValueError(f"LeaderboardValue({self.key!r}).label {self.label!r}: use at most one '{{}}' per "
                                 f"'*' of the key ({type(e).__name__}: {e})") from None

    @property
    def is_pattern(self) -> bool:
        return "*" in self.key

    def match(self, key: str) -> Optional[tuple[str, ...]]:
        """The texts the ``*`` of the pattern matched in ``key`` (``()`` for an equal plain key), or
        None when ``key`` is not one of this declaration's values."""
        if not self.is_pattern:
            return () if key == self.key else None
        m = re.fullmatch("(.*)".join(re.escape(part) for part in self.key.split("*")), key)
        return None if m is None else m.groups()

    def header(self, key: str) -> str:
        """The column label of the concrete value ``key``."""
        groups = self.match(key)
        return self.label.format(*groups) if self.is_pattern and groups is not None else self.label

    def applies(self, config: Mapping[str, Any]) -> bool:
        return all(config.get(k) == v for k, v in self.when.items())


class Metric:
    """Base class of metric plugins: set ``name``, ``config_class``, ``needs``; implement ``compute``.
    ``leaderboard`` declares how the leaderboard shows and range-checks the values (see
    :class:`LeaderboardValue`); a metric without declarations gets no column and only the checks
    that hold for every metric (finite values, non-negative ``*_std``, ``adv_norm_mean`` within the
    cell's budget).

    Optional, for metrics whose claims `leaderboard verify` should check per image (the headline
    ``robust_accuracy`` has all three; the leaderboard looks them up with ``hasattr``):

    - ``aggregate_images(per_sample, config) -> dict`` (classmethod): the metric's reported values
      recomputed exactly from its per-image records (``MetricResult.per_sample``), so a forged
      aggregate is caught without running anything;
    - ``sample_images(config, n, k, rng) -> list[int]`` (classmethod): at least ``k`` of the ``n``
      images to recompute (e.g. whole chunks when images are attacked in chunks);
    - ``images(ctx, indices) -> dict``: the per-image records of just those images, bit-identical to
      the full run's (per-image randomness must therefore not depend on the other images)."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[MetricConfig]] = MetricConfig
    needs: ClassVar[frozenset[str]] = frozenset({"model", "data"})
    source: ClassVar[str] = ""
    #: does this metric only make sense for stochastic encoders / generative models?
    requires_generative: ClassVar[bool] = False
    #: leaderboard columns, directions and ranges of the values this metric reports
    leaderboard: ClassVar[tuple[LeaderboardValue, ...]] = ()

    def __init__(self, config: MetricConfig | None = None, **overrides):
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        config.validate()
        self.config = config

    def compute(self, ctx: MetricContext) -> MetricResult:
        raise NotImplementedError

    @classmethod
    def leaderboard_config(cls, config: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """``config`` (a plain mapping, e.g. a protocol's metric config or an entry's
        ``metric_config``) over the config class's defaults: what ``LeaderboardValue.when`` is
        matched against, so that a protocol that leaves a field at its default still matches."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls.config_class):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        out.update(config or {})
        return out

    @classmethod
    def leaderboard_values(cls, config: Optional[Mapping[str, Any]] = None) -> tuple[LeaderboardValue, ...]:
        """The declarations that hold under ``config``, in declaration order."""
        bad = [d for d in cls.leaderboard if not isinstance(d, LeaderboardValue)]
        if bad:
            raise PluginError(f"metric '{cls.name}': every item of 'leaderboard' must be a "
                              f"latentbench.LeaderboardValue, got {bad[0]!r}")
        full = cls.leaderboard_config(config)
        unknown = sorted({k for d in cls.leaderboard for k in d.when} - set(full))
        if unknown:  # a typo would silently drop the declaration
            raise PluginError(f"metric '{cls.name}': LeaderboardValue.when names {unknown}, which are not fields "
                              f"of {cls.config_class.__name__}")
        return tuple(d for d in cls.leaderboard if d.applies(full))

    @classmethod
    def leaderboard_value(cls, key: str, config: Optional[Mapping[str, Any]] = None) -> Optional[LeaderboardValue]:
        """The first declaration (under ``config``) that matches value key ``key``, or None."""
        return next((d for d in cls.leaderboard_values(config) if d.match(key) is not None), None)

    def __call__(self, ctx: MetricContext) -> MetricResult:
        res = self.compute(ctx)
        res.config = {"metric": self.name, **self.config.to_dict(), **res.config}
        return res
