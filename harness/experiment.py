"""The experiment contract: reproductions of published experiments (``latentbench reproduce NAME``).

An experiment is a function wrapped by :func:`experiment` and registered by a plugin through the
``latentbench_experiments`` hook, like any other component; it receives a :class:`ReproContext`
(size ``smoke`` or ``full``, output folder, seed, device) and returns a :class:`ReproResult` with
tables (lists of row dicts), figure paths, and its per-seed results: the raw per-seed, per-image
scores of every independently trained model (``ReproResult.per_seed``, stored in results.json).

An experiment's findings -- the document's qualitative claims -- are a function of those stored
results alone (the ``findings`` argument of :func:`experiment`), so every verdict can be recomputed
from results.json without re-training (:func:`recompute_findings`). Each :class:`Finding` states its
hypothesis, the test used, the effect size with its 95% interval, the seeds and images it rests on,
the p-value where the test gives one, and a verdict computed by :func:`latentbench.stats.verdict`
(holds / does not hold / inconclusive), never typed. Findings are reported, never tuned for.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from latentbench import stats
from latentbench.stats import Estimate

#: "reduced": the documents' setups scaled to what 2 shared CPU cores finish in minutes with 3 seeds
SIZES = ("smoke", "reduced", "full")
#: seeds per model when neither the size nor the caller says otherwise (issue 16: at least 3)
DEFAULT_SEEDS = 3


@dataclass
class ReproContext:
    size: str
    out_dir: Path
    seed: int = 0
    device: str = "cpu"
    data_root: Optional[str] = None
    #: independently trained seeds per model; None = the experiment size's own default
    seeds: Optional[int] = None

    @property
    def smoke(self) -> bool:
        return self.size == "smoke"

    def seed_list(self, default: int = DEFAULT_SEEDS) -> list[int]:
        """The training seeds of every model: ``seed, seed + 1, ...`` (``seeds`` of them, else ``default``).
        Data subsets and evaluation images stay fixed by ``seed`` so that scores are paired across seeds."""
        n = self.seeds if self.seeds is not None else default
        if n < 1:
            raise ValueError(f"seeds must be at least 1, got {n}")
        return [self.seed + k for k in range(n)]


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
    """A document's claim tested on our runs. Build one with :meth:`of` (one estimate) or :meth:`every`
    (a claim over several comparisons, all of which must hold); the verdict is a property computed
    from the interval, so it cannot be typed in."""

    claim: str  # the hypothesis, e.g. "higher beta suppresses the spectral radius"
    test: str  # e.g. "paired bootstrap over images (BCa)"
    effect: float  # the effect size the interval is about (a difference of means, a rho, ...)
    low: float  # its 95% interval
    high: float
    seeds: int  # independently trained seeds per model behind it
    images: int  # images (or samples) per seed
    p_value: Optional[float]  # where the test gives one
    direction: int  # +1: claim predicts effect > threshold; -1: effect < threshold; 0: |effect| < margin
    threshold: float = 0.0
    margin: Optional[float] = None
    evidence: str = ""  # the numbers behind it, in words
    parts: list["Finding"] = field(default_factory=list)  # for :meth:`every`: the comparisons that must all hold

    @classmethod
    def of(cls, claim: str, est: Estimate, direction: int, evidence: str = "", threshold: float = 0.0,
           margin: Optional[float] = None) -> "Finding":
        return cls(claim, est.test, est.effect, est.low, est.high, est.seeds, est.images, est.p_value, direction,
                   threshold, margin, evidence)

    @classmethod
    def every(cls, claim: str, parts: list["Finding"], evidence: str = "") -> "Finding":
        """A claim over several comparisons ("at every lambda", "than every baseline"): holds when all
        parts hold, does not hold when any does not (intersection-union test). The headline numbers
        are the deciding part's: the first that does not hold, else the first inconclusive one, else
        the one nearest its threshold."""
        if not parts:
            raise ValueError(f"finding {claim!r} has no parts")
        v = stats.all_of(p.verdict for p in parts)
        if v == stats.HOLDS:
            key = min(parts, key=lambda p: p._safety())
        else:
            key = next(p for p in parts if p.verdict == (stats.FAILS if v == stats.FAILS else stats.INCONCLUSIVE))
        return cls(claim, f"{key.test}; all {len(parts)} comparisons must hold", key.effect, key.low, key.high,
                   key.seeds, key.images, key.p_value, key.direction, key.threshold, key.margin,
                   evidence or "; ".join(p.evidence for p in parts), list(parts))

    def _safety(self) -> float:
        """How far the interval is from the threshold on the predicted side (for picking a headline)."""
        if self.direction == 0:
            return min(self.margin - self.high, self.low + self.margin) if self.margin else -math.inf
        return min(self.direction * (self.low - self.threshold), self.direction * (self.high - self.threshold))

    @property
    def verdict(self) -> str:
        if self.parts:
            return stats.all_of(p.verdict for p in self.parts)
        return stats.verdict(self.low, self.high, self.direction, self.threshold, self.margin)

    @property
    def holds(self) -> Optional[bool]:
        """True / False / None (inconclusive), for callers that want a three-valued flag."""
        return {stats.HOLDS: True, stats.FAILS: False}.get(self.verdict)

    def hypothesis(self) -> str:
        """The claim as a statement about the effect, e.g. 'effect < 0' or '|effect| < 0.02'."""
        if self.direction == 0:
            return f"|effect| < {self.margin:g}"
        return f"effect {'>' if self.direction > 0 else '<'} {self.threshold:g}"

    def summary(self) -> str:
        """'effect 0.12 [0.05, 0.2], p = 0.1; 3 seeds x 500 images; <test>'."""
        p = "" if self.p_value is None else f", p = {self.p_value:.3g}"
        size = f"{self.seeds} seeds x {self.images} images" if self.images else f"{self.seeds or '-'} seeds"
        return (f"{self.hypothesis()}: effect {self.effect:.3g} [{self.low:.3g}, {self.high:.3g}]{p}; {size}; "
                f"{self.test}")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "parts"}
        d.update(verdict=self.verdict, holds=self.holds, parts=[p.to_dict() for p in self.parts])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        """The finding :meth:`to_dict` wrote (its verdict is recomputed from the numbers, not read)."""
        names = {f.name for f in fields(cls)} - {"parts"}
        return cls(**{k: v for k, v in d.items() if k in names},
                   parts=[cls.from_dict(p) for p in d.get("parts", [])])


@dataclass
class ReproResult:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # differences from the document's setup
    #: the per-seed, per-image results the findings are computed from (JSON-able: lists, dicts, numbers)
    per_seed: dict[str, Any] = field(default_factory=dict)
    #: names of the tables computed from ``per_seed`` alone (Experiment.tables): shown in the write-up
    derived_tables: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


@dataclass
class Experiment:
    """A registered experiment: ``name`` (used on the command line), ``title``, ``source`` (the paper
    and the figure or table it reproduces), ``fn(ctx) -> ReproResult`` and ``findings(per_seed) ->
    list[Finding]``, the verdicts as a function of the stored per-seed results alone. Calling it runs
    ``fn`` and, when ``findings`` is given, computes the findings from the stored form of the result's
    ``per_seed`` (what results.json will hold, so :func:`recompute_findings` gives the same verdicts)."""

    name: str
    title: str
    source: str
    fn: Callable[[ReproContext], ReproResult]
    findings: Optional[Callable[[dict[str, Any]], list[Finding]]] = None
    #: tables computed from the stored per-seed results alone (side-by-side comparisons with
    #: intervals), recomputed with the findings by :func:`refresh_findings`
    tables: Optional[Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]] = None

    def __call__(self, ctx: ReproContext) -> ReproResult:
        res = self.fn(ctx)
        if self.findings is not None or self.tables is not None:
            res.per_seed = stored(res.per_seed)
        if self.findings is not None:
            res.findings = self.findings(res.per_seed)
        if self.tables is not None:
            derived = self.tables(res.per_seed)
            res.tables.update(derived)
            res.derived_tables = list(derived)
        return res


def experiment(name: str, title: str, source: str, findings: Optional[Callable[[dict[str, Any]], list[Finding]]] = None,
               tables: Optional[Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]] = None):
    """Decorator turning ``fn(ctx) -> ReproResult`` into an :class:`Experiment` named ``name``; a
    plugin returns it from its ``latentbench_experiments`` hook. ``findings(per_seed)`` computes the
    verdicts from the result's stored per-seed results; ``tables(per_seed)``, tables derived from
    them the same way (both are recomputed by ``latentbench reproduce NAME --recompute``)."""

    def wrap(fn):
        return Experiment(name, title, source, fn, findings, tables)

    return wrap


def _store_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _store_value(x) for k, x in v.items()}
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    if isinstance(v, (np.ndarray, list, tuple)):
        arr = np.asarray(v)
        if arr.dtype.kind in "iub" and arr.ndim > 0:  # counts, seeds, flags stay exact
            return arr.tolist()
        if arr.dtype.kind == "f" and arr.ndim > 0:
            # 7 significant digits: far below any effect the findings test, and a third of the text
            return np.vectorize(lambda x: float(f"{x:.7g}"), otypes=[object])(arr.astype(float)).tolist()
        return [_store_value(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(f"{float(v):.7g}")
    if isinstance(v, np.integer):
        return int(v)
    return v


def stored(per_seed: dict[str, Any]) -> dict[str, Any]:
    """``per_seed`` as results.json stores it (arrays as nested lists, 7 significant digits)."""
    return json.loads(json.dumps(_store_value(per_seed)))


def seed_matrix(per_seed_scores) -> np.ndarray:
    """Stored per-seed scores (a list over seeds of per-image lists) as a (seeds, images) array."""
    return np.asarray(per_seed_scores, dtype=float)


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
                   device: str = "cpu", data_root: str | None = None, registry=None,
                   seeds: int | None = None) -> ReproResult:
    """Run one experiment and write ``<out_dir>/<name>/results.json`` and ``results.md`` beside its
    figures. ``seeds``: independently trained seeds per model (default: the size's own, at least 3
    at full size)."""
    from latentbench.registry import get_registry

    exp = (registry or get_registry()).experiment(name)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    ctx = ReproContext(size=size, out_dir=folder, seed=seed, device=device, data_root=data_root, seeds=seeds)
    t0, c0 = time.perf_counter(), time.process_time()
    res = exp(ctx)
    res.wall_seconds = time.perf_counter() - t0
    res.cpu_seconds = time.process_time() - c0
    write_result(exp, ctx, res)
    return res


def recompute_findings(results_json: str | Path, registry=None) -> list[Finding]:
    """The findings of a stored run, recomputed from its results.json's per-seed results alone (no
    training): what makes every verdict checkable after the fact."""
    from latentbench.registry import get_registry

    payload = json.loads(Path(results_json).read_text())
    exp = (registry or get_registry()).experiment(payload["experiment"])
    if exp.findings is None or "per_seed" not in payload:
        raise ValueError(f"{results_json}: experiment {payload['experiment']!r} stores no per-seed results to "
                         "recompute findings from; re-run it with this version of latentbench")
    return exp.findings(payload["per_seed"])


def refresh_findings(results_json: str | Path, registry=None) -> list[Finding]:
    """Recompute a stored run's findings (:func:`recompute_findings`) and write them back into its
    results.json and results.md: how a change to a findings function reaches stored runs without
    re-training."""
    from latentbench.atomic import atomic_write_text
    from latentbench.registry import get_registry

    path = Path(results_json)
    found = recompute_findings(path, registry)
    payload = json.loads(path.read_text())
    per_seed = payload.pop("per_seed")
    payload.update(findings=[f.to_dict() for f in found], verdict_counts=count_verdicts(found))
    exp = (registry or get_registry()).experiment(payload["experiment"])
    if exp.tables is not None:
        derived = exp.tables(per_seed)
        payload["tables"].update(derived)
        payload["derived_tables"] = list(derived)
    atomic_write_text(path, _results_json(payload, per_seed))
    atomic_write_text(path.with_name("results.md"), results_markdown(payload))
    return found


def _results_json(payload: dict[str, Any], per_seed: Any) -> str:
    text = json.dumps(payload, indent=1, default=float)
    # the per-seed arrays on one line: tens of thousands of numbers would otherwise take a line each
    return text[:text.rindex("}")].rstrip() + ',\n "per_seed": ' + json.dumps(per_seed, separators=(",", ":")) + "\n}\n"


def results_markdown(payload: dict[str, Any]) -> str:
    """results.md of a run: its tables, figures, verdicts with their evidence, notes and times, from
    results.json's payload alone (so a refresh of the findings rewrites it whole)."""
    from tabulate import tabulate

    lines = [f"## {payload['title']} ({payload['source']}) — size `{payload['size']}`", ""]
    for tname, rows in payload["tables"].items():
        lines += [f"### {tname}", "", tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4g"), ""]
    for f in payload["figures"]:
        lines.append(f"![{Path(f).stem}]({f})")
    lines.append("")
    found = [Finding.from_dict(f) for f in payload["findings"]]
    counts = count_verdicts(found)
    lines.append("Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    lines.append("")
    lines += finding_lines(found)
    for n in payload["notes"]:
        lines.append(f"- note: {n}")
    threads = (payload.get("provenance") or {}).get("hardware", {}).get("torch_threads", "?")
    lines.append(f"\nCPU time {payload['cpu_seconds']:.0f} s, wall time {payload['wall_seconds']:.0f} s "
                 f"({threads} torch threads).")
    return "\n".join(lines) + "\n"


def count_verdicts(findings: list[Finding]) -> dict[str, int]:
    """How many findings hold, do not hold, are inconclusive."""
    return {v: sum(f.verdict == v for f in findings) for v in stats.VERDICTS}


def finding_lines(findings: list[Finding]) -> list[str]:
    """Markdown bullets: claim, verdict, effect with interval and test, then the evidence."""
    return [f"- **{f.claim}**: {f.verdict} -- {f.summary()}. {f.evidence}" for f in findings]


def write_result(exp: Experiment, ctx: ReproContext, res: ReproResult) -> None:
    from latentbench.atomic import atomic_write_text
    from latentbench.provenance import provenance

    payload = {"experiment": exp.name, "title": exp.title, "source": exp.source, "size": ctx.size, "seed": ctx.seed,
               "seeds": ctx.seeds, "tables": res.tables,
               "figures": [os.path.relpath(f, ctx.out_dir) for f in res.figures],
               "findings": [f.to_dict() for f in res.findings], "verdict_counts": count_verdicts(res.findings),
               "notes": res.notes, "cpu_seconds": res.cpu_seconds, "wall_seconds": res.wall_seconds,
               "provenance": provenance(seed=ctx.seed, device=ctx.device)}
    if res.derived_tables:
        payload["derived_tables"] = res.derived_tables
    atomic_write_text(ctx.out_dir / "results.json", _results_json(payload, res.per_seed))
    atomic_write_text(ctx.out_dir / "results.md", results_markdown(json.loads(json.dumps(payload, default=float))))


# --- REPRODUCTION.md and docs/reproduction/<name>.md: verdict tables generated from results.json ---

BLOCK_BEGIN, BLOCK_END = "<!-- verdicts:begin (generated from results.json) -->", "<!-- verdicts:end -->"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt_num(x: Optional[float]) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def finding_row(f: dict[str, Any]) -> list[str]:
    """One stored finding as table cells: hypothesis, test, effect [95% interval], p, seeds x images, verdict."""
    hyp = ("|effect| < " + _fmt_num(f["margin"]) if f["direction"] == 0
           else f"effect {'>' if f['direction'] > 0 else '<'} {_fmt_num(f['threshold'])}")
    size = f"{f['seeds']} x {f['images']}" if f["images"] else f"{f['seeds'] or '-'} seeds"
    return [_cell(f["claim"]), _cell(f["test"]), f"{_fmt_num(f['effect'])} [{_fmt_num(f['low'])}, {_fmt_num(f['high'])}]"
            f" ({hyp})", _fmt_num(f["p_value"]), size, f"**{f['verdict']}**"]


FINDING_HEADER = ["finding (hypothesis)", "test", "effect [95% interval] (hypothesis)", "p", "seeds x images", "verdict"]


def verdict_block(payload: dict[str, Any]) -> str:
    """The generated part of an experiment's write-up: run, verdict counts, one row per finding, and the
    tables derived from the per-seed results."""
    from tabulate import tabulate

    if "per_seed" not in payload:
        return (f"{BLOCK_BEGIN}\n**Not yet re-run under the statistics layer**: the results below come from one "
                "training run per model and a bare comparison per finding (no interval, no seeds); their verdicts "
                f"are not counted in REPRODUCTION.md's summary.\n{BLOCK_END}")
    counts = {v: sum(f["verdict"] == v for f in payload["findings"]) for v in stats.VERDICTS}
    seeds = payload["per_seed"].get("meta", {}).get("seeds")
    n_seeds = len(seeds) if isinstance(seeds, list) else seeds
    # the machine as the run recorded it (provenance), not as a write-up remembers it
    hw = (payload.get("provenance") or {}).get("hardware", {})
    threads, cores = hw.get("torch_threads", "?"), hw.get("cpu_count", "?")
    # --seeds as the run was asked for (None: the size's default)
    asked = f" --seeds {payload['seeds']}" if payload.get("seeds") is not None else ""
    lines = [BLOCK_BEGIN, "", f"**Run**: `latentbench reproduce {payload['experiment']} --size {payload['size']}{asked}`, "
             f"{n_seeds} seeds per model, CPU time {payload['cpu_seconds']:.0f} s, wall time {payload['wall_seconds']:.0f} s "
             f"({threads} torch thread{'' if threads == 1 else 's'}, {cores}-core {hw.get('device', 'cpu')} machine). "
             "Verdicts: "
             + ", ".join(f"{n} {v}" for v, n in counts.items()) + ". Every verdict is computed from the stored "
             f"per-seed results (`{payload['experiment']}/results.json`, key `per_seed`) by "
             "`latentbench.stats.verdict`: the 95% interval of the effect entirely on the predicted side of the "
             "threshold = holds, entirely on the other side = does not hold, else inconclusive.", "",
             "| " + " | ".join(FINDING_HEADER) + " |", "|" + "---|" * len(FINDING_HEADER)]
    lines += ["| " + " | ".join(finding_row(f)) + " |" for f in payload["findings"]]
    for name in payload.get("derived_tables", []):  # computed from per_seed like the verdicts
        lines += ["", f"**{name}**", "", tabulate(payload["tables"][name], headers="keys", tablefmt="github",
                                                  floatfmt=".4g", disable_numparse=True)]
    lines += ["", "Evidence per finding:", ""]
    lines += [f"- {_cell(f['claim'])}: {f['evidence']}" for f in payload["findings"]]
    lines += ["", f"What was run (the run's own notes; tables of per-model means in "
                  f"[`{payload['experiment']}/results.md`]({payload['experiment']}/results.md)):", ""]
    lines += [f"- {n}" for n in payload.get("notes", [])]
    lines += ["", BLOCK_END]
    return "\n".join(lines)


def refresh_doc(md_text: str, payload: dict[str, Any]) -> str:
    """``md_text`` with its generated block replaced (or inserted after the first paragraph following the title)."""
    block = verdict_block(payload)
    if BLOCK_BEGIN in md_text:
        head, rest = md_text.split(BLOCK_BEGIN, 1)
        return head + block + rest.split(BLOCK_END, 1)[1]
    parts = md_text.split("\n\n")
    cut = 2 if len(parts) > 2 else len(parts)  # title, source paragraph
    return "\n\n".join(parts[:cut] + [block] + parts[cut:])


def reproduction_summary(payloads: list[tuple[str, str, dict[str, Any]]]) -> str:
    """The summary table of REPRODUCTION.md: (number, name, payload) per experiment; counts over the
    experiments re-run with per-seed results only."""
    rows, counts, stale = [], {v: 0 for v in stats.VERDICTS}, []
    for number, name, data in payloads:
        if "per_seed" not in data:
            stale.append(name)
            continue
        for f in data["findings"]:
            counts[f["verdict"]] += 1
            rows.append("| " + " | ".join([number, f"[{name}](#{name})"] + finding_row(f)) + " |")
    head = ["| # | experiment | " + " | ".join(FINDING_HEADER) + " |", "|" + "---|" * (len(FINDING_HEADER) + 2)]
    total = "Verdict counts over the re-run experiments: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."
    if stale:
        total += (" Not yet re-run under the statistics layer (one seed, bare comparisons; not counted): "
                  + ", ".join(stale) + ".")
    return "\n".join([total, ""] + head + rows)
