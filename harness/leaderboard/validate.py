"""Semantic checks of leaderboard entries: ranges, protocol, completeness, checksums, duplicates.

Ranges come from the metrics themselves (``Metric.leaderboard``, :class:`latentbench.LeaderboardValue`):
this module names no metric, so a third-party metric's declared range is checked like a built-in's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from latentbench.checkpoint import WEIGHTS_FILE, sha256_file
from latentbench.errors import LatentBenchError
from latentbench.leaderboard.schema import load_schema, schema_errors

#: attacks keep the perturbation inside the budget (docs/methods.md §0); slack for float32 rounding
BUDGET_SLACK = 1e-3


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def metric_classes(entry: dict[str, Any], registry) -> dict[str, Any]:
    """Metric plugin class of each result label of ``entry``: through its protocol (whose metrics
    may carry a ``name`` other than the plugin), else by the label as a plugin name. Labels whose
    plugin is not installed are left out: protocol_errors reports those cells."""
    out: dict[str, Any] = {}
    proto_name = (entry.get("protocol") or {}).get("name")
    if proto_name in registry.names("protocol"):
        for m in registry.protocol(proto_name).metrics:
            if m.get("plugin") in registry.names("metric"):
                out[m.get("name") or m["plugin"]] = registry.metric(m["plugin"])
    for section in ("reported", "reproduced"):
        numbers = entry.get(section)
        results = numbers.get("results") if isinstance(numbers, dict) else None
        for rec in results if isinstance(results, list) else []:
            label = rec.get("metric") if isinstance(rec, dict) else None
            if isinstance(label, str) and label not in out and label in registry.names("metric"):
                out[label] = registry.metric(label)
    return out


def range_errors(entry: dict[str, Any], registry=None) -> list[str]:
    """Values outside the range their metric declares (``Metric.leaderboard``), plus the checks
    that hold for every metric: finite values, ``*_std`` >= 0, ``adv_norm_mean`` >= 0 and within
    the cell's budget."""
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    classes = metric_classes(entry, registry)
    errs = []
    for section in ("reported", "reproduced"):
        numbers = entry.get(section)
        if not isinstance(numbers, dict) or not isinstance(numbers.get("results"), list):
            continue
        for i, rec in enumerate(numbers["results"]):
            if not isinstance(rec, dict) or not isinstance(rec.get("values"), dict):
                continue
            cls = classes.get(rec.get("metric"))
            config = rec.get("metric_config") if isinstance(rec.get("metric_config"), dict) else {}
            for key, v in rec["values"].items():
                f = f"{section}.results[{i}].values.{key} ({rec.get('metric')}"
                f += f" x {rec['attack']}@{rec['budget']})" if rec.get("attack") else ")"
                if not _is_number(v):
                    continue  # the schema reports it
                if not math.isfinite(v):
                    errs.append(f"{f}: {v} is not finite")
                    continue
                declared = cls.leaderboard_value(key, config) if cls is not None else None
                lo, hi = declared.range if declared is not None else (-math.inf, math.inf)
                if not lo <= v <= hi:
                    errs.append(f"{f}: {v} is outside [{lo:g}, {hi:g}]")
                elif (key.endswith("_std") or key == "adv_norm_mean") and v < 0:
                    # a spread and a norm are never negative, whatever the metric declares
                    errs.append(f"{f}: {v} is outside [0, inf]")
                budget = rec.get("budget")
                if key == "adv_norm_mean" and _is_number(budget) and v > budget * (1 + BUDGET_SLACK) + 1e-9:
                    errs.append(f"{f}: mean perturbation norm {v:.6g} exceeds the budget {budget:g}")
    return errs


def protocol_budgets(attack: dict) -> list[Optional[float]]:
    """The budgets a protocol runs one of its attacks at: its ``budgets``, else the attack's own eps."""
    bs = attack.get("budgets") or [attack.get("config", {}).get("eps")]
    return [None if b is None else float(b) for b in bs]


def expected_cells(protocol, registry, generative: bool = True) -> set[tuple[str, Optional[str], Optional[float]]]:
    """The (metric, attack, budget) cells a complete entry of ``protocol`` has (a non-generative
    model has no cells of metrics that sample from the model)."""
    cells = set()
    for m in protocol.metrics:
        label = m.get("name") or m["plugin"]
        mcls = registry.metric(m["plugin"])
        if mcls.requires_generative and not generative:
            continue
        if "attack" not in mcls.needs:
            cells.add((label, None, None))
            continue
        for a in protocol.attacks:
            if m.get("attacks") is not None and a["name"] not in m["attacks"]:
                continue
            for b in protocol_budgets(a):
                cells.add((label, a["name"], b))
    return cells


def _cell(rec: dict) -> tuple:
    b = rec.get("budget")
    return (rec.get("metric"), rec.get("attack"), float(b) if isinstance(b, (int, float)) else b)


