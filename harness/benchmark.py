"""Evaluate one model under a registered protocol and build its leaderboard entry (docs/methods.md §4).

The evaluation itself is the :class:`latentbench.runner.Runner` with ``protocol:`` set, so a
leaderboard number is exactly what ``latentbench run`` computes for the same protocol. This module
adds what an entry needs on top: training (or loading) the checkpoint and keeping a copy of it,
the clean reconstruction MSE on the protocol's evaluation subset, and the entry's metadata
(plugin distribution and version, checkpoint sha256 and origin, provenance, run time).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import yaml

from latentbench.checkpoint import WEIGHTS_FILE, load_checkpoint, read_checkpoint_config, read_metadata, sha256_file
from latentbench.errors import ConfigError, LatentBenchError
from latentbench.leaderboard import perimage
from latentbench.provenance import provenance
from latentbench.runconfig import DatasetSpec, ModelSpec, RunConfig
from latentbench.runner import Runner
from latentbench.training import TrainConfig

#: bumped when the entry layout changes (leaderboard/schema.json documents it). 2: ``data_digest``
#: and per-image records (``per_image``) of metrics that aggregate them (``aggregate_images``)
ENTRY_SCHEMA_VERSION = 2


@dataclass
class BenchmarkRequest:
    """What to evaluate: a model plugin to train (``model`` + ``config`` + ``train``) or a saved
    ``checkpoint`` folder, under ``protocol``; :meth:`model_spec` is the run config's model entry."""

    protocol: str
    model: Optional[str] = None
    config: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: Optional[str] = None
    name: Optional[str] = None
    paper: Optional[str] = None
    device: str = "cpu"
    #: folder with the protocol's dataset files (e.g. the Fashion-MNIST IDX files)
    data_root: Optional[str] = None
    #: run folder (results store, cached training); default runs/benchmark/<protocol>/<name>
    work_dir: Optional[str] = None
    #: copy the evaluated checkpoint here (e.g. leaderboard/checkpoints/<protocol>/<name>)
    save_checkpoint_to: Optional[str] = None
    #: how to rebuild the checkpoint, stored in the entry (default: the command that made it)
    regenerate: Optional[str] = None
    progress: bool = False
    #: where the cells run: "local" (this process) or "ray" (docs/scaling.md), and the Ray cluster to join
    executor: str = "local"
    ray_address: Optional[str] = None

    def validate(self) -> None:
        if bool(self.model) == bool(self.checkpoint):
            raise ConfigError("benchmark", "give exactly one of --model (train a plugin) or --checkpoint DIR (a saved model)")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.model:
            return self.model
        return Path(self.checkpoint).name

    def model_spec(self) -> ModelSpec:
        """The model as a run config describes it; the runner validates and builds its config."""
        if self.model:
            return ModelSpec(name=self.label, plugin=self.model, config=dict(self.config),
                             train=dataclasses.replace(self.train, progress=self.progress))
        return ModelSpec(name=self.label, checkpoint=str(self.checkpoint))


def _plugin_info(registry, model_name: str) -> dict[str, Any]:
    cls = registry.model(model_name)
    provider = registry.provider[("model", model_name)]
    info = next((i for i in registry.plugins if i.name == provider), None)
    return {"plugin": model_name, "provider": provider,
            "distribution": info.distribution if info else "?", "plugin_version": info.version if info else "?",
            "source": getattr(cls, "source", "")}


