"""Leaderboard rendering: one Markdown and one sortable static HTML table per protocol."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from latentbench.errors import LatentBenchError
from latentbench.leaderboard.validate import validate_tree

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
    from latentbench.registry import get_registry

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
    from latentbench.registry import get_registry

    reg = registry or get_registry()
    shown = {t.protocol.name for t in tables}
    empty = tuple(reg.protocol(n) for n in reg.names("protocol") if n not in shown)
    md_path.write_text(render_markdown(tables, empty))
    html_path.write_text(render_html(tables, empty))
    return [md_path, html_path]
