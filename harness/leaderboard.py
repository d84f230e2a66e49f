"""The leaderboard: entry validation, rendering (Markdown + static HTML) and verification.

Layout (RobustBench-like, see CONTRIBUTING.md "Submitting a leaderboard entry")::

    leaderboard/schema.json                    the entry schema (drives the validator below)
    leaderboard/<protocol>/<name>.json         one entry per file
    leaderboard/checkpoints/<protocol>/<name>/ small checkpoints kept in git
    leaderboard/LEADERBOARD.md, index.html     rendered, one table per protocol

Improvements over RobustBench's layout: the protocol fixes the evaluation subset and seed, so a
number can be re-computed bit-for-bit on one machine; ``verify`` re-runs the protocol on the
checkpoint and checks every number against the protocol's stated tolerances; submitter
(``reported``) and maintainer (``reproduced``) numbers are kept apart and ``unreliable`` is set
from the comparison, not by hand; nothing needs the network.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from harness.checkpoint import WEIGHTS_FILE, sha256_file
from harness.errors import LatentBenchError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "leaderboard" / "schema.json"

# ---------------------------------------------------------------------------------------------------
# schema validation: a small JSON-Schema subset interpreter driven by leaderboard/schema.json
# ---------------------------------------------------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # JSON has no bool/int overlap; Python's bool is an int subclass, so exclude it explicitly
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else SCHEMA_PATH
    if not p.exists():
        raise LatentBenchError(f"leaderboard schema {p} not found; it ships with the repository as leaderboard/schema.json")
    return json.loads(p.read_text())


def _type_name(v: Any) -> str:
    for name, test in _TYPES.items():
        if test(v):
            return name
    return type(v).__name__


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise LatentBenchError(f"schema $ref '{ref}' is not supported: only local '#/...' references")
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k not in ("$ref", "description")}}
    return schema


def schema_errors(value: Any, schema: dict, root: dict | None = None, path: str = "") -> list[str]:
    """Errors of ``value`` against ``schema`` as '<field path>: <problem>' strings (empty when valid).

    Supports the keywords the entry schema uses: $ref, oneOf, type, enum, required, properties,
    additionalProperties, items, minimum, maximum, minLength, pattern."""
    root = root or schema
    schema = _resolve(schema, root)
    where = path or "(entry)"
    if "oneOf" in schema:
        branches = [schema_errors(value, s, root, path) for s in schema["oneOf"]]
        if sum(not b for b in branches) == 1:
            return []
        # report the branch whose type fits, which is what the writer most likely meant
        fitting = [b for s, b in zip(schema["oneOf"], branches) if "type" not in _resolve(s, root)
                   or _TYPES[_resolve(s, root)["type"]](value)]
        return fitting[0] if fitting else [f"{where}: matches none of the allowed forms"]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: expected {' or '.join(types)}, got {_type_name(value)} {json.dumps(value)[:60]}"]
    errs: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {json.dumps(value)} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errs.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{where}: '{value[:60]}' does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errs.append(f"{path + '.' if path else ''}{key}: missing required field")
        props = schema.get("properties", {})
        for key, v in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                errs += schema_errors(v, props[key], root, sub)
            elif schema.get("additionalProperties") is False:
                errs.append(f"{sub}: unknown field (allowed: {', '.join(sorted(props))})")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += schema_errors(v, schema["additionalProperties"], root, sub)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errs += schema_errors(item, schema["items"], root, f"{path}[{i}]")
    return errs


# ---------------------------------------------------------------------------------------------------
# semantic checks: ranges, protocol, completeness, checksums, duplicates
# ---------------------------------------------------------------------------------------------------

#: (metric, value-key regex, low, high): the range a metric value must lie in. MS-SSIM as computed
#: here ReLUs every scale (pytorch-msssim), so it lies in [0, 1]; accuracies are shares.
RANGE_RULES: tuple[tuple[str, str, float, float], ...] = (
    ("downstream_adv_accuracy", r"accuracy", 0.0, 1.0),
    ("ms_ssim", r"^(?!adv_norm).*_(mean|std)$", 0.0, 1.0),
    ("*", r"^adv_norm_mean$", 0.0, math.inf),
    ("l2_distance", r".", 0.0, math.inf),
    ("spectral_radius", r".", 0.0, math.inf),
    ("vn_entropy", r".", 0.0, math.inf),
    ("fid", r".", 0.0, math.inf),
    ("*", r"_std$", 0.0, math.inf),
)
#: attacks keep the perturbation inside the budget (SPEC §0); slack for float32 rounding
BUDGET_SLACK = 1e-3


def range_errors(entry: dict[str, Any]) -> list[str]:
    errs = []
    for section in ("reported", "reproduced"):
        numbers = entry.get(section)
        if not isinstance(numbers, dict) or not isinstance(numbers.get("results"), list):
            continue
        for i, rec in enumerate(numbers["results"]):
            if not isinstance(rec, dict) or not isinstance(rec.get("values"), dict):
                continue
            for key, v in rec["values"].items():
                f = f"{section}.results[{i}].values.{key} ({rec.get('metric')}"
                f += f" x {rec['attack']}@{rec['budget']})" if rec.get("attack") else ")"
                if not _TYPES["number"](v):
                    continue  # the schema reports it
                if not math.isfinite(v):
                    errs.append(f"{f}: {v} is not finite")
                    continue
                for metric, pattern, lo, hi in RANGE_RULES:
                    if metric in ("*", rec.get("metric")) and re.search(pattern, key) and not lo <= v <= hi:
                        errs.append(f"{f}: {v} is outside [{lo:g}, {hi:g}]")
                        break
                budget = rec.get("budget")
                if key == "adv_norm_mean" and _TYPES["number"](budget) and v > budget * (1 + BUDGET_SLACK) + 1e-9:
                    errs.append(f"{f}: mean perturbation norm {v:.6g} exceeds the budget {budget:g}")
    return errs


def expected_cells(protocol, registry) -> set[tuple[str, Optional[str], Optional[float]]]:
    """The (metric, attack, budget) cells a complete entry of ``protocol`` has."""
    cells = set()
    for m in protocol.metrics:
        label = m.get("name") or m["plugin"]
        if "attack" not in registry.metric(m["plugin"]).needs:
            cells.add((label, None, None))
            continue
        for a in protocol.attacks:
            if m.get("attacks") is not None and a["name"] not in m["attacks"]:
                continue
            for b in a.get("budgets") or [a.get("config", {}).get("eps")]:
                cells.add((label, a["name"], float(b)))
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
        want = expected_cells(proto, registry)
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
    from harness.plugins import get_registry

    registry = registry or get_registry()
    d = Path(directory)
    if not d.is_dir():
        raise LatentBenchError(f"leaderboard folder {d} does not exist; pass the folder holding <protocol>/<entry>.json files")
    schema = schema or load_schema(d / "schema.json" if (d / "schema.json").exists() else None)
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
            errs += range_errors(data)
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


# ---------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------

PAIR_LABELS = {"target_vs_adv_recon": "(x_t, x~_a)", "recon_vs_adv_recon": "(x~_r, x~_a)"}
METRIC_LABELS = {"ms_ssim": "MS-SSIM", "l2_distance": "L2"}


@dataclass
class Column:
    key: str
    header: str
    better: str  # "higher" | "lower" | ""
    get: Callable[[dict], Optional[float]] = field(repr=False, default=lambda e: None)


def _find(entry: dict, metric: str, attack=None, budget=None) -> Optional[dict]:
    for r in entry["reported"]["results"]:
        if r["metric"] == metric and r.get("attack") == attack and (
                budget is None or (r.get("budget") is not None and abs(r["budget"] - budget) < 1e-12)):
            return r
    return None


def _value(metric, key, attack=None, budget=None):
    def get(entry):
        r = _find(entry, metric, attack, budget)
        return None if r is None else r["values"].get(key)
    return get


def columns_for(protocol, entries: list[dict]) -> list[Column]:
    """Per-attack/per-budget columns, in protocol order. Which direction is more robust: a targeted
    latent attack succeeds when x~_a looks like x_t (lower MS-SSIM(x_t, x~_a), higher L2 is more
    robust); max-damage succeeds when x~_a moves away from x~_r (higher MS-SSIM, lower L2 is more
    robust), 003 §5.4.3."""
    cols = [Column("clean_mse", "clean MSE", "lower", lambda e: e["reported"]["clean"]["mse"])]
    metric_plugins = [m["plugin"] for m in protocol.metrics]
    for a in protocol.attacks:
        for b in a.get("budgets") or []:
            for metric in ("ms_ssim", "l2_distance"):
                if metric not in metric_plugins:
                    continue
                for pair, ms_better in (("target_vs_adv_recon", "lower"), ("recon_vs_adv_recon", "higher")):
                    key = f"{pair}_mean"
                    if not any((_find(e, metric, a["name"], float(b)) or {}).get("values", {}).get(key) is not None
                               for e in entries):
                        continue
                    better = ms_better if metric == "ms_ssim" else ("higher" if ms_better == "lower" else "lower")
                    cols.append(Column(f"{a['name']}@{b:g}/{metric}/{pair}",
                                       f"{a['name']} λ={b:g} {METRIC_LABELS[metric]}{PAIR_LABELS[pair]}",
                                       better, _value(metric, key, a["name"], float(b))))
    if "spectral_radius" in metric_plugins:
        cols.append(Column("spectral_radius", "spectral radius", "lower", _value("spectral_radius", "spectral_radius_mean")))
    if "vn_entropy" in metric_plugins:
        cols.append(Column("vn_entropy", "VN entropy", "higher", _value("vn_entropy", "vn_entropy_mean")))
    if "fid" in metric_plugins:
        # FIDs from different feature extractors are never compared: one column per extractor
        for ex in sorted({(_find(e, "fid") or {}).get("feature_extractor", "?") for e in entries}):
            cols.append(Column(f"fid/{ex}", f"FID [{ex}]", "lower",
                               lambda e, ex=ex: (_find(e, "fid") or {}).get("values", {}).get("fid")
                               if (_find(e, "fid") or {}).get("feature_extractor", "?") == ex else None))
    if "downstream_adv_accuracy" in metric_plugins:
        cols.append(Column("nominal_accuracy", "probe acc.", "higher", _value("downstream_adv_accuracy", "nominal_accuracy")))
        keys = sorted({k for e in entries for k in ((_find(e, "downstream_adv_accuracy") or {}).get("values") or {})
                       if k.startswith("adv_accuracy@")}, key=lambda k: float(k.split("@")[1]))
        for k in keys:
            cols.append(Column(k, f"adv. acc. ε={k.split('@')[1]}", "higher", _value("downstream_adv_accuracy", k)))
    return cols


def headline(cols: list[Column]) -> Column:
    """Default ranking column: max-damage MS-SSIM(x~_r, x~_a) at the largest budget (the headline
    number of 003 §5.4 / 004 Fig. 10), else the first column."""
    md = [c for c in cols if c.key.startswith("max_damage@") and c.key.endswith("ms_ssim/recon_vs_adv_recon")]
    return md[-1] if md else cols[0]


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def status_of(entry: dict) -> str:
    if entry.get("unreliable"):
        return "unreliable"
    rep = entry.get("reproduced")
    return "verified" if rep and rep.get("status") == "reproduced" else "unverified"


@dataclass
class Table:
    protocol: Any
    columns: list[Column]
    rows: list[dict]  # entries in default order
    sort_column: Column


def build_tables(entries: list[dict], registry=None) -> list[Table]:
    from harness.plugins import get_registry

    registry = registry or get_registry()
    by_proto: dict[str, list[dict]] = {}
    for e in entries:
        by_proto.setdefault(e["protocol"]["name"], []).append(e)
    tables = []
    for name in sorted(by_proto):
        proto = registry.protocol(name)
        es = by_proto[name]
        cols = columns_for(proto, es)
        key = headline(cols)
        sign = -1 if key.better == "higher" else 1
        # unreliable entries sort last whatever their numbers
        es = sorted(es, key=lambda e: (bool(e.get("unreliable")), sign * (key.get(e) if key.get(e) is not None else math.inf),
                                       e["name"]))
        tables.append(Table(proto, cols, es, key))
    return tables


def _arrow(c: Column) -> str:
    return {"higher": " ↑", "lower": " ↓"}.get(c.better, "")


def render_markdown(tables: list[Table], empty: tuple = ()) -> str:
    from tabulate import tabulate

    out = ["# LatentBench leaderboard", "",
           "Generated by `latentbench leaderboard render`; do not edit by hand. One table per protocol: numbers of "
           "different protocols are never ranked together. ↑/↓: the direction that is more robust (better). "
           "Status: `verified` = re-computed by `latentbench leaderboard verify` within the protocol's tolerances; "
           "`unreliable` = could not be reproduced.", ""]
    for t in tables:
        out += [f"## {t.protocol.name} (version {t.protocol.version})", "", t.protocol.description, "",
                f"Sorted by {t.sort_column.header}{_arrow(t.sort_column)}. Tolerances for verify: "
                f"rel {t.protocol.tolerances.get('rel')}, abs {t.protocol.tolerances.get('abs')}. {CAVEAT}", ""]
        headers = ["#", "entry", "model", "status"] + [c.header + _arrow(c) for c in t.columns]
        rows = []
        for i, e in enumerate(t.rows, 1):
            name = f"[{e['name']}]({e['paper']})" if e.get("paper") else e["name"]
            rows.append([i, name, e["model"]["plugin"], status_of(e)] + [fmt(c.get(e)) for c in t.columns])
        out += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    for p in empty:
        out += [f"## {p.name} (version {p.version})", "", p.description, "", "No entries yet.", ""]
    return "\n".join(out)


#: shown under every table: the headline ranking alone rewards a collapsed encoder
CAVEAT = ("Read robustness together with clean MSE: an encoder whose reconstructions ignore the input (posterior collapse) is trivially robust to max-damage attacks.")

_SORT_JS = """
function lbSort(table, col, dir) {
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].getAttribute('data-value'), y = b.cells[col].getAttribute('data-value');
    var nx = parseFloat(x), ny = parseFloat(y);
    var c;
    if (!isNaN(nx) && !isNaN(ny)) { c = nx - ny; }
    else if (isNaN(nx) !== isNaN(ny)) { return isNaN(nx) ? 1 : -1; }  /* missing values last */
    else { c = String(x).localeCompare(String(y)); }
    return dir === 'asc' ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
  table.setAttribute('data-sort-col', col);
  table.setAttribute('data-sort-dir', dir);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.classList.remove('asc', 'desc');
    if (i === col) { th.classList.add(dir); }
  });
}
function lbFromHash() {
  var m = /sort=([^:&]+):(\\d+):(asc|desc)/.exec(decodeURIComponent(location.hash));
  if (m) { var t = document.getElementById(m[1]); if (t) { lbSort(t, parseInt(m[2], 10), m[3]); } }
}
document.addEventListener('DOMContentLoaded', function () {
  Array.prototype.forEach.call(document.querySelectorAll('table.lb'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener('click', function () {
        var same = table.getAttribute('data-sort-col') === String(i);
        var dir = same ? (table.getAttribute('data-sort-dir') === 'asc' ? 'desc' : 'asc')
                       : (th.getAttribute('data-better') === 'higher' ? 'desc' : 'asc');
        lbSort(table, i, dir);
      });
    });
  });
  lbFromHash();
});
window.addEventListener('hashchange', lbFromHash);
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table.lb { border-collapse: collapse; font-size: 13px; margin-bottom: 2em; }
table.lb th, table.lb td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
table.lb td.text, table.lb th.text { text-align: left; }
table.lb th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
table.lb th.asc::after { content: " ▲"; } table.lb th.desc::after { content: " ▼"; }
tr.unreliable td { color: #999; text-decoration: line-through; }
p.desc { max-width: 60em; }
"""


def table_id(protocol_name: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "-", protocol_name)


def render_html(tables: list[Table], empty: tuple = ()) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>LatentBench leaderboard</title>", f"<style>{_CSS}</style>", f"<script>{_SORT_JS}</script>",
             "</head><body>", "<h1>LatentBench leaderboard</h1>",
             "<p class='desc'>One table per protocol; numbers of different protocols are never ranked together. "
             "Click a column header to sort. ↑/↓ marks the more robust direction. Status <em>verified</em>: "
             "re-computed by <code>latentbench leaderboard verify</code> within the protocol's tolerances; "
             "<em>unreliable</em>: could not be reproduced.</p>"]
    for t in tables:
        tid = table_id(t.protocol.name)
        parts += [f"<h2>{e(t.protocol.name)} (version {e(t.protocol.version)})</h2>",
                  f"<p class='desc'>{e(t.protocol.description)}</p>",
                  f"<p>Default order: {e(t.sort_column.header)}{_arrow(t.sort_column)}. Tolerances for verify: rel "
                  f"{t.protocol.tolerances.get('rel')}, abs {t.protocol.tolerances.get('abs')}. {e(CAVEAT)}</p>",
                  f"<table class='lb' id='{tid}' data-protocol='{e(t.protocol.name)}'><thead><tr>"]
        heads = [("#", "", "num"), ("entry", "", "text"), ("model", "", "text"), ("status", "", "text")]
        heads += [(c.header + _arrow(c), c.better, "num") for c in t.columns]
        parts += [f"<th class='{cls}' data-better='{b}'>{e(h)}</th>" for h, b, cls in heads]
        parts.append("</tr></thead><tbody>")
        for i, ent in enumerate(t.rows, 1):
            name = e(ent["name"])
            if ent.get("paper"):
                name = f"<a href='{e(ent['paper'])}'>{name}</a>"
            st = status_of(ent)
            cells = [f"<td data-value='{i}'>{i}</td>",
                     f"<td class='text' data-value='{e(ent['name'])}'>{name}</td>",
                     f"<td class='text' data-value='{e(ent['model']['plugin'])}'>{e(ent['model']['plugin'])}</td>",
                     f"<td class='text' data-value='{st}'>{st}</td>"]
            for c in t.columns:
                v = c.get(ent)
                cells.append(f"<td data-value='{'' if v is None else repr(float(v))}'>{fmt(v)}</td>")
            parts.append(f"<tr class='{st}' data-entry='{e(ent['name'])}'>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    for p in empty:
        parts += [f"<h2>{e(p.name)} (version {e(p.version)})</h2>", f"<p class='desc'>{e(p.description)}</p>",
                  "<p>No entries yet.</p>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_tree(directory: str | Path = "leaderboard", markdown: str | None = None, html_out: str | None = None,
                registry=None) -> list[Path]:
    """Validate, then write LEADERBOARD.md and index.html. Refuses to render an invalid leaderboard."""
    errors, loaded = validate_tree(directory, registry)
    if errors:
        raise LatentBenchError("the leaderboard has problems; fix them before rendering "
                               "(`latentbench leaderboard validate`):\n" + "\n".join(errors))
    tables = build_tables([le.data for le in loaded], registry)
    d = Path(directory)
    md_path, html_path = Path(markdown or d / "LEADERBOARD.md"), Path(html_out or d / "index.html")
    from harness.plugins import get_registry

    reg = registry or get_registry()
    shown = {t.protocol.name for t in tables}
    empty = tuple(reg.protocol(n) for n in reg.names("protocol") if n not in shown)
    md_path.write_text(render_markdown(tables, empty))
    html_path.write_text(render_html(tables, empty))
    return [md_path, html_path]


# ---------------------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------------------

@dataclass
class Difference:
    field: str
    reported: Any
    reproduced: Any
    allowed: float
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "reported": self.reported, "reproduced": self.reproduced, "allowed": self.allowed}


@dataclass
class VerifyReport:
    entry: str
    protocol: str
    tolerances: dict[str, float]
    compared: list[Difference]
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[Difference]:
        return [d for d in self.compared if not d.ok]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def text(self) -> str:
        lines = [f"verify {self.entry} under {self.protocol} (tolerance |reported - reproduced| <= "
                 f"{self.tolerances['abs']} + {self.tolerances['rel']} * |reported|), re-run took {self.seconds:.1f}s:"]
        for d in self.mismatches:
            lines.append(f"  MISMATCH {d.field}: reported {d.reported}, reproduced {d.reproduced}"
                         + (f" (allowed difference {d.allowed:.4g})" if math.isfinite(d.allowed) else ""))
        lines.append(f"{len(self.compared) - len(self.mismatches)}/{len(self.compared)} numbers reproduced"
                     + ("" if self.ok else f"; {len(self.mismatches)} mismatch(es)"))
        return "\n".join(lines)


def within(reported: float, reproduced: float, tol: dict[str, float]) -> tuple[bool, float]:
    allowed = tol["abs"] + tol["rel"] * abs(reported)
    return abs(reported - reproduced) <= allowed, allowed


def compare_numbers(reported: dict, reproduced: dict, tol: dict[str, float]) -> list[Difference]:
    """Compare every number of two ``{clean, results}`` sections; a cell or value present on one side
    only is a mismatch."""
    out = []
    for k in sorted(set(reported["clean"]) | set(reproduced["clean"])):
        a, b = reported["clean"].get(k), reproduced["clean"].get(k)
        if k == "n_images":
            out.append(Difference(f"clean.{k}", a, b, 0.0, a == b))
        elif a is None or b is None:
            out.append(Difference(f"clean.{k}", a, b, math.inf, False))
        else:
            ok, allowed = within(a, b, tol)
            out.append(Difference(f"clean.{k}", a, b, allowed, ok))
    rep = {_cell(r): r for r in reported["results"]}
    new = {_cell(r): r for r in reproduced["results"]}
    for cell in sorted(set(rep) | set(new), key=str):
        m, a_, b_ = cell
        label = f"{m} x {a_}@{b_:g}" if a_ else m
        if cell not in rep or cell not in new:
            out.append(Difference(label, "present" if cell in rep else "absent",
                                  "present" if cell in new else "absent", math.inf, False))
            continue
        va, vb = rep[cell]["values"], new[cell]["values"]
        for k in sorted(set(va) | set(vb)):
            if k not in va or k not in vb:
                out.append(Difference(f"{label}: {k}", va.get(k), vb.get(k), math.inf, False))
            else:
                ok, allowed = within(va[k], vb[k], tol)
                out.append(Difference(f"{label}: {k}", va[k], vb[k], allowed, ok))
        fa, fb = rep[cell].get("feature_extractor"), new[cell].get("feature_extractor")
        if fa != fb:  # FIDs from different extractors are not comparable at all
            out.append(Difference(f"{label}: feature_extractor", fa, fb, math.inf, False))
    return out


def verify_entry(entry_path: str | Path, checkpoint: str | None = None, device: str = "cpu",
                 work_dir: str | None = None, write: bool = False, registry=None,
                 repo_root: str | Path | None = None) -> VerifyReport:
    """Re-run the entry's protocol on its checkpoint and compare every number with the protocol's
    tolerances. With ``write``, store the maintainers' numbers under ``reproduced`` and set
    ``unreliable`` when they do not match."""
    from harness.benchmark import BenchmarkRequest, evaluate
    from harness.plugins import get_registry

    registry = registry or get_registry()
    p = Path(entry_path)
    if not p.exists():
        raise LatentBenchError(f"entry {p} not found")
    entry = json.loads(p.read_text())
    errs = schema_errors(entry, load_schema())
    if errs:
        raise LatentBenchError(f"{p} is not a valid entry, fix it first: " + "; ".join(errs[:5]))
    proto = registry.protocol(entry["protocol"]["name"], path=f"{p}:protocol.name")
    root = Path(repo_root) if repo_root else p.resolve().parent.parent.parent
    ck = Path(checkpoint) if checkpoint else (root / entry["checkpoint"]["path"] if entry["checkpoint"]["path"] else None)
    if ck is None or not (ck / WEIGHTS_FILE).exists():
        raise LatentBenchError(f"checkpoint of {p} not found at {ck}; rebuild it with `{entry['checkpoint']['regenerate']}` "
                               f"or pass --checkpoint DIR")
    sha = sha256_file(ck / WEIGHTS_FILE)
    if sha != entry["checkpoint"]["sha256"]:
        raise LatentBenchError(f"checkpoint {ck} has sha256 {sha} but {p} was computed on {entry['checkpoint']['sha256']}: "
                               f"these are different weights, verification would be meaningless")
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="latentbench-verify-")
        work_dir = tmp.name
    try:
        start = time.perf_counter()
        fresh = evaluate(BenchmarkRequest(protocol=proto.name, checkpoint=str(ck), name=entry["name"], device=device,
                                          work_dir=work_dir), registry, repo_root=root)
        seconds = time.perf_counter() - start
    finally:
        if tmp is not None:
            tmp.cleanup()
    tol = dict(proto.tolerances)
    diffs = compare_numbers(entry["reported"], fresh["reported"], tol)
    report = VerifyReport(entry["name"], proto.name, tol, diffs, seconds)
    if write:
        entry["reproduced"] = {"status": "reproduced" if report.ok else "mismatch",
                               "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tolerances": tol,
                               "clean": fresh["reported"]["clean"], "results": fresh["reported"]["results"],
                               "differences": [d.to_json() for d in report.mismatches],
                               "provenance": fresh["provenance"]}
        entry["unreliable"] = not report.ok
        p.write_text(json.dumps(entry, indent=1) + "\n")
    return report
