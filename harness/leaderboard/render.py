"""Leaderboard rendering: one Markdown and one sortable static HTML table per protocol.

The columns come from what the protocol runs and what each metric declares: for every cell of the
protocol (metric x attack x budget) the metric class's ``leaderboard`` declarations
(:class:`latentbench.LeaderboardValue`) give the columns, their labels and their more robust
direction. This module names no metric, so a third-party metric gets columns the way a built-in
does. The default order is the protocol's ``rank_by`` column (the first column, clean MSE, when it
sets none). The HTML page's skeleton, CSS and script live in ``template.html`` next to this module.

A protocol with ``main_columns`` gets a short main table instead (rank, model, the selected columns
with 95% intervals where a value has an ``<value>_se`` sibling, and the ranking record's raised
``flag_*`` values) and one detail page per entry with everything else (``latentbench.leaderboard.pages``).
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Callable, Optional

from tabulate import tabulate

from latentbench.errors import LatentBenchError
from latentbench.leaderboard.validate import protocol_budgets, validate_tree
from latentbench.protocol import CLEAN_MSE

TEMPLATE_PATH = Path(__file__).resolve().parent / "template.html"


@dataclass
class Column:
    key: str
    header: str
    better: str  # "higher" | "lower" | ""
    get: Callable[[dict], Optional[float]] = field(repr=False, default=lambda e: None)
    #: where the numbers come from (CLEAN_MSE for the clean MSE column): matched by Protocol.rank_by
    metric: Optional[str] = None
    value: Optional[str] = None
    attack: Optional[str] = None
    budget: Optional[float] = None
    split: Optional[str] = None
    #: the entry's result record the value comes from (None: no record, e.g. clean MSE)
    record: Callable[[dict], Optional[dict]] = field(repr=False, default=lambda e: None)

    def se(self, entry: dict) -> Optional[float]:
        """The standard error the record reports next to the value (``<value>_se``), if any."""
        rec = self.record(entry)
        return None if rec is None or self.value is None else rec["values"].get(self.value + "_se")

    def interval(self, entry: dict) -> Optional[tuple[float, float]]:
        """The 95% interval the record reports next to the value (``<value>_ci_low`` and
        ``<value>_ci_high``, e.g. a bootstrap interval), if any."""
        rec = self.record(entry)
        if rec is None or self.value is None:
            return None
        lo, hi = rec["values"].get(self.value + "_ci_low"), rec["values"].get(self.value + "_ci_high")
        return None if lo is None or hi is None else (float(lo), float(hi))


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
                def record(e, sv=sv, field_name=d.split_by):
                    r = _find(e, label, attack, budget)
                    if r is None or (field_name is not None and _split_value(r, field_name) != sv):
                        return None
                    return r

                def get(e, key=key, record=record):
                    r = record(e)
                    return None if r is None else r["values"].get(key)
                cols.append(Column(f"{where}{label}/{key}" + ("" if sv is None else f"[{sv}]"),
                                   f"{prefix}{d.header(key)}" + ("" if sv is None else f" [{sv}]") + suffix,
                                   d.better or "", get, label, key, attack, budget, sv, record))
    return cols


def columns_for(protocol, entries: list[dict], registry=None) -> list[Column]:
    """Columns of one protocol's table, in protocol order: clean MSE, then the attack-based metrics
    per attack and budget (so the metrics of one attack run sit side by side), then the metrics
    without an attack; within a cell, in the order the metric declares its values."""
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    cols = [Column("clean_mse", "clean MSE", "lower", lambda e: e["reported"]["clean"]["mse"],
                   CLEAN_MSE["metric"], CLEAN_MSE["value"])]
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


def _selects(sel, c: Column) -> bool:
    """Whether a rank_by / main_columns selector names column ``c`` (no ``split``: any split)."""
    budget = None if sel.get("budget") is None else float(sel["budget"])
    return ((c.metric, c.value, c.attack) == (sel["metric"], sel["value"], sel.get("attack"))
            and _same_budget(budget, c.budget) and sel.get("split") in (None, c.split))


def _no_column(protocol, field_name: str, sel, cols: list[Column]) -> LatentBenchError:
    return LatentBenchError(
        f"protocol {protocol.name}: {field_name} {dict(sel)} names no column of its table; a column exists for each "
        f"value a metric declares with a label (Metric.leaderboard) that an entry reports, and {CLEAN_MSE} is the "
        f"clean MSE. Columns: " + ", ".join(c.key for c in cols))


def rank_column(protocol, cols: list[Column]) -> Column:
    """The column a table is sorted by by default: the protocol's ``rank_by``, else the first."""
    rb = getattr(protocol, "rank_by", None)
    if not rb:
        return cols[0]
    for c in cols:
        if _selects(rb, c):
            return c
    raise _no_column(protocol, "rank_by", rb, cols)


