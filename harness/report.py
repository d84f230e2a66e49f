"""Reports from stored results: Markdown (tabulate), CSV and JSON, each row with its provenance."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from latentbench.atomic import atomic_write_text, ensure_folder


def _plugin_ref(ident: dict[str, Any]) -> str:
    """``distribution version #source-digest`` (the plugin's module name for one registered directly)."""
    who = ident.get("distribution") or "?"
    if who.startswith("("):  # "(registered directly)": no distribution, the plugin's own name says more
        who = ident.get("provider") or who
    ref = f"{who} {ident['version']}" if ident.get("version") else who
    return f"{ref} #{ident['source_sha256'][:8]}" if ident.get("source_sha256") else ref


def plugins_text(row: dict[str, Any]) -> str:
    """Which plugin code produced a stored row: ``kind name: distribution version #digest; ...``
    (empty for rows stored before plugin identities were recorded)."""
    plugins = (row.get("provenance") or {}).get("plugins") or {}
    return "; ".join(f"{kind} {ident.get('plugin')}: {_plugin_ref(ident)}" for kind, ident in sorted(plugins.items()))


def flat_records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (cell, value name), with status and provenance columns."""
    out = []
    for r in rows:
        base = {"run": r["run"], "model": r["model"], "model_plugin": r.get("model_plugin"),
                "dataset": r["dataset"], "protocol": r.get("protocol"), "attack": r.get("attack") or "",
                "budget": r.get("budget"), "metric": r["metric"], "status": r["status"]}
        prov = r.get("provenance") or {}
        extra = {"seed": prov.get("seed"), "latentbench_version": prov.get("latentbench_version"),
                 "device": (prov.get("hardware") or {}).get("device"), "feature_extractor": prov.get("feature_extractor"),
                 "plugins": plugins_text(r), "key": r["key"][:16]}
        if r["status"] != "ok":
            out.append({**base, "value_name": "", "value": None, "error": (r.get("error") or "").splitlines()[0], **extra})
            continue
        for name, v in (r.get("values") or {}).items():
            out.append({**base, "value_name": name, "value": v, "error": "", **extra})
    return out


def drop_constant_columns(headers: list[str], table: list[list[Any]], keep: int = 1
                          ) -> tuple[list[str], list[list[Any]], list[tuple[str, Any]]]:
    """Leave out the columns (after the first ``keep``) whose value is the same in every row, when
    there are at least two rows; returns (headers, rows, [(header, the shared value), ...])."""
    if len(table) < 2:
        return headers, table, []
    const = [i for i in range(keep, len(headers)) if all(row[i] == table[0][i] for row in table)]
    if not const:
        return headers, table, []
    kept = [i for i in range(len(headers)) if i not in const]
    return ([headers[i] for i in kept], [[row[i] for i in kept] for row in table],
            [(headers[i], table[0][i]) for i in const])


def _constant_note(dropped: list[tuple[str, Any]]) -> str:
    def show(v):
        return "-" if v is None or v == "" else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return "same in every row: " + ", ".join(f"{h}={show(v)}" for h, v in dropped)


def _tabulate(headers: list[str], table: list[list[Any]], keep: int, drop_constant: bool, **kw) -> str:
    dropped: list[tuple[str, Any]] = []
    if drop_constant:
        headers, table, dropped = drop_constant_columns(headers, table, keep)
    text = tabulate(table, headers=headers, tablefmt="github", **kw)
    return text + ("\n" + _constant_note(dropped) if dropped else "")


def markdown_table(rows: Iterable[dict[str, Any]], drop_constant: bool = False) -> str:
    """Every value, one a line; ``drop_constant`` leaves out columns equal in every row (terminal)."""
    recs = flat_records(rows)
    # the plugin code behind each row, as a numbered note under the table (the full text is long)
    notes: dict[str, int] = {}
    for r in recs:
        if r["plugins"]:
            notes.setdefault(r["plugins"], len(notes) + 1)
    table = [[r["model"], r["attack"], "" if r["budget"] is None else f"{r['budget']:g}", r["metric"],
              r["value_name"] or "-", "" if r["value"] is None else f"{r['value']:.4g}",
              r["status"] if r["status"] == "ok" else f"error: {r['error'][:60]}",
              f"[{notes[r['plugins']]}]" if r["plugins"] else "-"] for r in recs]
    text = _tabulate(["model", "attack", "budget", "metric", "value", "result", "status", "plugins"], table, 1,
                     drop_constant)
    return text + "".join(f"\n[{n}] {plugins}" for plugins, n in notes.items())


#: the headline score's metric and values (docs/methods.md §7): printed first when a run has them
HEADLINE_METRIC = "robust_accuracy"
HEADLINE_VALUES = (("robust_accuracy_mean", "robust acc. (mean over ε)"), ("clean_accuracy", "clean acc."))
Z95 = 1.96


def _with_ci(values: dict[str, Any], key: str) -> str:
    v, se = values.get(key), values.get(f"{key}_se")
    if v is None:
        return "-"
    return f"{v:.3f}" if se is None else f"{v:.3f} ± {Z95 * se:.3f}"


def headline_table(rows: Iterable[dict[str, Any]]) -> str:
    """Model, headline with its 95% interval, clean accuracy with its interval and raised sanity
    flags, best headline first; empty when no row has the headline metric."""
    recs = [r for r in rows if r["status"] == "ok" and r["metric"] == HEADLINE_METRIC]
    if not recs:
        return ""
    several = len({r["dataset"] for r in recs}) > 1
    recs.sort(key=lambda r: -(r["values"] or {}).get(HEADLINE_VALUES[0][0], -1.0))
    table = []
    for r in recs:
        v = r["values"] or {}
        flags = ", ".join(sorted(k[5:] for k, x in v.items() if k.startswith("flag_") and x >= 0.5))
        table.append([f"{r['model']} [{r['dataset']}]" if several else r["model"]]
                     + [_with_ci(v, k) for k, _ in HEADLINE_VALUES] + [flags or "-"])
    headers = ["model"] + [f"{label} ± 95%" for _, label in HEADLINE_VALUES] + ["flags"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def run_report(rows: list[dict[str, Any]], full: bool = False) -> str:
    """What ``latentbench run`` prints: the headline table (when the run has the headline metric),
    then the summary tables (``full``: every value) without the columns equal in every row."""
    head = headline_table(rows)
    body = markdown_table(rows, drop_constant=True) if full else summary_tables(rows, drop_constant=True)
    return f"{head}\n\n{body}" if head else body


def write_outputs(rows: list[dict[str, Any]], out_dir: str | Path) -> dict[str, str]:
    out_dir = ensure_folder(out_dir, "output folder")
    recs = flat_records(rows)
    # each file whole or not at all: a run killed while writing leaves the previous complete file
    md = atomic_write_text(out_dir / "results.md", markdown_table(rows) + "\n")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(recs[0].keys()) if recs else ["model"])
    w.writeheader()
    w.writerows(recs)
    cs = atomic_write_text(out_dir / "results.csv", buf.getvalue())
    js = atomic_write_text(out_dir / "results.json", json.dumps(rows, indent=1, default=str))
    return {"markdown": str(md), "csv": str(cs), "json": str(js)}


def _short(name: str) -> str:
    return name[:-5] if name.endswith("_mean") else name


def summary_tables(rows: Iterable[dict[str, Any]], drop_constant: bool = False) -> str:
    """Compact view for the terminal: one table of clean metrics per model, one of attack metrics per
    (model, attack, budget); spreads (``*_std``) and failures are left to results.md. ``drop_constant``
    leaves out value columns equal in every row (two rows or more) and names them under the table."""
    clean: dict[str, dict[str, Any]] = {}
    attacked: dict[tuple, dict[str, Any]] = {}
    failed = 0
    for r in rows:
        if r["status"] != "ok":
            failed += 1
            continue
        vals = {f"{r['metric']}.{_short(k)}": v for k, v in (r.get("values") or {}).items() if not k.endswith("_std")}
        if r.get("attack"):
            attacked.setdefault((r["model"], r["attack"], r["budget"]), {}).update(vals)
        else:
            clean.setdefault(r["model"], {}).update(vals)
    parts = []
    if clean:
        cols = sorted({c for v in clean.values() for c in v})
        parts.append(_tabulate(["model"] + cols, [[m] + [v.get(c) for c in cols] for m, v in clean.items()],
                               1, drop_constant, floatfmt=".4g"))
    if attacked:
        cols = sorted({c for v in attacked.values() for c in v})
        parts.append(_tabulate(["model", "attack", "budget"] + cols,
                               [[m, a, b] + [v.get(c) for c in cols] for (m, a, b), v in attacked.items()],
                               3, drop_constant, floatfmt=".4g"))
    if failed:
        parts.append(f"{failed} failed cells: see results.md for their errors")
    return "\n\n".join(parts)
