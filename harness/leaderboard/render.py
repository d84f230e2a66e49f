"""Leaderboard rendering: one Markdown and one sortable static HTML table per protocol.

The columns come from what the protocol runs and what each metric declares: for every cell of the
protocol (metric x attack x budget) the metric class's ``leaderboard`` declarations
(:class:`latentbench.LeaderboardValue`) give the columns, their labels and their more robust
direction. This module names no metric, so a third-party metric gets columns the way a built-in
does. The default order is the protocol's ``rank_by`` column (the first column, clean MSE, when it
sets none). The HTML page's skeleton, CSS and script live in ``template.html`` next to this module.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Callable, Optional

from latentbench.errors import LatentBenchError
from latentbench.leaderboard.validate import protocol_budgets, validate_tree

TEMPLATE_PATH = Path(__file__).resolve().parent / "template.html"


@dataclass
class Column:
    key: str
    header: str
    better: str  # "higher" | "lower" | ""
    get: Callable[[dict], Optional[float]] = field(repr=False, default=lambda e: None)
    #: where the numbers come from (None for the clean MSE column): matched by Protocol.rank_by
    metric: Optional[str] = None
    value: Optional[str] = None
    attack: Optional[str] = None
    budget: Optional[float] = None
    split: Optional[str] = None


def _same_budget(a: Optional[float], b: Optional[float]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 1e-12


def _find(entry: dict, metric: str, attack=None, budget=None) -> Optional[dict]:
    """The entry's result of one cell; ``budget`` None matches any budget (an attack the protocol
    gives no budgets runs at its own eps)."""
    for r in entry["reported"]["results"]:
        if r["metric"] == metric and r.get("attack") == attack and (
                budget is None or _same_budget(budget, r.get("budget"))):
            return r
    return None


def _split_value(rec: dict, field_name: str) -> str:
    v = rec.get(field_name, (rec.get("result_config") or {}).get(field_name))
    return "?" if v is None else str(v)


def _natural(text: str) -> tuple:
    """Sort key that orders numbers inside keys by value (adv_accuracy@0.05 before @0.1)."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", text)
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p)


def _metric_columns(label: str, plugin: str, cls, config: Optional[dict], entries: list[dict],
                    attack: Optional[str], budget: Optional[float]) -> list[Column]:
    """The columns one cell (metric x attack x budget) contributes: one per declared value with a
    label that at least one entry reports (a pattern key gives one per concrete key), split by the
    declared result field."""
    records = [r for r in (_find(e, label, attack, budget) for e in entries) if r is not None]
    where = prefix = ""
    if attack is not None and budget is not None:
        where, prefix = f"{attack}@{budget:g}/", f"{attack} λ={budget:g} "
    elif attack is not None:
        where, prefix = f"{attack}/", f"{attack} "
    # a protocol that runs one plugin twice under different names needs the name to tell them apart
    suffix = "" if label == plugin else f" ({label})"
    cols = []
    for d in cls.leaderboard_values(config):
        if not d.label:
            continue  # range-checked only
        keys = sorted({k for r in records for k in r["values"] if d.match(k) is not None}, key=_natural)
        for key in keys:
            splits = [None] if d.split_by is None else sorted(
                {_split_value(r, d.split_by) for r in records if key in r["values"]})
            for sv in splits:
                def get(e, key=key, sv=sv, field_name=d.split_by):
                    r = _find(e, label, attack, budget)
                    if r is None or (field_name is not None and _split_value(r, field_name) != sv):
                        return None
                    return r["values"].get(key)
                cols.append(Column(f"{where}{label}/{key}" + ("" if sv is None else f"[{sv}]"),
                                   f"{prefix}{d.header(key)}" + ("" if sv is None else f" [{sv}]") + suffix,
                                   d.better or "", get, label, key, attack, budget, sv))
    return cols


def columns_for(protocol, entries: list[dict], registry=None) -> list[Column]:
    """Columns of one protocol's table, in protocol order: clean MSE, then the attack-based metrics
    per attack and budget (so the metrics of one attack run sit side by side), then the metrics
    without an attack; within a cell, in the order the metric declares its values."""
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    cols = [Column("clean_mse", "clean MSE", "lower", lambda e: e["reported"]["clean"]["mse"])]
    metrics = [(m.get("name") or m["plugin"], m["plugin"], registry.metric(m["plugin"]), m) for m in protocol.metrics]
    for a in protocol.attacks:
        for b in protocol_budgets(a):
            for label, plugin, cls, m in metrics:
                if "attack" in cls.needs and (m.get("attacks") is None or a["name"] in m["attacks"]):
                    cols += _metric_columns(label, plugin, cls, m.get("config"), entries, a["name"], b)
    for label, plugin, cls, m in metrics:
        if "attack" not in cls.needs:
            cols += _metric_columns(label, plugin, cls, m.get("config"), entries, None, None)
    return cols


def rank_column(protocol, cols: list[Column]) -> Column:
    """The column a table is sorted by by default: the protocol's ``rank_by``, else the first."""
    rb = getattr(protocol, "rank_by", None)
    if not rb:
        return cols[0]
    budget = None if rb.get("budget") is None else float(rb["budget"])
    for c in cols:
        if ((c.metric, c.value, c.attack) == (rb["metric"], rb["value"], rb.get("attack"))
                and _same_budget(budget, c.budget) and rb.get("split") in (None, c.split)):
            return c
    raise LatentBenchError(
        f"protocol {protocol.name}: rank_by {dict(rb)} names no column of its table; a column exists for each "
        f"value a metric declares with a label (Metric.leaderboard) that an entry reports. Columns: "
        + ", ".join(c.key for c in cols))


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
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    by_proto: dict[str, list[dict]] = {}
    for e in entries:
        by_proto.setdefault(e["protocol"]["name"], []).append(e)
    tables = []
    for name in sorted(by_proto):
        proto = registry.protocol(name)
        es = by_proto[name]
        cols = columns_for(proto, es, registry)
        key = rank_column(proto, cols)
        sign = -1 if key.better == "higher" else 1
        # unreliable entries sort last whatever their numbers, then entries without the number
        # (whatever the direction: a missing number is not a good one)
        es = sorted(es, key=lambda e: (bool(e.get("unreliable")), key.get(e) is None,
                                       sign * key.get(e) if key.get(e) is not None else 0.0, e["name"]))
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


def table_id(protocol_name: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "-", protocol_name)


def render_html(tables: list[Table], empty: tuple = ()) -> str:
    """The page: template.html (head, CSS, sort script, intro) with the tables filled in."""
    e = html.escape
    parts = []
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
    # one element a line, as the skeleton around them
    return Template(TEMPLATE_PATH.read_text()).substitute(tables="".join(p + "\n" for p in parts))


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
    from latentbench.registry import get_registry

    reg = registry or get_registry()
    shown = {t.protocol.name for t in tables}
    empty = tuple(reg.protocol(n) for n in reg.names("protocol") if n not in shown)
    md_path.write_text(render_markdown(tables, empty))
    html_path.write_text(render_html(tables, empty))
    return [md_path, html_path]
