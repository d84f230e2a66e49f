"""Evaluation protocols: named, versioned definitions of what a leaderboard number means."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

#: the keys of ``Protocol.rank_by`` and of each ``Protocol.main_columns`` selector
RANK_BY_KEYS = frozenset({"metric", "value", "attack", "budget", "split"})
#: the selector of the entry's clean reconstruction MSE (``reported.clean.mse``), which no metric reports
CLEAN_MSE = {"metric": "clean", "value": "mse"}


#: bit-identical: what one machine gives for the same code, seed and data
EXACT = {"default": {"abs": 0.0, "rel": 0.0}}


class Tolerances(dict):
    """Per-metric tolerances. ``["abs"]``/``["rel"]`` read the default's, as in the flat form of
    protocols written before tolerances were per metric."""

    def __missing__(self, key: str) -> float:
        if key in ("abs", "rel"):
            return self["default"][key]
        raise KeyError(key)


def normalize_tolerances(protocol: str, tol: Any) -> "Tolerances":
    """``{"default": {...}, <key>: {abs, rel}}``; a flat ``{"abs", "rel"}`` becomes the default."""
    if isinstance(tol, Mapping) and set(tol) <= {"abs", "rel"} and tol:
        tol = {"default": dict(tol)}
    if not isinstance(tol, Mapping) or "default" not in tol:
        raise ValueError(f"protocol {protocol}: tolerances must be a mapping with a 'default' entry "
                         f"({{'default': {{'abs': a, 'rel': r}}, '<metric>': ...}}), got {tol!r}")
    out = Tolerances()
    for k, v in tol.items():
        ok = isinstance(v, Mapping) and set(v) == {"abs", "rel"} and all(
            isinstance(v[n], (int, float)) and not isinstance(v[n], bool) and math.isfinite(v[n]) and v[n] >= 0
            for n in ("abs", "rel"))
        if not ok:
            raise ValueError(f"protocol {protocol}: tolerances['{k}'] must be {{'abs': a, 'rel': r}} with finite "
                             f"a, r >= 0, got {v!r}")
        out[str(k)] = {"abs": float(v["abs"]), "rel": float(v["rel"])}
    return out


def tolerance_for(tol: Mapping[str, Any], metric: str, key: str) -> dict[str, float]:
    """The most specific of ``<metric>.<key>``, ``<metric>``, ``default`` in ``tol`` (a flat
    ``{"abs", "rel"}`` applies to everything)."""
    if "default" not in tol:
        return {"abs": float(tol["abs"]), "rel": float(tol["rel"])}
    for k in (f"{metric}.{key}", metric, "default"):
        if k in tol:
            return dict(tol[k])
    raise KeyError(key)  # unreachable: 'default' is there


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
    #: what `leaderboard verify` accepts as reproduction noise, per metric: ``{"default": {"abs": a,
    #: "rel": r}, "<metric label>": {...}, "<metric label>.<value key>": {...}, "clean": {...}}``
    #: (the most specific key wins; |reported - reproduced| <= abs + rel * |reported|). Derive each
    #: from measured noise and state the measurement in the protocol's docstring (docs/leaderboard.md).
    #: A flat ``{"abs", "rel"}`` is read as the default of every metric.
    tolerances: Mapping[str, Any] = field(default_factory=lambda: dict(EXACT))
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
        object.__setattr__(self, "tolerances", normalize_tolerances(self.name, self.tolerances))
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
                "tolerances": {k: dict(v) for k, v in self.tolerances.items()}}

    def tolerance(self, metric: str, key: str) -> dict[str, float]:
        """The tolerance of value ``key`` of metric (label) ``metric``."""
        return tolerance_for(self.tolerances, metric, key)