def main_columns(protocol, cols: list[Column]) -> Optional[list[Column]]:
    """The columns of the protocol's main table in ``main_columns`` order (a selector without
    ``split`` gives every split column), or None for a protocol without main_columns."""
    sels = getattr(protocol, "main_columns", None)
    if not sels:
        return None
    out: list[Column] = []
    for i, sel in enumerate(sels):
        hit = [c for c in cols if _selects(sel, c)]
        if not hit:
            raise _no_column(protocol, f"main_columns[{i}]", sel, cols)
        out += [c for c in hit if c not in out]
    return out


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


#: half-width of a normal 95% interval in standard errors
Z95 = 1.96


def fmt_ci(v: Optional[float], se: Optional[float]) -> str:
    """A value with its 95% interval (``0.603 ± 0.016``) when the record reports its SE."""
    if v is None or se is None:
        return fmt(v)
    return f"{v:.3f} ± {Z95 * se:.3f}"


def fmt_interval(v: Optional[float], ci: Optional[tuple[float, float]]) -> str:
    """A value with an interval the record states by its ends (``0.973 [0.812, 1.120]``); used for
    intervals that are not symmetric (a bias-corrected bootstrap)."""
    if v is None or ci is None:
        return fmt(v)
    return f"{fmt(v)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def cell_text(c: Column, entry: dict) -> str:
    ci = c.interval(entry)
    return fmt_interval(c.get(entry), ci) if ci is not None else fmt_ci(c.get(entry), c.se(entry))


def flags_of(c: Column, entry: dict) -> list[tuple[str, str]]:
    """The raised sanity flags of the record behind ``c`` (values ``flag_<name>`` = 1) as
    (name, message); the messages come from the record's ``info.flag_messages``."""
    rec = c.record(entry)
    if rec is None:
        return []
    msgs = (rec.get("info") or {}).get("flag_messages") or {}
    return [(k[5:], str(msgs.get(k[5:], ""))) for k in sorted(rec["values"])
            if k.startswith("flag_") and rec["values"][k] >= 0.5]


def tolerance_text(protocol) -> str:
    """The protocol's per-metric verify tolerances in one line (|Δ| <= abs + rel·|reported|)."""
    tol = protocol.tolerances
    items = tol.items() if "default" in tol else [("default", tol)]
    return "; ".join(f"{k} abs {v['abs']:g} rel {v['rel']:g}" for k, v in items)


def status_of(entry: dict) -> str:
    if entry.get("unreliable"):
        return "unreliable"
    rep = entry.get("reproduced")
    # "checked": per-image records and a random subset of images recomputed, the rest not re-run
    return {"reproduced": "verified", "checked": "checked"}.get((rep or {}).get("status"), "unverified")


@dataclass
class Table:
    protocol: Any
    columns: list[Column]
    rows: list[dict]  # entries in default order
    sort_column: Column
    #: the main table's columns (Protocol.main_columns); None: one table with every column
    main: Optional[list[Column]] = None


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
        tables.append(Table(proto, cols, es, key, main_columns(proto, cols)))
    return tables


def _arrow(c: Column) -> str:
    return {"higher": " ↑", "lower": " ↓"}.get(c.better, "")


_EPS_KEY = re.compile(r"(.+)@([0-9.]+(?:[eE][-+]?[0-9]+)?)")


def curve_series(c: Column, entry: dict) -> dict[str, list[tuple[float, float, float]]]:
    """The curves in the record behind ``c``: every value family ``<name>@<budget>`` that reports a
    standard error (``<name>@<budget>_se``), as {name: [(budget, value, se), ...]} by budget."""
    rec = c.record(entry)
    out: dict[str, list[tuple[float, float, float]]] = {}
    if rec is None:
        return out
    vals = rec["values"]
    for k in sorted(vals, key=_natural):
        m = _EPS_KEY.fullmatch(k)
        if m and f"{k}_se" in vals:
            out.setdefault(m.group(1), []).append((float(m.group(2)), float(vals[k]), float(vals[f"{k}_se"])))
    return {name: sorted(pts) for name, pts in out.items()}


