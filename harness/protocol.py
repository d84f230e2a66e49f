"""Evaluation protocols: named, versioned definitions of what a leaderboard number means."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

#: the keys of ``Protocol.rank_by``: which column a protocol's table is sorted by
RANK_BY_KEYS = frozenset({"metric", "value", "attack", "budget", "split"})


@dataclass(frozen=True)
class Protocol:
    """A fixed evaluation: dataset, image size, split, evaluated subset and its seed, attacks with
    budgets and solver settings, metrics, trials. ``name`` includes the version (``digits-v1``);
    results of different protocol names are never ranked together."""

    name: str
    version: str
    description: str
    dataset: dict[str, Any]  # {name, image_size, data_root?, eval_split, eval_subset, train_subset?}
    attacks: tuple[dict[str, Any], ...] = ()  # [{name, plugin, config, budgets?}]
    metrics: tuple[dict[str, Any], ...] = ()  # [{plugin, config, attacks?, name?}]
    seed: int = 0
    trials: int = 1
    #: relative/absolute tolerances used when `leaderboard verify` re-runs an entry
    tolerances: dict[str, float] = field(default_factory=lambda: {"rel": 0.05, "abs": 0.02})
    source: str = ""
    #: the leaderboard column the protocol's table is sorted by by default:
    #: ``{"metric": <metric name as in metrics>, "value": <value key>, "attack": <attack name>,
    #: "budget": <number>}`` (attack and budget only for attack-based metrics; ``split`` picks the
    #: column of one split value, e.g. one FID feature extractor). The column must be one the
    #: metric declares (``Metric.leaderboard``). None: the first column, clean MSE. Which number
    #: heads a table is the protocol's call, not the leaderboard code's: it knows no metric.
    rank_by: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        rb = self.rank_by
        if rb is None:
            return
        if not isinstance(rb, Mapping) or not isinstance(rb.get("metric"), str) or not isinstance(rb.get("value"), str):
            raise ValueError(f"protocol {self.name}: rank_by must be a mapping with 'metric' and 'value' "
                             f"(and 'attack', 'budget' for attack-based metrics), got {rb!r}")
        unknown = sorted(set(rb) - RANK_BY_KEYS)
        if unknown:
            raise ValueError(f"protocol {self.name}: rank_by has unknown keys {unknown} "
                             f"(allowed: {sorted(RANK_BY_KEYS)})")

    def to_dict(self) -> dict[str, Any]:
        # rank_by is left out: it orders the rendered table and changes no number, so it must not
        # take part in anything keyed on what a protocol computes
        return {"name": self.name, "version": self.version, "description": self.description,
                "dataset": dict(self.dataset), "attacks": [dict(a) for a in self.attacks],
                "metrics": [dict(m) for m in self.metrics], "seed": self.seed, "trials": self.trials,
                "tolerances": dict(self.tolerances)}
