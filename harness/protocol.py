"""Evaluation protocols: named, versioned definitions of what a leaderboard number means."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

#: the keys of ``Protocol.rank_by`` and of each ``Protocol.main_columns`` selector
RANK_BY_KEYS = frozenset({"metric", "value", "attack", "budget", "split"})
#: the selector of the entry's clean reconstruction MSE (``reported.clean.mse``), which no metric reports
CLEAN_MSE = {"metric": "clean", "value": "mse"}


def _check_selector(protocol: str, field_name: str, sel: Any) -> None:
    if not isinstance(sel, Mapping) or not isinstance(sel.get("metric"), str) or not isinstance(sel.get("value"), str):
        raise ValueError(f"protocol {protocol}: {field_name} must be a mapping with 'metric' and 'value' "
                         f"(and 'attack', 'budget' for attack-based metrics), got {sel!r}")
    unknown = sorted(set(sel) - RANK_BY_KEYS)
    if unknown:
        raise ValueError(f"protocol {protocol}: {field_name} has unknown keys {unknown} "
                         f"(allowed: {sorted(RANK_BY_KEYS)})")


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
    #: metric declares (``Metric.leaderboard``), or ``CLEAN_MSE``. None: the first column, clean
    #: MSE. Which number heads a table is the protocol's call, not the leaderboard code's: it
    #: knows no metric.
    rank_by: Optional[Mapping[str, Any]] = None
    #: the columns of the protocol's main table, in order, as selectors with rank_by's keys
    #: (``CLEAN_MSE`` selects the clean MSE; a selector without ``split`` selects every split
    #: column). The main table then shows rank, model, these columns and the rank_by record's
    #: raised ``flag_*`` values; every other column goes to the entry's detail page. None: one
    #: table with every column (the v1 layout).
    main_columns: Optional[tuple[Mapping[str, Any], ...]] = None

    def __post_init__(self) -> None:
        if self.rank_by is not None:
            _check_selector(self.name, "rank_by", self.rank_by)
        mc = self.main_columns
        if mc is None:
            return
        if isinstance(mc, (str, bytes, Mapping)) or not isinstance(mc, (list, tuple)) or not mc:
            raise ValueError(f"protocol {self.name}: main_columns must be a non-empty list of column selectors "
                             f"(mappings with 'metric' and 'value'), got {mc!r}")
        for i, sel in enumerate(mc):
            _check_selector(self.name, f"main_columns[{i}]", sel)
        object.__setattr__(self, "main_columns", tuple(dict(sel) for sel in mc))

    def to_dict(self) -> dict[str, Any]:
        # rank_by and main_columns are left out: they lay out the rendered tables and change no
        # number, so they must not take part in anything keyed on what a protocol computes
        return {"name": self.name, "version": self.version, "description": self.description,
                "dataset": dict(self.dataset), "attacks": [dict(a) for a in self.attacks],
                "metrics": [dict(m) for m in self.metrics], "seed": self.seed, "trials": self.trials,
                "tolerances": dict(self.tolerances)}
