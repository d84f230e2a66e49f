"""The runner: a run is a grid of independent cells (model x attack configuration x metric).

A cell is the unit of work and of storage: its key hashes everything that determines its result, so
a later executor could spread cells over machines, a re-run reuses stored cells, and a killed run
resumes where it stopped. A failing cell (an exception, NaNs) is recorded and the run goes on.

The key also holds the identity (distribution, version, source digest) of every plugin taking part
(model, dataset, attack, metric), so an upgraded or edited plugin recomputes its cells. Runs sharing
a results store claim each cell (and each model they train) before the work, so concurrent runs
never do it twice; see :mod:`latentbench.store`.

Where the work happens is the executor's business (:mod:`latentbench.executors`): ``local`` computes
in this process, one cell after another; ``ray`` spreads trainings and cells over Ray workers. Either
way this process is the only writer of the results store (:class:`CellBook`).

The run config is validated once, in :class:`Runner`'s constructor (:func:`validate_run_config`),
which builds every typed model, attack (one per budget) and metric config; cells carry those
objects, and the key hashes ``to_plain`` of the very objects the attack and metric receive.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from latentbench import __version__
from latentbench.atomic import atomic_write_text, check_folder, ensure_folder
from latentbench.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint, sha256_file
from latentbench.data import Split
from latentbench.errors import CheckpointError, ConfigError, LatentBenchError, NonFiniteError
from latentbench.executors import DEFAULT_EXECUTOR, DEFAULT_MAX_RETRIES, CellProgress, make_executor
from latentbench.metric import MetricContext
from latentbench.registry import Registry, get_registry
from latentbench.provenance import provenance
from latentbench.runconfig import ModelSpec, RunConfig, apply_protocol, open_dataset, validate_run_config
from latentbench.seeding import component_generator, derive_seed
from latentbench.store import ResultStore, cell_key, new_owner_id
from latentbench.training import train, training_metadata
from latentbench.typed_config import to_plain


#: how long a claim on a cell (or on a model's training) holds before another run may take it over;
#: generous, since nothing renews it while the work runs
DEFAULT_LEASE_S = 2 * 3600.0
ENV_LEASE = "LATENTBENCH_CLAIM_LEASE_S"
#: first and longest pause between looks at work another run has claimed (seconds)
POLL_S = (0.1, 1.0)


def claim_lease_s() -> float:
    raw = os.environ.get(ENV_LEASE)
    if raw is None:
        return DEFAULT_LEASE_S
    try:
        lease = float(raw)
    except ValueError:
        lease = float("nan")
    if not lease > 0 or lease == float("inf"):
        raise ConfigError(ENV_LEASE, f"{raw!r} is not a positive number of seconds", f"unset it or give e.g. {DEFAULT_LEASE_S:g}")
    return lease


@dataclass
class Cell:
    model: str
    metric: str
    metric_plugin: str
    attack: Optional[str] = None
    attack_plugin: Optional[str] = None
    budget: Optional[float] = None
    key: str = ""
    #: plain data the key hashes (also stored with the result)
    spec: dict[str, Any] = field(default_factory=dict)
    #: the typed configs validation built (shared by every cell of the same metric / attack budget)
    metric_config: Any = None
    attack_config: Any = None

    @property
    def label(self) -> str:
        a = f" x {self.attack}@{self.budget:g}" if self.attack else ""
        return f"{self.model}{a} x {self.metric}"


@dataclass
class RunSummary:
    computed: int = 0
    reused: int = 0
    failed: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]

    def failure_lines(self) -> list[str]:
        """One line per failed cell (its label and the first line of its error), for printing last."""
        def label(r):
            a = f" x {r['attack']}@{r['budget']:g}" if r.get("attack") else ""
            return f"{r['model']}{a} x {r['metric']}"
        return [f"failed: {label(r)}: {(r.get('error') or '').splitlines()[0] if r.get('error') else 'no error text'}"
                for r in self.failed_rows]


@dataclass
class PreparedModel:
    label: str
    model: Any
    plugin: str
    weights_hash: str
    checkpoint: Optional[str]
    error: Optional[str] = None


class CellBook:
    """The results of a run's cells as they come in, kept by the one process that writes the store:
    rows found in the store are taken (:meth:`reuse`), computed rows are stored (:meth:`record`);
    both are counted in the run's summary and progress."""

    def __init__(self, runner: "Runner", store: ResultStore, summary: RunSummary, progress: CellProgress):
        self.runner, self.store, self.summary, self.progress = runner, store, summary, progress
        self.results: dict[int, dict[str, Any]] = {}
        #: the stored row of each cell when first looked at: a row that changes later was written
        #: by a concurrent run, and is taken as it is (even a failure) instead of computed again
        self.first_seen: dict[int, Any] = {}

    def reuse(self, i: int, cell: Cell) -> bool:
        """Take cell ``i``'s stored row when there is one to take (False: the cell is to be computed)."""
        row = self.store.get(cell.key)
        mark = None if row is None else (row["created_at"], row["seconds"], row["status"], row["error"])
        self.first_seen.setdefault(i, mark)
        if row is None or (row["status"] != "ok" and mark == self.first_seen[i]):
            return False
        self.results[i] = row
        if row["status"] == "ok":
            self.summary.reused += 1
        else:
            self.summary.failed += 1
        self.progress.ended(row["status"] == "ok", was_running=False)
        return True

    def record(self, i: int, cell: Cell, row: dict[str, Any], was_running: bool = True) -> None:
        """Store a computed row and count it."""
        self.store.put(row)
        self.results[i] = stored = self.store.get(cell.key)
        if row["status"] == "ok":
            self.summary.computed += 1
        else:
            self.summary.failed += 1
            tqdm.write(f"cell failed: {cell.label}: {row['error'].splitlines()[0]}")
        self.progress.ended(row["status"] == "ok", was_running)
        self.runner.registry.call_hook("latentbench_result_finished", cell=cell, result=stored)


