"""Semantic checks of leaderboard entries: ranges, protocol, completeness, checksums, duplicates.

Ranges come from the metrics themselves (``Metric.leaderboard``, :class:`latentbench.LeaderboardValue`):
this module names no metric, so a third-party metric's declared range is checked like a built-in's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
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


#: where checkpoint folders may live, relative to the repository root (the leaderboard folder's
#: parent): small ones kept in git, large ones in the ignored runs/ (by convention <protocol>/<name>/)
CHECKPOINT_ROOTS = (("leaderboard", "checkpoints"), ("runs", "leaderboard-checkpoints"))
#: model plugin and protocol names that may appear in a command we print
SAFE_NAME = re.compile(r"^[a-z0-9_-]+$")


def path_rule(leaderboard_name: str = "leaderboard") -> str:
    roots = dict.fromkeys([f"{leaderboard_name}/checkpoints"] + ["/".join(r) for r in CHECKPOINT_ROOTS])
    return ("checkpoint.path must be a relative path inside " + " or ".join(f"{r}/" for r in roots)
            + " of the repository (no '..', not absolute, no symlink leading outside)")


def entry_file(path: str | Path, protocol: str, name: str, where: str, fix: str) -> Path:
    """``path`` resolved, if it is ``<leaderboard>/<protocol>/<name>.json``: where `leaderboard validate`
    reads an entry, with the checkpoint path relative to the leaderboard folder's parent. Any other
    shape gives an entry validate refuses, or a checkpoint outside the repository: a ConfigError at
    ``where`` (``fix``: what to pass instead)."""
    from latentbench.errors import ConfigError

    out = Path(path).resolve()
    if out.suffix != ".json" or out.stem != name or out.parent.name != protocol:
        raise ConfigError(where, f"'{path}' is not <leaderboard>/{protocol}/{name}.json", fix)
    return out


def checkpoint_path_problem(path: str, repo_root: Path, leaderboard_name: str = "leaderboard") -> Optional[str]:
    """Why ``path`` breaks the path rule (None: it keeps it). The folder need not exist; the parts
    of it that do must not be symlinks leading out of its checkpoint root."""
    raw = path.replace("\\", "/")
    segments = raw.split("/")
    if not path or "\0" in path or raw.startswith("/") or PureWindowsPath(path).drive:
        return "is absolute or empty"
    if ".." in segments:
        return "has a '..' component"
    parts = PurePosixPath(raw).parts  # drops '.' and empty segments
    roots = {(leaderboard_name, "checkpoints"), *CHECKPOINT_ROOTS}
    root = next((r for r in roots if parts[:2] == r), None)
    if root is None or len(parts) < 3:
        return "is not a folder inside a checkpoint root"
    real_root = (repo_root / root[0] / root[1]).resolve()
    real = (repo_root / raw).resolve()
    if real != real_root and real_root not in real.parents:
        return f"leads outside {'/'.join(root)}/ through a symlink (resolves to {real})"
    return None


def checkpoint_path_errors(entry: dict[str, Any], repo_root: Path, leaderboard_name: str = "leaderboard") -> list[str]:
    """The path rule (:data:`CHECKPOINT_ROOTS`) for the entry's ``checkpoint.path`` (null: no folder)."""
    ck = entry.get("checkpoint")
    path = ck.get("path") if isinstance(ck, dict) else None
    if not isinstance(path, str):
        return []  # null, or the schema reports the type
    problem = checkpoint_path_problem(path, Path(repo_root), leaderboard_name)
    if problem is None:
        return []
    return [f"checkpoint.path: '{path[:80]}' {problem}; {path_rule(leaderboard_name)}"]


def rebuild_command(entry: dict[str, Any]) -> str:
    """A command that rebuilds an entry's checkpoint, built here from checked fields only (a
    registered-looking protocol name, a model plugin name of [a-z0-9_-], the entry's name, a path
    that keeps the path rule): nothing of a submitted entry is printed as a command verbatim. The
    submitter's training settings are data in model.config and checkpoint.regenerate."""
    import shlex

    proto = str((entry.get("protocol") or {}).get("name", ""))
    plugin = str((entry.get("model") or {}).get("plugin", ""))
    if not (SAFE_NAME.match(proto) and SAFE_NAME.match(plugin)):
        return "latentbench benchmark --protocol PROTOCOL --model PLUGIN (the entry's names are not plain names)"
    parts = ["latentbench", "benchmark", "--protocol", proto, "--model", plugin]
    name = entry.get("name")
    if isinstance(name, str) and re.match(r"^[A-Za-z0-9_.+-]+$", name):
        parts += ["--name", name]
    return " ".join(shlex.quote(x) for x in parts) + " ...settings from the entry's model.config"


def checkpoint_errors(entry: dict[str, Any], repo_root: Path, leaderboard_name: str = "leaderboard") -> list[str]:
    ck = entry.get("checkpoint")
    if not isinstance(ck, dict) or not isinstance(ck.get("path"), str):
        return []
    errs = checkpoint_path_errors(entry, repo_root, leaderboard_name)
    if errs:
        return errs  # never read a file the rule forbids
    weights = repo_root / ck["path"] / WEIGHTS_FILE
    if not weights.is_file():
        return []  # large checkpoints stay out of git; model.config says how they were built
    actual = sha256_file(weights)
    if actual != ck.get("sha256"):
        return [f"checkpoint.sha256: {ck['path']}/{WEIGHTS_FILE} has sha256 {actual}, the entry says {ck.get('sha256')}; "
                f"the checkpoint changed after the entry was written: re-run `latentbench benchmark` on it"]
    return []


def printable(line: str) -> str:
    """One output line per problem whatever a submitted entry holds: control characters (a key
    "\\r", a newline in a name) are escaped, so an entry cannot forge lines of the report."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in line)


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
            errors.append(printable(f"{rel}: (file): not valid JSON: {e}"))
            continue
        errs = schema_errors(data, schema)
        if not errs:
            errs += protocol_errors(data, p.parent.name, registry)
            errs += range_errors(data, registry)
            errs += checkpoint_errors(data, repo_root, d.resolve().name)
            if data["name"] != p.stem:
                errs.append(f"name: entry '{data['name']}' is stored as {p.name}; name the file {data['name']}.json")
        errors += [printable(f"{rel}: {e}") for e in errs]
        loaded.append(LoadedEntry(p, data))
    errors += [printable(e) for e in duplicate_errors(loaded, d)]
    return errors, loaded


def _text_at(data: Any, *keys: str) -> Optional[str]:
    """The string at ``data[k1][k2]...`` (None where a level is missing or of another type)."""
    for k in keys:
        data = data.get(k) if isinstance(data, dict) else None
    return data if isinstance(data, str) else None


def duplicate_errors(entries: list[LoadedEntry], directory: Path) -> list[str]:
    errs, names, hashes = [], {}, {}
    for e in entries:
        proto, name, sha = (_text_at(e.data, "protocol", "name"), _text_at(e.data, "name"),
                            _text_at(e.data, "checkpoint", "sha256"))
        if proto is None or name is None:
            continue  # the schema reports the field
        rel = e.path.relative_to(directory)
        key = (proto, name)
        if key in names:
            errs.append(f"{rel}: name: duplicate entry '{key[1]}' under protocol {proto} (also in {names[key]})")
        names.setdefault(key, rel)
        if sha and (proto, sha) in hashes:
            errs.append(f"{rel}: checkpoint.sha256: the same checkpoint is already entered under {proto} as "
                        f"{hashes[(proto, sha)]}; one entry per checkpoint and protocol")
        if sha:
            hashes.setdefault((proto, sha), rel)
    return errs
