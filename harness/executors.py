"""Where a run's work happens: ``local`` (one process, one cell after another) or ``ray``.

With ``ray``, training each distinct model is one Ray task, and the cells of a trained model are
tasks submitted as soon as its training finishes (a cell's key holds the hash of its model's
weights, so cells cannot be keyed before). Cells of one (model, attack, budget) go in one task:
they share the attack's run (``ctx.extra``), as in the local executor, so the Ray run does the same
work. Tasks receive the run's :class:`~latentbench.runner.Runner` (its caches left out) and the
path of the model's folder; they load the model from that folder and never pickle a model.

The driver is the only process that writes the results store: rows come back with ``ray.wait`` as
tasks finish and are put one by one, so a run killed at any point keeps every finished cell and a
re-run submits only the missing ones. The driver claims each training and cell in the store before
submitting it, as the local executor does, so concurrent runs (of either kind) share the work.

A task that raises, or whose worker dies, is retried by Ray (``max_retries``); after the last try a
task of several cells is split into one task per cell (so one cell that kills its worker does not
fail the cells it shared a task with), and a one-cell task's cell is recorded as failed (the same row
as a cell that raised locally). The run goes on. A training that fails every try stops the run, as it does locally.

Numbers do not depend on the executor: every seed derives from the cell (or the model's name), not
from the order of execution. They do depend on torch's CPU thread count (its kernels sum in a
thread-dependent order), and a task sets torch's thread count to its CPU share, so a local run gives
the same numbers as a Ray run when it uses as many threads as a Ray task has CPUs. A model trained
with another thread count has other weights, hence another hash and other cell keys: results of
different thread counts never mix.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TextIO

from tqdm.auto import tqdm

from latentbench.errors import CheckpointError, ConfigError, LatentBenchError

if TYPE_CHECKING:  # torch only for annotations: `latentbench --help` imports this module for its option choices
    import torch

    from latentbench.runner import Cell, PreparedModel, RunSummary, Runner
    from latentbench.store import ResultStore

EXECUTORS = ("local", "ray")
DEFAULT_EXECUTOR = "local"
#: how often Ray runs a failed task again before its cells are recorded as failed
DEFAULT_MAX_RETRIES = 2
#: the GPU share of one task when the run's device is CUDA: four small tasks share a GPU
DEFAULT_GPU_SHARE = 0.25
RAY_INSTALL = "pip install 'latentbench[ray]' (or pip install 'ray>=2.9')"
#: with output that is not a terminal, one plain progress line at most this often (seconds)
PLAIN_EVERY_S = 30.0
#: first and longest pause between looks at work another run has claimed (seconds)
POLL_S = (0.1, 1.0)


# -- progress -------------------------------------------------------------------------------------
class CellProgress:
    """One bar over a run's cells with running/finished/failed counts. On a terminal it is a tqdm
    bar; otherwise (a log file, CI) a plain line at most every ``every_s`` seconds and one at the
    end, so a log gets no carriage-return floods."""

    def __init__(self, total: int, desc: str, enabled: bool = True, file: Optional[TextIO] = None,
                 every_s: float = PLAIN_EVERY_S):
        self.total, self.desc, self.enabled, self.every_s = total, desc, enabled, every_s
        self.file = file or sys.stderr
        self.tty = enabled and bool(getattr(self.file, "isatty", lambda: False)())
        self.running = self.finished = self.failed = 0
        self.bar = tqdm(total=total, desc=desc, file=self.file, disable=not self.tty, dynamic_ncols=True)
        self._last_line = time.monotonic()

    def started(self, n: int = 1, label: str = "") -> None:
        self.running += n
        self._show(label)

    def ended(self, ok: bool, was_running: bool = True) -> None:
        """One cell done: computed now (``was_running``) or taken from the store."""
        if was_running:
            self.running -= 1
        if ok:
            self.finished += 1
        else:
            self.failed += 1
        self.bar.update(1)
        self._show()

    def set_total(self, total: int) -> None:
        self.total = self.bar.total = total
        self.bar.refresh()

    def counts(self) -> str:
        return f"running {self.running}, finished {self.finished}, failed {self.failed}"

    def _show(self, label: str = "") -> None:
        if self.tty:
            self.bar.set_postfix_str(self.counts() + (f" | {label[:50]}" if label else ""))
        elif self.enabled and time.monotonic() - self._last_line >= self.every_s:
            self._line()

    def _line(self) -> None:
        done = self.finished + self.failed
        print(f"{self.desc}: {done}/{self.total} cells ({self.counts()})", file=self.file, flush=True)
        self._last_line = time.monotonic()

    def close(self) -> None:
        self.bar.close()
        if self.enabled and not self.tty:
            self._line()


# -- choosing an executor -------------------------------------------------------------------------
def make_executor(name: str = DEFAULT_EXECUTOR, ray_address: Optional[str] = None, num_cpus: float = 1,
                  num_gpus: Optional[float] = None, max_retries: int = DEFAULT_MAX_RETRIES) -> Optional["RayExecutor"]:
    """None for ``local`` (the Runner computes in its own process), else a :class:`RayExecutor`.
    Everything is checked here, before any training: the name, Ray being installed, the numbers."""
    if name not in EXECUTORS:
        raise ConfigError("executor", f"unknown executor '{name}'", f"use one of: {', '.join(EXECUTORS)}")
    if name == "local":
        if ray_address:
            raise ConfigError("ray_address", f"a Ray address ({ray_address}) was given to the local executor",
                              "add --executor ray, or drop --ray-address")
        return None
    try:
        import ray  # noqa: F401  (an optional extra)
    except ImportError:
        raise ConfigError("executor", "the ray executor needs Ray, which is not installed",
                          f"{RAY_INSTALL}, or use --executor local") from None
    if not num_cpus > 0:
        raise ConfigError("num_cpus", f"each Ray task needs a positive number of CPUs, got {num_cpus}", "give e.g. 1")
    if num_gpus is not None and not num_gpus >= 0:
        raise ConfigError("num_gpus", f"a task's GPU share must be >= 0, got {num_gpus}", f"give e.g. {DEFAULT_GPU_SHARE}")
    if not (isinstance(max_retries, int) and max_retries >= 0):
        raise ConfigError("max_retries", f"expected a whole number >= 0, got {max_retries!r}", "give e.g. 2")
    return RayExecutor(ray_address, num_cpus, num_gpus, max_retries)


@dataclasses.dataclass
class RayExecutor:
    address: Optional[str] = None
    num_cpus: float = 1
    #: None: 0 on the CPU, :data:`DEFAULT_GPU_SHARE` on CUDA
    num_gpus: Optional[float] = None
    max_retries: int = DEFAULT_MAX_RETRIES

    def gpus(self, device: torch.device) -> float:
        if self.num_gpus is not None:
            return self.num_gpus
        return DEFAULT_GPU_SHARE if device.type == "cuda" else 0.0

    def connect(self, device: torch.device):
        """Ray, started here (all the machine's cores) or joined at ``address``; a Ray instance this
        process already started is used as it is (tests, notebooks). Refuses a cluster that could
        never place a task (too few CPUs, no GPU for a CUDA run), which would wait forever."""
        import logging

        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            except ConnectionError as e:
                raise ConfigError("ray_address", f"cannot join the Ray cluster at {self.address}: {e}",
                                  "start it (`ray start --head`) or pass the address `ray status` prints") from None
        have = ray.cluster_resources()
        if have.get("CPU", 0) < self.num_cpus:
            raise ConfigError("num_cpus", f"a task asks for {self.num_cpus:g} CPUs but the Ray cluster has "
                              f"{have.get('CPU', 0):g}", "ask for fewer CPUs per task, or add nodes")
        gpus = self.gpus(device)
        if gpus > 0 and have.get("GPU", 0) < gpus:
            raise ConfigError("device", f"the run is on {device} but the Ray cluster has no GPU",
                              "start Ray on machines with GPUs, or run with --device cpu")
        return ray

    def run(self, runner: "Runner", store: "ResultStore", summary: "RunSummary") -> list[dict[str, Any]]:
        """Train and evaluate on Ray; the rows of the run's cells, in the local executor's order."""
        return _RayRun(self, runner, store, summary).run()


def task_threads(num_cpus: float) -> int:
    """The torch threads of a Ray task given ``num_cpus`` CPUs (at least 1): what its sums depend on."""
    return max(1, int(num_cpus))


# -- the tasks (run in Ray workers) ---------------------------------------------------------------
#: the worker's copy of the current run's Runner, kept between tasks so data and shared attack runs
#: are loaded once per worker, not once per task
_WORKER: dict[str, "Runner"] = {}


def _worker_runner(runner: "Runner", num_cpus: float) -> "Runner":
    import torch

    torch.set_num_threads(task_threads(num_cpus))
    if runner.owner not in _WORKER:
        check_same_code(runner)
        _WORKER.clear()  # one run at a time in a worker: drop an earlier run's data
        _WORKER[runner.owner] = runner.for_worker()
    return _WORKER[runner.owner]


def check_same_code(runner: "Runner") -> None:
    """The driver keyed the cells with its plugins' source digests; a worker (on another node) whose
    installed code differs would store its results under those keys. Refuse instead."""
    from latentbench import __version__
    from latentbench.registry import source_digest

    if __version__ != runner.version:
        raise LatentBenchError(f"this Ray worker has latentbench {__version__} but the driver has {runner.version} -- "
                               f"install the same latentbench on every node of the cluster")
    for (kind, name), ident in runner._identities.items():
        here = source_digest(runner.registry.get(kind, name))
        if here != ident["source_sha256"]:
            raise LatentBenchError(f"the {kind} '{name}' on this Ray worker ({ident['provider']}) has other source code "
                                   f"than on the driver (sha256 {str(here)[:12]} vs {str(ident['source_sha256'])[:12]}) "
                                   f"-- install the same plugins, at the same versions, on every node")


def train_task(runner: "Runner", index: int, folder: str, num_cpus: float) -> str:
    r = _worker_runner(runner, num_cpus)
    r._train(r.cfg.models[index], Path(folder))
    return folder


def cells_task(runner: "Runner", pm: "PreparedModel", index: int, cells: list["Cell"], num_cpus: float) -> list[dict]:
    r = _worker_runner(runner, num_cpus)
    here = r.load_prepared(r.cfg.models[index], Path(pm.checkpoint))
    if here.weights_hash != pm.weights_hash:  # the folder was replaced after the driver keyed the cells
        raise CheckpointError(f"the weights in {pm.checkpoint} changed during the run (sha256 {here.weights_hash[:12]}, "
                              f"expected {pm.weights_hash[:12]}) -- re-run to evaluate the new weights")
    here.error = pm.error
    # a task holds every cell sharing an attack run: what earlier tasks shared is of no more use here
    # (a worker of a long sweep would otherwise keep the attacked images of every model it saw)
    for key in [k for k in r._shared if k[0] != pm.weights_hash]:
        del r._shared[key]
    return [r._run_cell(here, c) for c in cells]


# -- the driver -----------------------------------------------------------------------------------
class _RayRun:
    """One run's driver loop: claim, submit, wait, store; see the module's docstring."""

    def __init__(self, ex: RayExecutor, runner: "Runner", store: "ResultStore", summary: "RunSummary"):
        from latentbench.runconfig import count_cells
        from latentbench.runner import CellBook

        self.ex, self.runner, self.store = ex, runner, store
        self.ray = ex.connect(runner.device)
        self.progress = CellProgress(count_cells(runner.cfg, runner.registry), f"run {runner.cfg.name}",
                                     runner.cfg.progress)
        self.book = CellBook(runner, store, summary, self.progress)
        self.cells: list["Cell"] = []
        self.model_cells: list[list[int]] = [[] for _ in runner.cfg.models]
        self.cell_model: list[int] = []
        self.pms: dict[int, "PreparedModel"] = {}
        #: task -> ("model", model index, claim key) or ("cells", model index, cell indices)
        self.inflight: dict[Any, tuple] = {}
        self.held: set[str] = set()
        self.waiting_models: list[int] = []
        self.waiting_cells: list[int] = []
        opts = dict(num_cpus=ex.num_cpus, num_gpus=ex.gpus(runner.device), max_retries=ex.max_retries,
                    retry_exceptions=True)
        self.train = self.ray.remote(train_task).options(**opts)
        self.evaluate = self.ray.remote(cells_task).options(**opts)
        # every plugin's identity goes to the workers with the runner, for check_same_code
        cfg = runner.cfg
        for kind, names in (("model", [m.plugin for m in cfg.models if m.plugin]), ("dataset", [cfg.dataset.name]),
                            ("attack", [a.plugin for a in cfg.attacks]), ("metric", [m.plugin for m in cfg.metrics])):
            for name in names:
                runner.identity(kind, name)
        self.runner_ref = self.ray.put(runner)

    def run(self) -> list[dict[str, Any]]:
        pause, told = POLL_S[0], False
        try:
            for i in range(len(self.runner.cfg.models)):
                self.start_model(i)
            while self.inflight or self.waiting_models or self.waiting_cells:
                if self.waiting_models or self.waiting_cells:
                    if not told:
                        tqdm.write(f"latentbench: waiting for work that another run on {self.store.path} is doing",
                                   file=sys.stderr)
                        told = True
                    self.retry_waiting()
                if not self.inflight:
                    time.sleep(pause)
                    pause = min(pause * 1.5, POLL_S[1])
                    continue
                timeout = pause if (self.waiting_models or self.waiting_cells) else None
                ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
                for ref in ready:
                    self.finished(ref)
        finally:
            for ref in self.inflight:  # the run stops on an error: its queued tasks are of no use
                self.ray.cancel(ref)
            for key in self.held:
                self.store.release(key, self.runner.owner)
            self.progress.close()
        return [self.book.results[i] for idx in self.model_cells for i in idx if i in self.book.results]

    # -- models ---------------------------------------------------------------------------------------
    def start_model(self, i: int) -> None:
        spec = self.runner.cfg.models[i]
        if spec.checkpoint:
            return self.model_ready(i, self.runner.load_prepared(spec, Path(spec.checkpoint)))
        folder = self.runner.model_folder(spec)
        pm = self.runner.try_load_prepared(spec, folder)
        if pm is not None:
            return self.model_ready(i, pm)
        key = f"model:{folder.name}"
        if not self.claim(key):
            self.waiting_models.append(i)
            return
        pm = self.runner.try_load_prepared(spec, folder)  # trained by another run between the look and the claim
        if pm is not None:
            self.unclaim(key)
            return self.model_ready(i, pm)
        ref = self.train.remote(self.runner_ref, i, str(folder), self.ex.num_cpus)
        self.inflight[ref] = ("model", i, key)

    def model_ready(self, i: int, pm: "PreparedModel") -> None:
        pm.error = self.runner._check_model(pm)
        cells = self.runner.cells([pm])
        pm.model = None  # tasks load it from its folder; the driver need not hold every model
        self.pms[i] = pm
        start = len(self.cells)
        self.cells += cells
        self.model_cells[i] = list(range(start, len(self.cells)))
        self.cell_model += [i] * len(cells)
        if len(self.pms) == len(self.model_cells):  # every model's cells known: the exact count
            self.progress.set_total(len(self.cells))
        self.submit_cells(i, self.model_cells[i])

    # -- cells ----------------------------------------------------------------------------------------
    def submit_cells(self, model: int, indices: list[int]) -> None:
        groups: dict[tuple, list[int]] = {}
        for i in indices:
            cell = self.cells[i]
            if self.book.reuse(i, cell):
                continue
            if not self.claim(cell.key):
                self.waiting_cells.append(i)
                continue
            if self.book.reuse(i, cell):  # another run stored it between the look and the claim
                self.unclaim(cell.key)
                continue
            # one task per (attack, budget): its cells share the attack's run; unattacked cells alone
            groups.setdefault((cell.attack, cell.budget) if cell.attack else ("cell", i), []).append(i)
        for group in groups.values():
            self.submit_group(model, group)
            self.progress.started(len(group), self.cells[group[0]].label)

    def submit_group(self, model: int, group: list[int]) -> None:
        ref = self.evaluate.remote(self.runner_ref, self.pms[model], model, [self.cells[i] for i in group],
                                   self.ex.num_cpus)
        self.inflight[ref] = ("cells", model, group)

    def retry_waiting(self) -> None:
        models, self.waiting_models = self.waiting_models, []
        for i in models:
            self.start_model(i)
        cells, self.waiting_cells = self.waiting_cells, []
        by_model: dict[int, list[int]] = {}
        for i in cells:
            by_model.setdefault(self.cell_model[i], []).append(i)
        for model, indices in by_model.items():
            self.submit_cells(model, indices)

    def finished(self, ref) -> None:
        kind, model, what = self.inflight.pop(ref)
        if kind == "model":
            try:
                folder = self.ray.get(ref)
            except self.ray.exceptions.RayError as e:
                raise self.training_error(model, e) from None
            finally:
                self.unclaim(what)
            spec = self.runner.cfg.models[model]
            return self.model_ready(model, self.runner.load_prepared(spec, Path(folder)))
        try:
            rows = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            if len(what) > 1:
                # one cell's crash must not fail its group's other cells: each gets tasks of its own
                for i in what:
                    self.submit_group(model, [i])
                return
            rows = [self.runner._failed_row(self.pms[model], self.cells[what[0]], self.task_error(e))]
        for i, row in zip(what, rows):
            self.book.record(i, self.cells[i], row, was_running=True)
            self.unclaim(self.cells[i].key)

    def task_error(self, e: Exception) -> str:
        cause = getattr(e, "cause", None) or e
        head = str(cause).strip().splitlines()[0] if str(cause).strip() else "no message"
        return (f"{type(cause).__name__}: {head} (the Ray task failed {self.ex.max_retries + 1} times)"
                f"\n{str(e)[-2000:]}")

    def training_error(self, i: int, e: Exception) -> Exception:
        cause = getattr(e, "cause", None)
        if isinstance(cause, LatentBenchError):
            return cause
        return LatentBenchError(f"training model '{self.runner.cfg.models[i].name}' failed on Ray "
                                f"{self.ex.max_retries + 1} times: {self.task_error(e).splitlines()[0]} -- fix the "
                                f"cause (the worker's log is above) and re-run; finished cells are kept")

    # -- claims ---------------------------------------------------------------------------------------
    def claim(self, key: str) -> bool:
        if self.store.claim(key, self.runner.owner, self.runner.lease_s):
            self.held.add(key)
            return True
        return False

    def unclaim(self, key: str) -> None:
        self.store.release(key, self.runner.owner)
        self.held.discard(key)