class Runner:
    """A run of ``cfg``'s grid. ``executor``: ``local`` (this process) or ``ray`` (Ray tasks, on a
    local Ray instance or the cluster at ``ray_address``; each task asks for ``num_cpus`` CPUs and
    ``num_gpus`` of a GPU, and Ray runs a failed task up to ``max_retries`` more times)."""

    def __init__(self, cfg: RunConfig, registry: Registry | None = None, executor: str = DEFAULT_EXECUTOR,
                 ray_address: Optional[str] = None, num_cpus: float = 1, num_gpus: Optional[float] = None,
                 max_retries: int = DEFAULT_MAX_RETRIES):
        self.registry = registry or get_registry()
        # a bad executor or a missing Ray is reported before any config work, let alone training
        self.executor = make_executor(executor, ray_address, num_cpus, num_gpus, max_retries)
        self.cfg = apply_protocol(cfg, self.registry)
        validate_run_config(self.cfg, self.registry)
        self.device = torch.device(self.cfg.device)
        self.out = Path(self.cfg.output_dir)
        self.cache_dir = Path(self.cfg.cache_dir) if self.cfg.cache_dir else self.out / "cache"
        # a file where a folder should be is reported now, not as an OSError after training
        check_folder(self.out, "output_dir")
        check_folder(self.cache_dir, "cache_dir")
        self.store_path = self.out / "results.sqlite"
        self.owner = new_owner_id()
        #: the driver's latentbench version, which Ray workers compare with theirs
        self.version = __version__
        self.lease_s = claim_lease_s()
        self._identities: dict[tuple[str, str], dict[str, Any]] = {}
        self._data: dict[str, Split] = {}
        #: per (model, attack, budget): shared between that triple's cells (e.g. cached attack pairs)
        self._shared: dict[tuple, dict[str, Any]] = {}
        self.dataset_plugin = open_dataset(self.cfg.dataset, self.registry)

    # -- in Ray workers -----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # what a Ray task receives: no loaded data or shared attack runs (the worker loads its own),
        # no dataset plugin (it may hold a loaded file); reopened by __setstate__
        state = dict(self.__dict__)
        state.update(_data={}, _shared={}, dataset_plugin=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.dataset_plugin = open_dataset(self.cfg.dataset, self.registry)

    def for_worker(self) -> "Runner":
        """This runner as a Ray task uses it: no progress bars (they would interleave in the
        driver's log), and on CUDA the GPU Ray assigned (the only one the task sees)."""
        device = self.cfg.device
        if self.device.type == "cuda":
            device = "cuda"  # Ray sets CUDA_VISIBLE_DEVICES: cuda:N of the driver is cuda:0 here
        self.cfg = dataclasses.replace(self.cfg, progress=False, device=device)
        self.device = torch.device(device)
        return self

    # -- data ---------------------------------------------------------------------------------------
    def split(self, which: str) -> Split:
        if which not in self._data:
            d = self.cfg.dataset
            n = d.eval_subset if which == d.eval_split else d.train_subset
            # only the subset's examples are read and resized (the same examples Split.subset picks)
            self._data[which] = self.dataset_plugin.load_subset(which, n, self.cfg.seed, f"{d.name}/{which}")
        return self._data[which]

    @property
    def dataset_id(self) -> dict[str, Any]:
        return to_plain(self.cfg.dataset)

    def identity(self, kind: str, name: str) -> dict[str, Any]:
        """The plugin providing ``name`` (distribution, version, source digest), once per run."""
        if (kind, name) not in self._identities:
            self._identities[(kind, name)] = self.registry.plugin_identity(kind, name)
        return self._identities[(kind, name)]

    # -- models -------------------------------------------------------------------------------------
    def prepare_model(self, spec: ModelSpec, store: ResultStore | None = None) -> PreparedModel:
        return self.prepare_models([spec], store)[0]

    def prepare_models(self, specs: list[ModelSpec], store: ResultStore | None = None) -> list[PreparedModel]:
        """Load each model, training it first when its folder in the cache is missing or incomplete.
        With ``store``, trainings are claimed there: concurrent runs train each model once, and a run
        trains the models nobody else is training while it waits for the others."""
        models: dict[int, Any] = {}
        folders = {i: self.model_folder(s) for i, s in enumerate(specs) if not s.checkpoint}

        def done(i: int) -> bool:
            if i not in models:
                models[i] = self._try_load(folders[i])
                if models[i] is None:
                    del models[i]
                    return False
            return True

        def work(i: int) -> None:
            models[i] = self._train(specs[i], folders[i])

        self._each_once(store, list(folders), lambda i: f"model:{folders[i].name}", done, work, "model trainings")
        return [self._prepared(spec, models.get(i), Path(spec.checkpoint or folders[i])) for i, spec in enumerate(specs)]

    def _try_load(self, folder: Path):
        try:
            return load_checkpoint(folder, self.registry, self.device)
        except CheckpointError:
            return None  # not there yet, or half-written: _train says which

    def _prepared(self, spec: ModelSpec, model: Any, folder: Path) -> PreparedModel:
        """``spec``'s model as cells use it; ``folder``: its checkpoint, or its folder in the cache."""
        if spec.checkpoint:
            model = load_checkpoint(spec.checkpoint, self.registry, self.device)
            return PreparedModel(spec.name, model, model.name, sha256_file(folder / WEIGHTS_FILE), spec.checkpoint)
        return PreparedModel(spec.name, model.to(self.device).eval(), spec.plugin, sha256_file(folder / WEIGHTS_FILE),
                             str(folder))

    def load_prepared(self, spec: ModelSpec, folder: Path) -> PreparedModel:
        """``spec``'s model loaded from ``folder`` (its checkpoint, or its trained folder)."""
        return self._prepared(spec, None if spec.checkpoint else load_checkpoint(folder, self.registry, self.device),
                              folder)

    def try_load_prepared(self, spec: ModelSpec, folder: Path) -> Optional[PreparedModel]:
        """As :meth:`load_prepared` for a trained model's folder; None when it is missing or incomplete."""
        model = self._try_load(folder)
        return None if model is None else self._prepared(spec, model, folder)

    def model_folder(self, spec: ModelSpec) -> Path:
        """The cache folder of a trained model: named by a hash of everything that determines the
        weights, the model's and the dataset's plugin code included."""
        ident = {"plugin": spec.plugin, "config": spec.typed_config.to_dict(), "train": self._train_config(spec, plain=True),
                 "dataset": self.dataset_id, "seed": self.cfg.seed, "version": __version__,
                 "plugins": {"model": self.identity("model", spec.plugin),
                             "dataset": self.identity("dataset", self.cfg.dataset.name)}}
        return self.cache_dir / "models" / f"{spec.name}-{cell_key(ident)[:12]}"

    def _train_config(self, spec: ModelSpec, plain: bool = False):
        tcfg = dataclasses.replace(spec.train, device=self.cfg.device, progress=self.cfg.progress and spec.train.progress)
        return {k: v for k, v in to_plain(tcfg).items() if k != "progress"} if plain else tcfg

    def _train(self, spec: ModelSpec, folder: Path):
        if (folder / WEIGHTS_FILE).exists():
            # weights without a loadable config.json: a run was killed while saving this model
            try:
                load_checkpoint(folder, self.registry, self.device)
            except CheckpointError as e:
                tqdm.write(f"latentbench: model folder {folder} is incomplete (a run killed while saving it?): "
                           f"{str(e).splitlines()[0]}; retraining '{spec.name}'", file=sys.stderr)
        torch.manual_seed(derive_seed(self.cfg.seed, "init", spec.name))
        model = self.registry.model(spec.plugin)(spec.typed_config)  # typed config built by validate_run_config
        tcfg = dataclasses.replace(self._train_config(spec), seed=derive_seed(self.cfg.seed, "train", spec.name) % (2**31))
        res = train(model, self.split("train"), tcfg, desc=f"train {spec.name}")
        save_checkpoint(model, folder, training_metadata(model, self.cfg.dataset.name, tcfg, res))
        return model

    # -- cells --------------------------------------------------------------------------------------
    def cells(self, prepared: list[PreparedModel]) -> list[Cell]:
        out = []
        for pm in prepared:
            for m in self.cfg.metrics:
                mcls = self.registry.metric(m.plugin)
                if mcls.requires_generative and not getattr(pm.model, "generative", True):
                    continue  # e.g. FID of the identity reference row: it has no prior to sample
                plugins = {"model": self.identity("model", pm.plugin),
                           "dataset": self.identity("dataset", self.cfg.dataset.name),
                           "metric": self.identity("metric", m.plugin)}
                base = {"model_hash": pm.weights_hash, "dataset": self.dataset_id, "metric": m.plugin,
                        "metric_config": to_plain(m.typed_config), "seed": self.cfg.seed, "trials": self.cfg.trials,
                        "protocol": self.cfg.protocol, "version": __version__, "plugins": plugins,
                        # the cell's seeds derive from the model's label (Runner._context), so the same
                        # weights under another label are another cell
                        "label": pm.label}
                if "attack" not in mcls.needs:
                    out.append(Cell(pm.label, m.label, m.plugin, key=cell_key(base), spec=base,
                                    metric_config=m.typed_config))
                    continue
                for a in self.cfg.attacks:
                    if m.attacks is not None and a.name not in m.attacks:
                        continue
                    for ab in a.typed_configs:
                        spec = {**base, "attack": a.plugin, "attack_config": to_plain(ab.config),
                                "plugins": {**plugins, "attack": self.identity("attack", a.plugin)}}
                        out.append(Cell(pm.label, m.label, m.plugin, a.name, a.plugin, ab.budget, key=cell_key(spec),
                                        spec=spec, metric_config=m.typed_config, attack_config=ab.config))
        return out

    def _context(self, pm: PreparedModel, cell: Cell) -> MetricContext:
        ev = self.split(self.cfg.dataset.eval_split).to(self.device)
        gen = component_generator(self.cfg.seed, "cell", cell.model, cell.attack, cell.budget, cell.metric)
        ctx = MetricContext(model=pm.model, x=ev.x, y=ev.y, dataset=self.cfg.dataset.name, device=self.device,
                            generator=gen, seed=self.cfg.seed, num_classes=self.dataset_plugin.num_classes,
                            cache_dir=self.cache_dir, trials=self.cfg.trials,
                            attack_name=cell.attack_plugin)
        mcls = self.registry.metric(cell.metric_plugin)
        # a metric that needs a classifier trains (or reloads) its own from the training split
        if {"train_data", "classifier"} & mcls.needs:
            tr = self.split("train").to(self.device)
            ctx.train_x, ctx.train_y = tr.x, tr.y
        if cell.attack_plugin:
            acls = self.registry.attack(cell.attack_plugin)
            # the attack's randomness depends on (model, attack, budget) only, so that every metric of
            # that triple sees the same attack run
            ctx.attack = acls(pm.model, cell.attack_config, generator=component_generator(
                self.cfg.seed, "attack", cell.model, cell.attack, cell.budget))
        # cells of one (model, attack, budget) share ctx.extra (attack pairs, spectra): same inputs, computed once
        ctx.extra = self._shared.setdefault((pm.weights_hash, cell.attack, cell.budget), {})
        return ctx

    def _evaluate(self, pm: PreparedModel, cell: Cell) -> dict[str, Any]:
        metric = self.registry.metric(cell.metric_plugin)(cell.metric_config)
        ctx = self._context(pm, cell)
        res = metric(ctx)
        bad = [k for k, v in res.values.items() if not np.isfinite(float(v))]
        if bad:
            raise NonFiniteError(
                f"metric '{cell.metric}' returned non-finite values for {bad} on model '{cell.model}'. "
                f"Check the model for NaNs (a diverged training run?) and the attack's settings.")
        return res.to_json()

    # -- run ----------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        from latentbench.report import write_outputs

        summary = RunSummary()
        ensure_folder(self.out, "output_dir")
        atomic_write_text(self.out / "run_config.json", json.dumps(to_plain(self.cfg), indent=2))
        with ResultStore(self.store_path) as store:
            if self.executor is None:
                rows = self._run_local(store, summary)
            else:
                rows = self.executor.run(self, store, summary)
            summary.rows = rows
            summary.outputs = write_outputs(summary.rows, self.out)
        return summary

    def _run_local(self, store: ResultStore, summary: RunSummary) -> list[dict[str, Any]]:
        """Train and evaluate in this process, one cell after another; the rows in cell order."""
        prepared = self.prepare_models(self.cfg.models, store)
        for pm in prepared:
            pm.error = self._check_model(pm)
        by_label = {pm.label: pm for pm in prepared}
        cells = self.cells(prepared)
        progress = CellProgress(len(cells), f"run {self.cfg.name}", self.cfg.progress)
        book = CellBook(self, store, summary, progress)

        def compute(i: int) -> None:
            cell = cells[i]
            progress.started(1, cell.label)
            book.record(i, cell, self._run_cell(by_label[cell.model], cell))

        try:
            self._each_once(store, range(len(cells)), lambda i: cells[i].key, lambda i: book.reuse(i, cells[i]),
                            compute, "cells")
        finally:
            progress.close()
        return [book.results[i] for i in range(len(cells)) if i in book.results]

    def _each_once(self, store: ResultStore | None, jobs: Iterable[Any], key: Callable[[Any], str],
                   done: Callable[[Any], bool], work: Callable[[Any], None], what: str) -> None:
        """``work(job)`` for every job whose result is not there yet (``done(job)`` is False), each
        under a claim on ``key(job)`` in ``store``. Jobs another live run has claimed are left for
        later; those are looked at again, with growing pauses, until their result appears or their
        claim is released or lapses (then this run takes them). Without a store: no claims."""
        pending, pause, told = list(jobs), POLL_S[0], False
        while pending:
            later = []
            for job in pending:
                if done(job):
                    continue
                if store is None:
                    work(job)
                    continue
                if not store.claim(key(job), self.owner, self.lease_s):
                    later.append(job)
                    continue
                try:
                    if not done(job):  # another run may have finished it between the look and the claim
                        work(job)
                finally:
                    store.release(key(job), self.owner)
            if later:
                if not told:
                    owner = store.claim_owner(key(later[0]))
                    tqdm.write(f"latentbench: waiting for {len(later)} {what} that another run on {store.path} "
                               f"is computing" + (f" (claimed by {owner})" if owner else ""), file=sys.stderr)
                    told = True
                time.sleep(pause)
                pause = min(pause * 1.5, POLL_S[1])
            pending = later

    def _check_model(self, pm: PreparedModel) -> Optional[str]:
        if not getattr(pm.model, "generative", True) or not hasattr(pm.model, "encode"):
            return None
        x = self.split(self.cfg.dataset.eval_split).x[:64].to(self.device)
        with torch.no_grad():
            try:
                q = pm.model.encode(x)
            except NotImplementedError:
                return None
            if not torch.isfinite(q.mean).all() or (q.std is not None and not torch.isfinite(q.std).all()):
                return (f"model '{pm.label}' produces NaN/inf codes on the evaluation data; its weights are broken "
                        f"(a diverged training run?). Retrain with a lower learning rate or check the checkpoint.")
            # every metric decodes: a decoder that returns NaN would otherwise pass metrics that only
            # look at codes (spectral_radius) as ok
            try:
                x_hat = pm.model.decode(q.mean)
            except NotImplementedError:
                return None
        if not torch.isfinite(x_hat).all():
            return (f"model '{pm.label}' decodes its codes of the evaluation data to NaN/inf images; its decoder "
                    f"weights are broken (a diverged training run?). Retrain with a lower learning rate or check "
                    f"the checkpoint.")
        return None

    def _row(self, pm: PreparedModel, cell: Cell) -> dict[str, Any]:
        return {"key": cell.key, "run": self.cfg.name, "model": cell.model, "model_plugin": pm.plugin,
                "model_hash": pm.weights_hash, "dataset": self.cfg.dataset.name, "protocol": self.cfg.protocol,
                "attack": cell.attack, "budget": cell.budget, "metric": cell.metric,
                "config": {"cell": cell.spec, "model_checkpoint": pm.checkpoint, "run": self.cfg.name}}

    def _with_provenance(self, row: dict[str, Any], cell: Cell) -> dict[str, Any]:
        info = (row.get("result") or {}).get("info", {})
        row["provenance"] = provenance(seed=self.cfg.seed, device=self.cfg.device, protocol=self.cfg.protocol,
                                       dataset=self.dataset_id, feature_extractor=info.get("feature_extractor"),
                                       plugins=cell.spec["plugins"])
        return row

    def _failed_row(self, pm: PreparedModel, cell: Cell, error: str) -> dict[str, Any]:
        """The row of a cell that could not be computed (an executor's task that failed every try)."""
        row = self._row(pm, cell)
        row.update(status="error", values=None, result=None, error=error, seconds=None)
        return self._with_provenance(row, cell)

    def _run_cell(self, pm: PreparedModel, cell: Cell) -> dict[str, Any]:
        start = time.perf_counter()
        row = self._row(pm, cell)
        try:
            if pm.error:
                raise NonFiniteError(pm.error)
            result = self._evaluate(pm, cell)
            row.update(status="ok", values=result["values"], result=result, error=None)
        except torch.OutOfMemoryError as e:  # CUDA (or other accelerator) memory: say which knob lowers it
            row.update(status="error", values=None, result=None, error=out_of_memory_message(cell, self.cfg.device, e))
        except Exception as e:  # one failing cell must not stop the run
            msg = f"{type(e).__name__}: {e}"
            if not isinstance(e, LatentBenchError):
                msg += "\n" + traceback.format_exc(limit=6)
            row.update(status="error", values=None, result=None, error=msg)
        row["seconds"] = time.perf_counter() - start
        return self._with_provenance(row, cell)


def out_of_memory_message(cell: Cell, device: str, error: BaseException) -> str:
    """One line for a cell that ran out of device memory, naming the setting that bounds its batch."""
    bs = getattr(cell.metric_config, "batch_size", None)
    knob = (f"lower metric '{cell.metric}''s `config: {{batch_size: ...}}` in the run config (now {bs})" if bs is not None
            else f"evaluate fewer images at once (metric '{cell.metric}' has no batch_size setting)")
    first = str(error).splitlines()[0] if str(error) else "out of memory"
    return (f"OutOfMemoryError: out of memory on {device} in cell {cell.label} ({first}) -- {knob}, "
            f"or run on another device (--device cpu); finished cells are kept, a re-run computes only the missing ones")


def run_config(cfg: RunConfig, registry: Registry | None = None, **executor: Any) -> RunSummary:
    """Run ``cfg``; ``executor``: the :class:`Runner`'s executor arguments (executor="ray", ...)."""
    return Runner(cfg, registry, **executor).run()
