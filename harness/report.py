"""Reports from stored results: Markdown (tabulate), CSV and JSON, each row with its provenance."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate


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
                 "key": r["key"][:16]}
        if r["status"] != "ok":
            out.append({**base, "value_name": "", "value": None, "error": (r.get("error") or "").splitlines()[0], **extra})
            continue
        for name, v in (r.get("values") or {}).items():
            out.append({**base, "value_name": name, "value": v, "error": "", **extra})
    return out


def markdown_table(rows: Iterable[dict[str, Any]]) -> str:
    recs = flat_records(rows)
    table = [[r["model"], r["attack"], "" if r["budget"] is None else f"{r['budget']:g}", r["metric"],
              r["value_name"] or "-", "" if r["value"] is None else f"{r['value']:.4g}",
              r["status"] if r["status"] == "ok" else f"error: {r['error'][:60]}"] for r in recs]
    return tabulate(table, headers=["model", "attack", "budget", "metric", "value", "result", "status"], tablefmt="github")


def write_outputs(rows: list[dict[str, Any]], out_dir: str | Path) -> dict[str, str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recs = flat_records(rows)
    md = out_dir / "results.md"
    md.write_text(markdown_table(rows) + "\n")
    cs = out_dir / "results.csv"
    with open(cs, "w", newline="") as f:
        fields = list(recs[0].keys()) if recs else ["model"]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(recs)
    js = out_dir / "results.json"
    js.write_text(json.dumps(rows, indent=1, default=str))
    return {"markdown": str(md), "csv": str(cs), "json": str(js)}


def _short(name: str) -> str:
    return name[:-5] if name.endswith("_mean") else name


def summary_tables(rows: Iterable[dict[str, Any]]) -> str:
    """Compact view for the terminal: one table of clean metrics per model, one of attack metrics per
    (model, attack, budget); spreads (``*_std``) and failures are left to results.md."""
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
        parts.append(tabulate([[m] + [v.get(c) for c in cols] for m, v in clean.items()],
                              headers=["model"] + cols, tablefmt="github", floatfmt=".4g"))
    if attacked:
        cols = sorted({c for v in attacked.values() for c in v})
        parts.append(tabulate([[m, a, b] + [v.get(c) for c in cols] for (m, a, b), v in attacked.items()],
                              headers=["model", "attack", "budget"] + cols, tablefmt="github", floatfmt=".4g"))
    if failed:
        parts.append(f"{failed} failed cells: see results.md for their errors")
    return "\n\n".join(parts)
