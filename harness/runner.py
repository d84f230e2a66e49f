"""The runner: a run is a grid of independent cells (model x attack configuration x metric).

A cell is the unit of work and of storage: its key hashes everything that determines its result, so
a later executor could spread cells over machines, a re-run reuses stored cells, and a killed run
resumes where it stopped. A failing cell (an exception, NaNs) is recorded and the run goes on.

The run config is validated once, in :class:`Runner`'s constructor (:func:`validate_run_config`),
which builds every typed model, attack (one per budget) and metric config; cells carry those
objects, and the key hashes ``to_plain`` of the very objects the attack and metric receive.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from latentbench import __version__
from latentbench.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint, sha256_file
from latentbench.data import Split
from latentbench.errors import LatentBenchError, NonFiniteError
from latentbench.metric import MetricContext
from latentbench.registry import Registry, get_registry
from latentbench.provenance import provenance
from latentbench.runconfig import ModelSpec, RunConfig, apply_protocol, open_dataset, validate_run_config
from latentbench.seeding import component_generator, derive_seed
from latentbench.store import ResultStore, cell_key
from latentbench.training import train, training_metadata
from latentbench.typed_config import to_plain


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


@dataclass
class PreparedModel:
    label: str
    model: Any
    plugin: str
    weights_hash: str
    checkpoint: Optional[str]
    error: Optional[str] = None


class Runner:
    def __init__(self, cfg: RunConfig, registry: Registry | None = None):
        self.registry = registry or get_registry()
        self.cfg = apply_protocol(cfg, self.registry)
        validate_run_config(self.cfg, self.registry)
        self.device = torch.device(self.cfg.device)
        self.out = Path(self.cfg.output_dir)
        self.cache_dir = Path(self.cfg.cache_dir) if self.cfg.cache_dir else self.out / "cache"
        self.store_path = self.out / "results.sqlite"
        self._data: dict[str, Split] = {}
        #: per (model, attack, budget): shared between that triple's cells (e.g. cached attack pairs)
        self._shared: dict[tuple, dict[str, Any]] = {}
        self.dataset_plugin = open_dataset(self.cfg.dataset, self.registry)

    # -- data ---------------------------------------------------------------------------------------
    def split(self, which: str) -> Split:
        if which not in self._data:
            d = self.cfg.dataset
            s = self.dataset_plugin.load(which)
            n = d.eval_subset if which == d.eval_split else d.train_subset
            self._data[which] = s.subset(n, self.cfg.seed, f"{d.name}/{which}")
        return self._data[which]

    @property
    def dataset_id(self) -> dict[str, Any]:
        return to_plain(self.cfg.dataset)

    # -- models -------------------------------------------------------------------------------------
    def prepare_model(self, spec: ModelSpec) -> PreparedModel:
        if spec.checkpoint:
            model = load_checkpoint(spec.checkpoint, self.registry, self.device)
            return PreparedModel(spec.name, model, model.name, sha256_file(Path(spec.checkpoint) / WEIGHTS_FILE),
                                 spec.checkpoint)
        cls = self.registry.model(spec.plugin)
        mcfg = spec.typed_config  # built by validate_run_config, input_shape from the dataset
        tcfg = dataclasses.replace(spec.train, device=self.cfg.device, progress=self.cfg.progress and spec.train.progress)
        ident = {"plugin": spec.plugin, "config": mcfg.to_dict(), "train": {k: v for k, v in to_plain(tcfg).items() if k != "progress"},
                 "dataset": self.dataset_id, "seed": self.cfg.seed, "version": __version__}
        folder = self.cache_dir / "models" / f"{spec.name}-{cell_key(ident)[:12]}"
        if (folder / WEIGHTS_FILE).exists():
            model = load_checkpoint(folder, self.registry, self.device)
        else:
            torch.manual_seed(derive_seed(self.cfg.seed, "init", spec.name))
            model = cls(mcfg)
            tcfg = dataclasses.replace(tcfg, seed=derive_seed(self.cfg.seed, "train", spec.name) % (2**31))
            res = train(model, self.split("train"), tcfg, desc=f"train {spec.name}")
            save_checkpoint(model, folder, training_metadata(model, self.cfg.dataset.name, tcfg, res))
        return PreparedModel(spec.name, model.to(self.device).eval(), spec.plugin, sha256_file(folder / WEIGHTS_FILE), str(folder))

    # -- cells --------------------------------------------------------------------------------------
    def cells(self, prepared: list[PreparedModel]) -> list[Cell]:
        out = []
        for pm in prepared:
            for m in self.cfg.metrics:
                mcls = self.registry.metric(m.plugin)
                if mcls.requires_generative and not getattr(pm.model, "generative", True):
                    continue  # e.g. FID of the identity reference row: it has no prior to sample
                base = {"model_hash": pm.weights_hash, "dataset": self.dataset_id, "metric": m.plugin,
                        "metric_config": to_plain(m.typed_config), "seed": self.cfg.seed, "trials": self.cfg.trials,
                        "protocol": self.cfg.protocol, "version": __version__}
                if "attack" not in mcls.needs:
                    out.append(Cell(pm.label, m.label, m.plugin, key=cell_key(base), spec=base,
                                    metric_config=m.typed_config))
                    continue
                for a in self.cfg.attacks:
                    if m.attacks is not None and a.name not in m.attacks:
                        continue
                    for ab in a.typed_configs:
                        spec = {**base, "attack": a.plugin, "attack_config": to_plain(ab.config)}
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
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "run_config.json").write_text(json.dumps(to_plain(self.cfg), indent=2))
        with ResultStore(self.store_path) as store:
            prepared = []
            for spec in self.cfg.models:
                pm = self.prepare_model(spec)
                pm.error = self._check_model(pm)
                prepared.append(pm)
            by_label = {pm.label: pm for pm in prepared}
            cells = self.cells(prepared)
            bar = tqdm(cells, desc=f"run {self.cfg.name}", disable=not self.cfg.progress)
            for cell in bar:
                bar.set_postfix_str(cell.label[:60])
                existing = store.get(cell.key)
                if existing is not None and existing["status"] == "ok":
                    summary.reused += 1
                    summary.rows.append(existing)
                    continue
                row = self._run_cell(by_label[cell.model], cell)
                store.put(row)
                stored = store.get(cell.key)
                summary.rows.append(stored)
                if row["status"] == "ok":
                    summary.computed += 1
                else:
                    summary.failed += 1
                    tqdm.write(f"cell failed: {cell.label}: {row['error'].splitlines()[0]}")
                self.registry.call_hook("latentbench_result_finished", cell=cell, result=stored)
            summary.outputs = write_outputs(summary.rows, self.out)
        return summary

    def _check_model(self, pm: PreparedModel) -> Optional[str]:
        if not getattr(pm.model, "generative", True) or not hasattr(pm.model, "encode"):
            return None
        x = self.split(self.cfg.dataset.eval_split).x[:64].to(self.device)
        try:
            with torch.no_grad():
                q = pm.model.encode(x)
        except NotImplementedError:
            return None
        if not torch.isfinite(q.mean).all() or (q.std is not None and not torch.isfinite(q.std).all()):
            return (f"model '{pm.label}' produces NaN/inf codes on the evaluation data; its weights are broken "
                    f"(a diverged training run?). Retrain with a lower learning rate or check the checkpoint.")
        return None

    def _run_cell(self, pm: PreparedModel, cell: Cell) -> dict[str, Any]:
        start = time.perf_counter()
        row = {"key": cell.key, "run": self.cfg.name, "model": cell.model, "model_plugin": pm.plugin,
               "model_hash": pm.weights_hash, "dataset": self.cfg.dataset.name, "protocol": self.cfg.protocol,
               "attack": cell.attack, "budget": cell.budget, "metric": cell.metric,
               "config": {"cell": cell.spec, "model_checkpoint": pm.checkpoint, "run": self.cfg.name}}
        try:
            if pm.error:
                raise NonFiniteError(pm.error)
            result = self._evaluate(pm, cell)
            row.update(status="ok", values=result["values"], result=result, error=None)
        except Exception as e:  # one failing cell must not stop the run
            msg = f"{type(e).__name__}: {e}"
            if not isinstance(e, LatentBenchError):
                msg += "\n" + traceback.format_exc(limit=6)
            row.update(status="error", values=None, result=None, error=msg)
        row["seconds"] = time.perf_counter() - start
        info = (row.get("result") or {}).get("info", {})
        row["provenance"] = provenance(seed=self.cfg.seed, device=self.cfg.device, protocol=self.cfg.protocol,
                                       dataset=self.dataset_id, feature_extractor=info.get("feature_extractor"))
        return row


def run_config(cfg: RunConfig, registry: Registry | None = None) -> RunSummary:
    return Runner(cfg, registry).run()