def pages_dir(protocol_name: str, pages: str = "pages") -> str:
    """Where a protocol's detail pages and plots go, relative to the index page."""
    return f"{pages}/{re.sub(r'[^A-Za-z0-9_.+-]', '-', protocol_name)}"


def entry_page(protocol_name: str, entry_name: str, pages: str = "pages") -> str:
    return f"{pages_dir(protocol_name, pages)}/{entry_name}.html"


def has_curves(t: Table) -> bool:
    return any(curve_series(t.sort_column, e) for e in t.rows)


def _flag_legend(t: Table) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for e in t.rows:
        for name, msg in flags_of(t.sort_column, e):
            seen.setdefault(name, msg)
    return sorted(seen.items())


MAIN_NOTE = ("Each model links to its detail page: every other measurement, the sanity flags with their "
             "messages, the robustness curve and example images. Intervals: 95% (± 1.96 standard errors; "
             "[low, high] where the metric states the ends, as a bootstrap interval).")


def _unreliable(entry: dict) -> str:
    # the main table has no status column; an entry that could not be reproduced still says so
    return " (unreliable)" if entry.get("unreliable") else ""


def _markdown_main(t: Table, pages: str) -> list[str]:
    headers = ["#", "model"] + [c.header + _arrow(c) for c in t.main] + ["flags"]
    rows = []
    for i, e in enumerate(t.rows, 1):
        name = f"[{e['name']}]({entry_page(t.protocol.name, e['name'], pages)})" + _unreliable(e)
        rows.append([i, name] + [cell_text(c, e) for c in t.main]
                    + [", ".join(n for n, _ in flags_of(t.sort_column, e))])
    out = [MAIN_NOTE, "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    legend = _flag_legend(t)
    if legend:
        out += ["Flags: " + "; ".join(f"`{n}`: {m}" if m else f"`{n}`" for n, m in legend) + ".", ""]
    if has_curves(t):
        out += [f"![robustness curves of {t.protocol.name}]({pages_dir(t.protocol.name, pages)}/curves.png)", ""]
    return out


def render_markdown(tables: list[Table], empty: tuple = (), pages: str = "pages") -> str:
    out = ["# LatentBench leaderboard", "",
           "Generated by `latentbench leaderboard render`; do not edit by hand. One table per protocol: numbers of "
           "different protocols are never ranked together. ↑/↓: the direction that is more robust (better). "
           "Status: `verified` = re-computed by `latentbench leaderboard verify --full` within the protocol's "
           "tolerances; `checked` = its per-image records and a random subset of images re-computed exactly; "
           "`unreliable` = could not be reproduced.", ""]
    for t in tables:
        out += [f"## {t.protocol.name} (version {t.protocol.version})", "", t.protocol.description, "",
                f"Sorted by {t.sort_column.header}{_arrow(t.sort_column)}. Tolerances for verify: "
                f"{tolerance_text(t.protocol)}. {caveat(t)}".rstrip(), ""]
        if t.main is not None:
            out += _markdown_main(t, pages)
            continue
        headers = ["#", "entry", "model", "status"] + [c.header + _arrow(c) for c in t.columns]
        rows = []
        for i, e in enumerate(t.rows, 1):
            name = f"[{e['name']}]({e['paper']})" if e.get("paper") else e["name"]
            rows.append([i, name, e["model"]["plugin"], status_of(e)] + [cell_text(c, e) for c in t.columns])
        out += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    for p in empty:
        out += [f"## {p.name} (version {p.version})", "", p.description, "", "No entries yet.", ""]
    return "\n".join(out)


#: shown under every table: the headline ranking alone rewards a collapsed encoder
CAVEAT = ("Read robustness together with clean MSE: an encoder whose reconstructions ignore the input (posterior collapse) is trivially robust to max-damage attacks.")


def caveat(t: Table) -> str:
    """The collapse caveat of tables without main columns (v1); a table with main columns shows the
    sanity flags instead, which name collapse where it happens."""
    return CAVEAT if t.main is None else ""


def table_id(protocol_name: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "-", protocol_name)


def _num_cell(v: Optional[float], text: str) -> str:
    return f"<td data-value='{'' if v is None else repr(float(v))}'>{html.escape(text)}</td>"


def flags_html(flags: list[tuple[str, str]]) -> str:
    """Flag names, each with its message as the hover text."""
    e = html.escape
    return ", ".join(f"<span class='flag' title='{e(m)}'>{e(n)}</span>" if m else e(n) for n, m in flags)


def _html_main(t: Table, pages: str) -> list[str]:
    e = html.escape
    tid = table_id(t.protocol.name)
    parts = [f"<p>{e(MAIN_NOTE)}</p>",
             f"<table class='lb' id='{tid}' data-protocol='{e(t.protocol.name)}'><thead><tr>"]
    heads = [("#", "", "num"), ("model", "", "text")] + [(c.header + _arrow(c), c.better, "num") for c in t.main]
    heads.append(("flags", "", "text"))
    parts += [f"<th class='{cls}' data-better='{b}'>{e(h)}</th>" for h, b, cls in heads]
    parts.append("</tr></thead><tbody>")
    for i, ent in enumerate(t.rows, 1):
        st = status_of(ent)
        flags = flags_of(t.sort_column, ent)
        cells = [f"<td data-value='{i}'>{i}</td>",
                 f"<td class='text' data-value='{e(ent['name'])}'><a href='"
                 f"{e(entry_page(t.protocol.name, ent['name'], pages))}'>{e(ent['name'])}</a>{_unreliable(ent)}</td>"]
        cells += [_num_cell(c.get(ent), cell_text(c, ent)) for c in t.main]
        cells.append(f"<td class='text' data-value='{e(','.join(n for n, _ in flags))}'>{flags_html(flags)}</td>")
        parts.append(f"<tr class='{st}' data-entry='{e(ent['name'])}'>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    legend = _flag_legend(t)
    if legend:
        parts.append("<p>Flags: " + "; ".join(f"<code>{e(n)}</code>: {e(m)}" if m else f"<code>{e(n)}</code>"
                                             for n, m in legend) + ".</p>")
    if has_curves(t):
        parts.append(f"<p><img src='{e(pages_dir(t.protocol.name, pages))}/curves.png' style='max-width:100%' "
                     f"alt='robustness curves of every {e(t.protocol.name)} entry'></p>")
    return parts


def render_html(tables: list[Table], empty: tuple = (), pages: str = "pages") -> str:
    """The page: template.html (head, CSS, sort script, intro) with the tables filled in."""
    e = html.escape
    parts = []
    for t in tables:
        tid = table_id(t.protocol.name)
        parts += [f"<h2>{e(t.protocol.name)} (version {e(t.protocol.version)})</h2>",
                  f"<p class='desc'>{e(t.protocol.description)}</p>",
                  f"<p>Default order: {e(t.sort_column.header)}{_arrow(t.sort_column)}. Tolerances for verify: "
                  f"{e(tolerance_text(t.protocol))}. {e(caveat(t))}".rstrip() + "</p>"]
        if t.main is not None:
            parts += _html_main(t, pages)
            continue
        parts.append(f"<table class='lb' id='{tid}' data-protocol='{e(t.protocol.name)}'><thead><tr>")
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
                cells.append(f"<td data-value='{'' if v is None else repr(float(v))}'>{e(cell_text(c, ent))}</td>")
            parts.append(f"<tr class='{st}' data-entry='{e(ent['name'])}'>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    for p in empty:
        parts += [f"<h2>{e(p.name)} (version {e(p.version)})</h2>", f"<p class='desc'>{e(p.description)}</p>",
                  "<p>No entries yet.</p>"]
    # one element a line, as the skeleton around them
    return Template(TEMPLATE_PATH.read_text()).substitute(tables="".join(p + "\n" for p in parts))


def render_tree(directory: str | Path = "leaderboard", markdown: str | None = None, html_out: str | None = None,
                registry=None) -> list[Path]:
    """Validate, then write LEADERBOARD.md and index.html, and for each protocol with main_columns
    the detail pages and plots under ``pages/<protocol>/`` next to index.html. Refuses to render an
    invalid leaderboard."""
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
    pages_root = html_path.parent / "pages"
    # the Markdown file may lie elsewhere: its links point at the same pages
    md_pages = Path(os.path.relpath(pages_root, md_path.parent)).as_posix()
    md_path.write_text(render_markdown(tables, empty, md_pages))
    html_path.write_text(render_html(tables, empty))
    from latentbench.leaderboard.pages import write_pages

    return [md_path, html_path] + write_pages([t for t in tables if t.main is not None], pages_root,
                                               html_path.name)
