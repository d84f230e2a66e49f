"""Evaluation protocols: named, versioned definitions of what a leaderboard number means."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    metrics: tuple[dict[str, Any], ...] = ()  # [{plugin, config, attacks?}]
    seed: int = 0
    trials: int = 1
    #: relative/absolute tolerances used when `leaderboard verify` re-runs an entry
    tolerances: dict[str, float] = field(default_factory=lambda: {"rel": 0.05, "abs": 0.02})
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "dataset": dict(self.dataset), "attacks": [dict(a) for a in self.attacks],
                "metrics": [dict(m) for m in self.metrics], "seed": self.seed, "trials": self.trials,
                "tolerances": dict(self.tolerances)}
