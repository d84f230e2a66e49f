"""The experiment contract: reproductions of published experiments (``latentbench reproduce NAME``).

An experiment is a function wrapped by :func:`experiment` and registered by a plugin through the
``latentbench_experiments`` hook, like any other component; it receives a :class:`ReproContext`
(size ``smoke`` or ``full``, output folder, seed, device) and returns a :class:`ReproResult` with
tables (lists of row dicts), figure paths, and findings: the document's qualitative claims with
whether our run supports them and the numbers behind the verdict. Findings are reported, never
tuned for: a claim that does not hold is written down as not holding.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

SIZES = ("smoke", "full")


@dataclass
class ReproContext:
    size: str
    out_dir: Path
    seed: int = 0
    device: str = "cpu"
    data_root: Optional[str] = None

    @property
    def smoke(self) -> bool:
        return self.size == "smoke"


@dataclass
class DataSize:
    """Dataset and training sizes every experiment's size table starts with (experiments subclass
    it with their own model and evaluation sizes)."""

    dataset: str
    image_size: int | None
    train_n: int
    epochs: int
    batch_size: int

    def load_dataset(self, ctx: ReproContext):
        """The dataset plugin of this size, resized as asked, reading files from ``ctx.data_root``."""
        from latentbench.data import DatasetConfig
        from latentbench.registry import get_registry

        return get_registry().dataset(self.dataset)(DatasetConfig(image_size=self.image_size, data_root=ctx.data_root))


@dataclass
class Finding:
    claim: str  # the document's qualitative finding, e.g. "spectral radius falls as beta grows"
    holds: Optional[bool]  # True / False; None when the run cannot decide (say why in evidence)
    evidence: str  # the numbers behind the verdict


@dataclass
class ReproResult:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # differences from the document's setup
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


@dataclass
class Experiment:
    """A registered experiment: ``name`` (used on the command line), ``title``, ``source`` (the paper
    and the figure or table it reproduces) and ``fn(ctx) -> ReproResult``. Calling it runs ``fn``."""

    name: str
    title: str
    source: str
    fn: Callable[[ReproContext], ReproResult]

    def __call__(self, ctx: ReproContext) -> ReproResult:
        return self.fn(ctx)


def experiment(name: str, title: str, source: str):
    """Decorator turning ``fn(ctx) -> ReproResult`` into an :class:`Experiment` named ``name``; a
    plugin returns it from its ``latentbench_experiments`` hook."""

    def wrap(fn):
        return Experiment(name, title, source, fn)

    return wrap


def save_figure(fig, ctx: ReproContext, name: str, dpi: int = 80, tight: bool = True) -> str:
    """Save a matplotlib figure as ``ctx.out_dir / name``, close it, return the path."""
    import matplotlib.pyplot as plt

    path = ctx.out_dir / name
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return str(path)


def spearman(a, b) -> float:
    """Rank correlation; nan when either input is constant (e.g. every value inf: never reached)."""
    import numpy as np
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return float("nan")
    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else float("nan")


def load_experiments(registry=None) -> dict[str, Experiment]:
    """Every registered experiment by name."""
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    return {n: registry.experiment(n) for n in registry.names("experiment")}


def run_experiment(name: str, size: str = "smoke", out_dir: str | Path = "docs/reproduction", seed: int = 0,
                   device: str = "cpu", data_root: str | None = None, registry=None) -> ReproResult:
    """Run one experiment and write ``<out_dir>/<name>/results.json`` and ``results.md`` beside its figures."""
    from latentbench.registry import get_registry

    exp = (registry or get_registry()).experiment(name)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    ctx = ReproContext(size=size, out_dir=folder, seed=seed, device=device, data_root=data_root)
    t0, c0 = time.perf_counter(), time.process_time()
    res = exp(ctx)
    res.wall_seconds = time.perf_counter() - t0
    res.cpu_seconds = time.process_time() - c0
    write_result(exp, ctx, res)
    return res


def write_result(exp: Experiment, ctx: ReproContext, res: ReproResult) -> None:
    from tabulate import tabulate

    from latentbench.atomic import atomic_write_text
    from latentbench.provenance import provenance

    payload = {"experiment": exp.name, "title": exp.title, "source": exp.source, "size": ctx.size, "seed": ctx.seed,
               "tables": res.tables, "figures": [os.path.relpath(f, ctx.out_dir) for f in res.figures],
               "findings": [asdict(f) for f in res.findings], "notes": res.notes,
               "cpu_seconds": res.cpu_seconds, "wall_seconds": res.wall_seconds,
               "provenance": provenance(seed=ctx.seed, device=ctx.device)}
    atomic_write_text(ctx.out_dir / "results.json", json.dumps(payload, indent=1, default=float))
    lines = [f"## {exp.title} ({exp.source}) — size `{ctx.size}`", ""]
    for tname, rows in res.tables.items():
        lines += [f"### {tname}", "", tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4g"), ""]
    for f in res.figures:
        lines.append(f"![{Path(f).stem}]({os.path.relpath(f, ctx.out_dir)})")
    lines.append("")
    for f in res.findings:
        verdict = {True: "holds", False: "does not hold", None: "undecided"}[f.holds]
        lines.append(f"- **{f.claim}**: {verdict} — {f.evidence}")
    for n in res.notes:
        lines.append(f"- note: {n}")
    lines.append(f"\nCPU time {res.cpu_seconds:.0f} s, wall time {res.wall_seconds:.0f} s "
                 f"({torch.get_num_threads()} torch threads).")
    atomic_write_text(ctx.out_dir / "results.md", "\n".join(lines) + "\n")
