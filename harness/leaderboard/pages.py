"""Detail pages and plots of the protocols with ``main_columns`` (leaderboard v2).

For each such protocol, under ``<pages>/<protocol>/`` next to index.html:

- ``<entry>.html``: the main columns, every other column of the full table, the sanity flags with
  their messages, and the two plots below (page skeleton: ``entry.html`` next to this module);
- ``<entry>-curve.png``: the value families ``<name>@<budget>`` of the ranking record that report a
  standard error, against the budget, with 95% bands (the robustness curve of docs/methods.md §7);
- ``<entry>-grid.png``: the ranking record's ``info.examples`` (rows x, r(x), x_adv, r(x_adv));
- ``curves.png``: every entry's curve in one plot (shown on the index page).

Like the rest of this package it names no metric: what it draws comes from the ranking record's
values and info. Output is deterministic: the HTML has no timestamps, and the PNGs are drawn with
matplotlib's default style on the Agg canvas without the Software/date metadata.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any, Optional

import numpy as np

from latentbench.leaderboard.render import (Column, Table, Z95, _arrow, cell_text, curve_series, flags_of, fmt,
                                            pages_dir, status_of)
from latentbench.leaderboard.validate import rebuild_command

ENTRY_TEMPLATE_PATH = Path(__file__).resolve().parent / "entry.html"
#: the rows of the image grid: (key in info.examples, row label)
GRID_ROWS = (("x", "x"), ("r_x", "r(x)"), ("x_adv", "x_adv"), ("r_x_adv", "r(x_adv)"))
#: info items drawn or listed elsewhere on the page
_SHOWN_INFO = {"flags", "flag_messages", "examples"}


def _same_cell(a: Column, b: Column) -> bool:
    return (a.metric, a.attack, a.budget, a.split) == (b.metric, b.attack, b.budget, b.split)


def other_columns(t: Table) -> list[Column]:
    """The full table's columns that the main table leaves out; an ``X_se`` column whose ``X`` is a
    column too is left out as well (X is shown with its interval)."""
    main = t.main or []
    values = {(c.metric, c.attack, c.budget, c.split, c.value) for c in t.columns}
    return [c for c in t.columns if c not in main and not (
        c.value and c.value.endswith("_se") and (c.metric, c.attack, c.budget, c.split, c.value[:-3]) in values)]


# -- plots ------------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    # no Software/date chunks: the same input gives the same bytes
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path


def _style():
    import matplotlib.style

    # the default style, whatever the user's matplotlibrc says
    return matplotlib.style.context("default")


def plot_curves(series: list[tuple[str, list[tuple[float, float, float]]]], path: str | Path, title: str,
                ylabel: str = "") -> Path:
    """One line per (label, [(budget, value, se), ...]) with its 95% band (value ± 1.96 se)."""
    with _style():
        fig = _figure(6.4, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        colors = _colors(len(series))
        lo, hi = np.inf, -np.inf
        for (label, pts), color in zip(series, colors):
            b, v, se = (np.array(a, dtype=float) for a in zip(*pts))
            ax.plot(b, v, marker="o", color=color, label=label)
            ax.fill_between(b, v - Z95 * se, v + Z95 * se, color=color, alpha=0.2, linewidth=0)
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        if 0.0 <= lo and hi <= 1.0:
            ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("budget ε")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        return _save(fig, Path(path))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _image(a) -> np.ndarray:
    """(C, H, W) in [0, 1] as (H, W, 3)."""
    a = np.clip(np.asarray(a, dtype=float), 0.0, 1.0)
    if a.ndim == 2:
        a = a[None]
    return np.transpose(np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a[:3], (1, 2, 0))


def plot_grid(examples: dict[str, Any], path: str | Path, title: str) -> Optional[Path]:
    """Rows x, r(x), x_adv, r(x_adv) (those present) of the example images; titles give the label,
    the prediction on r(x) and on r(x_adv) (red where it differs from the label). One mosaic image
    in one axes: a grid of subplots takes seconds per entry to draw."""
    rows = [(k, name) for k, name in GRID_ROWS if examples.get(k)]
    if not rows:
        return None
    imgs = {k: [_image(a) for a in examples[k]] for k, _ in rows}
    n = len(imgs[rows[0][0]])
    h, w = imgs[rows[0][0]][0].shape[:2]
    gap, band = max(1, w // 6), max(2, (h * 2) // 5)  # between images; above each row, for the titles
    cell_w, cell_h = w + gap, h + band
    mosaic = np.ones((len(rows) * cell_h, n * cell_w - gap, 3))
    for i, (key, _) in enumerate(rows):
        for j, img in enumerate(imgs[key]):
            mosaic[i * cell_h + band:(i + 1) * cell_h, j * cell_w:j * cell_w + w] = img
    labels = examples.get("label") or [None] * n
    preds = {"r_x": examples.get("pred_clean"), "r_x_adv": examples.get("pred_adv")}
    eps = examples.get("eps")
    with _style():
        scale = 1.1 / w  # inches per pixel: about 1.1 in per image
        fig = _figure(mosaic.shape[1] * scale + 1.0, mosaic.shape[0] * scale + 0.5)
        ax = fig.add_axes((0.9 / (mosaic.shape[1] * scale + 1.0), 0.0, 1 - 1.0 / (mosaic.shape[1] * scale + 1.0),
                           1 - 0.5 / (mosaic.shape[0] * scale + 0.5)))
        ax.imshow(mosaic, interpolation="nearest", aspect="equal")
        ax.set_axis_off()
        for i, (key, name) in enumerate(rows):
            top = i * cell_h
            ax.text(-gap, top + band + h / 2, name, ha="right", va="center", fontsize=9)
            for j in range(n):
                x = j * cell_w + w / 2
                if key == "x" and labels[j] is not None:
                    ax.text(x, top + band / 2, f"y={labels[j]}", ha="center", va="center", fontsize=8)
                elif preds.get(key) is not None:
                    pr = preds[key][j]
                    ax.text(x, top + band / 2, f"pred {pr}", ha="center", va="center", fontsize=8,
                            color="black" if pr == labels[j] else "red")
        fig.suptitle(title + (f" (ε={eps:g})" if isinstance(eps, (int, float)) else ""), fontsize=10)
        return _save(fig, Path(path))


# -- pages ------------------------------------------------------------------------------------------

def _kv_table(rows: list[tuple[str, str]], heads: Optional[tuple[str, str]] = None, num: bool = True) -> str:
    e = html.escape
    out = ["<table class='kv'>" + ("" if heads is None else
                                   f"<thead><tr><th>{e(heads[0])}</th><th>{e(heads[1])}</th></tr></thead>") + "<tbody>"]
    td = "<td class='num'>" if num else "<td>"
    out += [f"<tr><td>{e(k)}</td>{td}{e(v)}</td></tr>" for k, v in rows]
    return "\n".join(out + ["</tbody></table>"])


def _flag_names(t: Table, entry: dict) -> list[str]:
    rec = t.sort_column.record(entry)
    return [] if rec is None else sorted(k[5:] for k in rec["values"] if k.startswith("flag_"))


def render_entry_page(t: Table, entry: dict, rank: int, index_href: str = "../../index.html",
                      curve: Optional[str] = None, grid: Optional[str] = None) -> str:
    """One entry's page: links, main columns, sanity flags, plots (file names relative to the
    page, None: not drawn), every other column and the ranking record's other info."""
    e = html.escape
    p = t.protocol
    name = entry["name"]
    body = [f"<p><a href='{e(index_href)}'>← leaderboard</a></p>",
            f"<h1>{e(name)} <small>({e(p.name)}, version {e(p.version)})</small></h1>"]
    about = [("rank", f"{rank} of {len(t.rows)} by {t.sort_column.header}{_arrow(t.sort_column)}"),
             ("model plugin", entry["model"]["plugin"]), ("status", status_of(entry))]
    if entry.get("paper"):
        about.append(("paper", entry["paper"]))
    # the submitter's checkpoint.regenerate is data, not a command we vouch for: only the command
    # built from checked fields is shown as one
    about += [("checkpoint sha256", entry["checkpoint"]["sha256"]), ("rebuild", rebuild_command(entry))]
    body.append(_kv_table(about, num=False))
    body += ["<h2>Main columns</h2>",
             _kv_table([(c.header + _arrow(c), cell_text(c, entry)) for c in t.main or []], ("column", "value")),
             "<p>Intervals: 95% (± 1.96 standard errors; [low, high] where the metric states the ends, as "
             "a bootstrap interval).</p>"]
    raised = dict(flags_of(t.sort_column, entry))
    checked = _flag_names(t, entry)
    body.append("<h2>Sanity flags</h2>")
    if checked:
        body.append("<ul class='flags'>" + "".join(
            f"<li class='raised'><code>{e(f)}</code>: raised. {e(raised[f])}</li>" if f in raised
            else f"<li><code>{e(f)}</code>: not raised</li>" for f in checked) + "</ul>")
    else:
        body.append("<p>The ranking record reports no sanity flags.</p>")
    if curve:
        body += ["<h2>Robustness curve</h2>", f"<p><img src='{e(curve)}' alt='robustness curve of {e(name)}'></p>"]
    if grid:
        body += ["<h2>Examples</h2>",
                 "<p>Rows: x, its reconstruction r(x), the adversarial input x_adv and r(x_adv); titles give the "
                 "label and the predictions on the reconstructions (red: wrong).</p>",
                 f"<p><img src='{e(grid)}' alt='example images of {e(name)}'></p>"]
    body += ["<h2>Every other column</h2>",
             _kv_table([(c.header + _arrow(c), cell_text(c, entry)) for c in other_columns(t)], ("column", "value"))]
    rec = t.sort_column.record(entry)
    info = {k: v for k, v in ((rec or {}).get("info") or {}).items() if k not in _SHOWN_INFO}
    if info:
        body += [f"<h2>{e(t.sort_column.metric or '')}: run information</h2>",
                 _kv_table([(k, json.dumps(v, sort_keys=True)) for k, v in sorted(info.items())], num=False)]
    body.append(f"<p>clean MSE {fmt(entry['reported']['clean']['mse'])} on {entry['reported']['clean']['n_images']} "
                f"images. Generated by <code>latentbench leaderboard render</code>; do not edit by hand.</p>")
    return Template(ENTRY_TEMPLATE_PATH.read_text()).substitute(
        title=e(f"{name} — {p.name} — LatentBench leaderboard"), body="".join(b + "\n" for b in body))