def clean_reconstruction(model, x: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Mean squared error between images and the decoded encoder mean, per pixel, averaged over
    images (the clean reconstruction quality of the model on the evaluation subset)."""
    per_image = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            rec = model.decode(model.encode(xb).mean)
            per_image.append((rec - xb).reshape(xb.shape[0], -1).double().pow(2).mean(dim=1).cpu())
    v = torch.cat(per_image)
    return {"mse": float(v.mean()), "mse_std": float(v.std(unbiased=False)), "n_images": int(v.numel())}


def _result_records(rows: list[dict[str, Any]], registry=None) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        cell = (r.get("config") or {}).get("cell", {})
        info = ((r.get("result") or {}).get("info") or {})
        rec = {"metric": r["metric"], "attack": r.get("attack"), "budget": r.get("budget"),
               "values": {k: float(v) for k, v in sorted(r["values"].items())},
               "metric_config": cell.get("metric_config", {}), "attack_config": cell.get("attack_config")}
        # the result's own configuration (e.g. the MS-SSIM window or the FID feature extractor)
        res_cfg = (r.get("result") or {}).get("config") or {}
        if res_cfg:
            rec["result_config"] = res_cfg
        if info.get("feature_extractor"):
            rec["feature_extractor"] = info["feature_extractor"]
        # the rest of info goes along: sanity flags and their messages, the examples the detail
        # page's image grid draws (docs/methods.md §7)
        rest = {k: v for k, v in info.items() if k != "feature_extractor"}
        if rest:
            rec["info"] = rest
        # per-image records of metrics that can re-derive their values from them: what lets
        # `leaderboard verify` check the numbers exactly and a random subset of images cheaply
        per_sample = (r.get("result") or {}).get("per_sample") or {}
        if per_sample and registry is not None and _aggregates_images(registry, cell.get("metric", r["metric"])):
            rec["per_image"] = perimage.encode(per_sample)
        out.append(rec)
    return sorted(out, key=lambda d: (d["metric"], d["attack"] or "", d["budget"] if d["budget"] is not None else -1))


def _aggregates_images(registry, plugin: str) -> bool:
    return plugin in registry.names("metric") and hasattr(registry.metric(plugin), "aggregate_images")


def regenerate_command(req: BenchmarkRequest) -> str:
    parts = ["latentbench", "benchmark", "--protocol", req.protocol]
    if req.model:
        parts += ["--model", req.model]
        for k, v in sorted(req.config.items()):
            if k != "input_shape":
                parts += ["--set", f"{k}={_yaml_scalar(v)}"]
        parts += ["--train-epochs", str(req.train.epochs), "--batch-size", str(req.train.batch_size)]
    else:
        parts += ["--checkpoint", req.checkpoint]
    if req.name:
        parts += ["--name", req.name]
    if req.save_checkpoint_to:
        parts += ["--save-checkpoint", str(req.save_checkpoint_to)]
    return " ".join(shlex.quote(p) for p in parts)


def _yaml_scalar(v: Any) -> str:
    # plain words stay plain (backbone=mlp); everything else in flow JSON, which YAML reads back
    if isinstance(v, str) and yaml.safe_load(v) == v and " " not in v:
        return v
    return json.dumps(v).replace(" ", "")


def protocol_runner(protocol: str, label: str, model: ModelSpec | str, device: str, work_dir: str,
                    data_root: Optional[str], registry, progress: bool = False,
                    executor: Optional[dict[str, Any]] = None) -> Runner:
    """The runner of one model under ``protocol`` (a model spec, or a checkpoint folder): the
    protocol fills the dataset (keeping data_root), attacks and metrics. `leaderboard verify`
    builds the same one to recompute an entry's images."""
    spec = model if isinstance(model, ModelSpec) else ModelSpec(name=label, checkpoint=str(model))
    cfg = RunConfig(name=f"benchmark-{label}", protocol=protocol, device=device, output_dir=str(work_dir),
                    dataset=DatasetSpec(data_root=data_root), models=[spec], progress=progress)
    return Runner(cfg, registry, **(executor or {}))


def entry_provenance(seed: Optional[int], device: str, executor=None) -> dict[str, Any]:
    """The entry's provenance. With the ray executor the cells ran in Ray tasks with the executor's CPUs
    as torch threads, not the driver's count: record theirs, which `leaderboard verify` pins to
    reproduce the sums bit for bit."""
    prov = provenance(seed=seed, device=device)
    if executor is not None:
        from latentbench.executors import task_threads

        prov["hardware"]["torch_threads"] = task_threads(executor.num_cpus)
    return prov


def evaluate(req: BenchmarkRequest, registry=None, repo_root: str | Path | None = None) -> dict[str, Any]:
    """Train or load the model, run the protocol through the Runner and return the entry dict."""
    from latentbench.registry import get_registry

    req.validate()
    registry = registry or get_registry()
    proto = registry.protocol(req.protocol, path="--protocol")
    label = req.label
    work = Path(req.work_dir or Path("runs") / "benchmark" / proto.name / label)
    start = time.perf_counter()
    runner = protocol_runner(proto.name, label, req.model_spec(), req.device, str(work), req.data_root, registry,
                             req.progress, executor={"executor": req.executor, "ray_address": req.ray_address})
    summary = runner.run()
    seconds = time.perf_counter() - start
    failed = [r for r in summary.rows if r["status"] != "ok"]
    if failed:
        lines = "\n".join(f"  {r['metric']} x {r.get('attack')}@{r.get('budget')}: {(r['error'] or '').splitlines()[0]}"
                          for r in failed)
        raise LatentBenchError(f"{len(failed)} cell(s) of protocol {proto.name} failed for '{label}'; no entry written:\n"
                               f"{lines}\nFix the model or checkpoint and re-run (finished cells are reused from {work}).")
    ckpt_dir = Path(summary.rows[0]["config"]["model_checkpoint"])
    if req.save_checkpoint_to and Path(req.save_checkpoint_to).resolve() != ckpt_dir.resolve():
        dest = Path(req.save_checkpoint_to)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(ckpt_dir, dest)
        ckpt_dir = dest
    ck_config = read_checkpoint_config(ckpt_dir)
    model_name = ck_config["model"]
    model = load_checkpoint(ckpt_dir, registry, req.device)
    ev = runner.split(runner.cfg.dataset.eval_split).to(torch.device(req.device))
    clean = clean_reconstruction(model, ev.x)
    sha = sha256_file(ckpt_dir / WEIGHTS_FILE)
    meta = read_metadata(ckpt_dir)
    root = Path(repo_root or Path.cwd()).resolve()
    try:
        rel = str(ckpt_dir.resolve().relative_to(root))
    except ValueError:
        rel = str(ckpt_dir.resolve())
    results = _result_records(summary.rows, registry)
    prov = entry_provenance(runner.cfg.seed, req.device, runner.executor)
    # run_seconds covers only the cells computed now: cells_reused > 0 means an earlier run in the
    # same work_dir computed the rest (training time is in checkpoint.training.train_seconds)
    prov.update(run_seconds=round(seconds, 2), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                cells_computed=summary.computed, cells_reused=summary.reused)
    return {
        "schema_version": ENTRY_SCHEMA_VERSION,
        "name": label,
        "model": {**_plugin_info(registry, model_name),
                  "config": ck_config["config"]},
        "paper": req.paper,
        "protocol": {"name": proto.name, "version": proto.version},
        # the evaluation images and labels the per-image records index
        "data_digest": perimage.data_digest(ev.x, ev.y),
        "checkpoint": {"sha256": sha, "path": rel, "regenerate": req.regenerate or regenerate_command(req),
                       # the per-epoch history stays in the checkpoint's metadata.json
                       "training": {k: meta[k] for k in sorted(meta) if k not in ("weights_sha256", "history")}},
        "reported": {"clean": clean, "results": results},
        "reproduced": None,
        "unreliable": False,
        "provenance": prov,
    }