def protocol_errors(entry: dict[str, Any], folder: Optional[str], registry) -> list[str]:
    errs = []
    proto_ref = entry.get("protocol") or {}
    name = proto_ref.get("name")
    known = registry.names("protocol")
    if name not in known:
        return [f"protocol.name: unknown protocol '{name}' (registered: {', '.join(known)}); "
                f"register it through a latentbench_protocols hook or fix the name"]
    proto = registry.protocol(name)
    if proto_ref.get("version") != proto.version:
        errs.append(f"protocol.version: entry says '{proto_ref.get('version')}', protocol {name} is version "
                    f"'{proto.version}'; re-run `latentbench benchmark` under the current protocol")
    if folder is not None and folder != name:
        errs.append(f"protocol.name: entry for '{name}' lies in folder '{folder}'; move it to leaderboard/{name}/")
    results = (entry.get("reported") or {}).get("results")
    if isinstance(results, list):
        have = [_cell(r) for r in results if isinstance(r, dict)]
        plugin = (entry.get("model") or {}).get("plugin")
        generative = getattr(registry.model(plugin), "generative", True) if plugin in registry.names("model") else True
        want = expected_cells(proto, registry, generative)
        missing = sorted(want - set(have), key=str)
        extra = sorted(set(have) - want, key=str)
        if missing:
            errs.append(f"reported.results: missing cells of protocol {name}: "
                        + ", ".join(f"{m} x {a}@{b}" if a else m for m, a, b in missing[:6]))
        if extra:
            errs.append(f"reported.results: cells not in protocol {name}: "
                        + ", ".join(f"{m} x {a}@{b}" if a else str(m) for m, a, b in extra[:6]))
        dup = {c for c in have if have.count(c) > 1}
        if dup:
            errs.append(f"reported.results: cells listed twice: {sorted(dup, key=str)[:3]}")
    return errs


def checkpoint_errors(entry: dict[str, Any], repo_root: Path) -> list[str]:
    ck = entry.get("checkpoint")
    if not isinstance(ck, dict) or not isinstance(ck.get("path"), str):
        return []
    weights = repo_root / ck["path"] / WEIGHTS_FILE
    if not weights.exists():
        return []  # large checkpoints stay out of git; `regenerate` says how to rebuild them
    actual = sha256_file(weights)
    if actual != ck.get("sha256"):
        return [f"checkpoint.sha256: {ck['path']}/{WEIGHTS_FILE} has sha256 {actual}, the entry says {ck.get('sha256')}; "
                f"the checkpoint changed after the entry was written: re-run `latentbench benchmark` on it"]
    return []


@dataclass
class LoadedEntry:
    path: Path
    data: dict[str, Any]


def entry_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    return sorted(p for p in d.glob("*/*.json") if p.parent.name != "checkpoints")


def validate_tree(directory: str | Path = "leaderboard", registry=None,
                  schema: dict | None = None) -> tuple[list[str], list[LoadedEntry]]:
    """Validate every ``<dir>/<protocol>/<name>.json``. Returns ('<file>: <field>: <problem>' errors,
    the entries that parsed)."""
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    d = Path(directory)
    if not d.is_dir():
        raise LatentBenchError(f"leaderboard folder {d} does not exist; pass the folder holding <protocol>/<entry>.json files")
    schema = schema or load_schema()
    repo_root = d.resolve().parent
    errors: list[str] = []
    loaded: list[LoadedEntry] = []
    for p in entry_files(d):
        rel = p.relative_to(d)
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            errors.append(f"{rel}: (file): not valid JSON: {e}")
            continue
        errs = schema_errors(data, schema)
        if not errs:
            errs += protocol_errors(data, p.parent.name, registry)
            errs += range_errors(data, registry)
            errs += checkpoint_errors(data, repo_root)
            if data["name"] != p.stem:
                errs.append(f"name: entry '{data['name']}' is stored as {p.name}; name the file {data['name']}.json")
        errors += [f"{rel}: {e}" for e in errs]
        loaded.append(LoadedEntry(p, data))
    errors += duplicate_errors(loaded, d)
    return errors, loaded


def duplicate_errors(entries: list[LoadedEntry], directory: Path) -> list[str]:
    errs, names, hashes = [], {}, {}
    for e in entries:
        proto = (e.data.get("protocol") or {}).get("name")
        rel = e.path.relative_to(directory)
        key = (proto, e.data.get("name"))
        if key in names:
            errs.append(f"{rel}: name: duplicate entry '{key[1]}' under protocol {proto} (also in {names[key]})")
        names.setdefault(key, rel)
        sha = (e.data.get("checkpoint") or {}).get("sha256")
        if sha and (proto, sha) in hashes:
            errs.append(f"{rel}: checkpoint.sha256: the same checkpoint is already entered under {proto} as "
                        f"{hashes[(proto, sha)]}; one entry per checkpoint and protocol")
        if sha:
            hashes.setdefault((proto, sha), rel)
    return errs