def _series_label(family: str, entry_name: str, n_families: int) -> str:
    return entry_name if n_families == 1 else f"{entry_name}: {family}"


def write_pages(tables: list[Table], pages_root: str | Path, index_name: str = "index.html") -> list[Path]:
    """Write every detail page and plot of ``tables`` (those with main_columns) under
    ``pages_root/<protocol>/``; files there that this render did not write are removed (entries
    that left the leaderboard). Returns the written paths."""
    root = Path(pages_root)
    written: list[Path] = []
    for t in tables:
        d = root.parent / pages_dir(t.protocol.name, root.name)
        d.mkdir(parents=True, exist_ok=True)
        overlay, families = [], set()
        for rank, entry in enumerate(t.rows, 1):
            name = entry["name"]
            series = curve_series(t.sort_column, entry)
            curve = grid = None
            if series:
                written.append(plot_curves(list(series.items()), d / f"{name}-curve.png", name,
                                           ylabel=next(iter(series)) if len(series) == 1 else ""))
                curve = written[-1].name
                overlay += [(_series_label(f, name, len(series)), pts) for f, pts in series.items()]
                families |= set(series)
            examples = ((t.sort_column.record(entry) or {}).get("info") or {}).get("examples")
            if isinstance(examples, dict) and plot_grid(examples, d / f"{name}-grid.png", name):
                grid = f"{name}-grid.png"
                written.append(d / grid)
            page = d / f"{name}.html"
            page.write_text(render_entry_page(t, entry, rank, f"../../{index_name}", curve, grid))
            written.append(page)
        if overlay:
            written.append(plot_curves(overlay, d / "curves.png", f"{t.protocol.name}: every entry",
                                       ylabel=next(iter(families)) if len(families) == 1 else ""))
        keep = set(written)
        for f in sorted(d.iterdir()):
            if f.suffix in (".html", ".png") and f not in keep:
                f.unlink()
    return written
