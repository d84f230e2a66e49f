"""Verification of an entry: refuse what cannot be compared, then check every number it claims.

Before any number is looked at, ``verify`` refuses (``VerifyError``, exit 2) an entry whose
protocol version is not the installed protocol's, whose ``provenance.latentbench_version`` has
another major.minor than the installed package (numbers may change between minor versions:
re-run ``latentbench benchmark``), whose checkpoint path breaks the path rule
(:func:`latentbench.leaderboard.validate.checkpoint_path_errors`), or whose checkpoint's sha256
differs from the entry's.

Two modes (docs/leaderboard.md):

- ``images`` (default for entries with per-image records): the evaluation data's digest; the
  aggregates recomputed from the stored per-image records (the metric's ``aggregate_images``)
  compared exactly; and a random subset of images (``--images K``, seeded with ``--images-seed``,
  fresh by default so a submitter cannot know which) recomputed and compared per image, exactly.
  Numbers without per-image records are not re-computed in this mode and the report says how many.
- ``full``: re-run the whole protocol and compare every number within the protocol's per-metric
  tolerances (measured reproduction noise, :attr:`latentbench.protocol.Protocol.tolerances`), and
  per-image records exactly.

On the CPU, ``verify`` runs with the entry's ``provenance.hardware.torch_threads``: float reductions
depend on the thread count, and only the same count reproduces bit for bit.

``--write`` records the outcome in ``reproduced``: ``reproduced`` only after a full re-run without
mismatch, ``checked`` after an images-mode check without mismatch, ``mismatch`` otherwise (which
also sets ``unreliable``). A mismatch is never written as anything else.
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from latentbench.checkpoint import WEIGHTS_FILE, sha256_file
from latentbench.errors import LatentBenchError
from latentbench.leaderboard import perimage
from latentbench.leaderboard.schema import load_schema, schema_errors
from latentbench.leaderboard.validate import _cell, checkpoint_path_errors, rebuild_command
from latentbench.protocol import tolerance_for

#: images recomputed by default in images mode
DEFAULT_IMAGES = 32


class VerifyError(LatentBenchError):
    """An entry that cannot be verified at all (other protocol version, package version, weights or path)."""


@dataclass
class Difference:
    field: str
    reported: Any
    reproduced: Any
    allowed: float
    ok: bool
    #: a number or setting the re-run has and the entry does not (added to the metric since the entry
    #: was made): listed, not compared, and not a mismatch -- the entry claims nothing about it
    added: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "reported": self.reported, "reproduced": self.reproduced,
                "allowed": self.allowed if math.isfinite(self.allowed) else None}


@dataclass
class VerifyReport:
    entry: str
    protocol: str
    tolerances: dict[str, Any]
    compared: list[Difference]
    seconds: float = 0.0
    mode: str = "full"
    #: numbers of the entry this mode did not re-compute (images mode: those without per-image records)
    unchecked: int = 0
    images: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[Difference]:
        return [d for d in self.compared if not d.ok]

    @property
    def added(self) -> list[Difference]:
        return [d for d in self.compared if d.added]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def text(self) -> str:
        if self.mode == "full":
            head = (f"verify {self.entry} under {self.protocol} (full re-run, per-metric tolerances of the protocol: "
                    f"{_tolerance_text(self.tolerances)}), re-run took {self.seconds:.1f}s:")
        else:
            head = (f"verify {self.entry} under {self.protocol} (per-image records: aggregates recomputed exactly, "
                    f"{len(self.images.get('indices', []))} images recomputed, --images-seed "
                    f"{self.images.get('seed')}), took {self.seconds:.1f}s:")
        lines = [head]
        for d in self.mismatches:
            lines.append(f"  MISMATCH {d.field}: reported {d.reported}, reproduced {d.reproduced}"
                         + (f" (allowed difference {d.allowed:.4g})" if math.isfinite(d.allowed) else ""))
        n = len(self.compared) - len(self.added)
        lines.append(f"{n - len(self.mismatches)}/{n} numbers reproduced"
                     + ("" if self.ok else f"; {len(self.mismatches)} mismatch(es)"))
        if self.added:
            lines.append(f"{len(self.added)} number(s) or setting(s) added to the metrics since this entry was made "
                         f"(not in the entry, so not compared): " + ", ".join(d.field for d in self.added))
        if self.unchecked:
            lines.append(f"{self.unchecked} number(s) without per-image records were not re-computed; "
                         f"`--full` re-runs the whole protocol")
        return "\n".join(lines)


def _tolerance_text(tol: dict[str, Any]) -> str:
    if "default" not in tol:
        return f"|reported - reproduced| <= {tol['abs']} + {tol['rel']} * |reported|"
    return "; ".join(f"{k}: abs {v['abs']:g} + rel {v['rel']:g}" for k, v in tol.items())


def within(reported: float, reproduced: float, tol: dict[str, float]) -> tuple[bool, float]:
    allowed = tol["abs"] + tol["rel"] * abs(reported)
    return abs(reported - reproduced) <= allowed, allowed


def compare_numbers(reported: dict, reproduced: dict, tol: dict[str, Any]) -> list[Difference]:
    """Compare every number of two ``{clean, results}`` sections, each within its metric's
    tolerance (``tol``: a protocol's per-metric tolerances, or one flat ``{abs, rel}``); a cell or
    value present on one side only is a mismatch."""
    out = []
    for k in sorted(set(reported["clean"]) | set(reproduced["clean"])):
        a, b = reported["clean"].get(k), reproduced["clean"].get(k)
        if k == "n_images":
            out.append(Difference(f"clean.{k}", a, b, 0.0, a == b))
        elif a is None or b is None:
            out.append(Difference(f"clean.{k}", a, b, math.inf, False))
        else:
            ok, allowed = within(a, b, tolerance_for(tol, "clean", k))
            out.append(Difference(f"clean.{k}", a, b, allowed, ok))
    rep = {_cell(r): r for r in reported["results"]}
    new = {_cell(r): r for r in reproduced["results"]}
    for cell in sorted(set(rep) | set(new), key=str):
        m, a_, b_ = cell
        label = f"{m} x {a_}@{b_:g}" if a_ else m
        if cell not in rep or cell not in new:
            out.append(Difference(label, "present" if cell in rep else "absent",
                                  "present" if cell in new else "absent", math.inf, False))
            continue
        va, vb = rep[cell]["values"], new[cell]["values"]
        for k in sorted(set(va) | set(vb)):
            if k not in va:
                out.append(Difference(f"{label}: {k}", None, vb[k], math.inf, True, added=True))
            elif k not in vb:
                out.append(Difference(f"{label}: {k}", va[k], None, math.inf, False))
            else:
                ok, allowed = within(va[k], vb[k], tolerance_for(tol, m, k))
                out.append(Difference(f"{label}: {k}", va[k], vb[k], allowed, ok))
        out += compare_configs(label, rep[cell].get("metric_config"), new[cell].get("metric_config"))
        fa, fb = rep[cell].get("feature_extractor"), new[cell].get("feature_extractor")
        if fa != fb:  # numbers computed in different feature spaces are not comparable at all
            out.append(Difference(f"{label}: feature_extractor", fa, fb, math.inf, False))
        if "per_image" in rep[cell] or "per_image" in new[cell]:
            out += compare_records(label, _records(rep[cell], label), _records(new[cell], label))
    return out


def compare_configs(label: str, reported: Any, reproduced: Any) -> list[Difference]:
    """A cell's metric config: every setting the entry records must be the protocol's (another
    setting computes other numbers: not this protocol's cell). Settings the metric gained since the
    entry was made are listed as added: the entry's numbers are compared anyway, so a new setting
    that changed them shows there."""
    if not (isinstance(reported, dict) and isinstance(reproduced, dict)):
        return [] if reported == reproduced else [Difference(f"{label}: metric_config", reported, reproduced, math.inf, False)]
    wrong = {k: v for k, v in reported.items() if k not in reproduced or reproduced[k] != v}
    out = [Difference(f"{label}: metric_config", wrong, {k: reproduced.get(k) for k in wrong}, math.inf, False)] if wrong else []
    out += [Difference(f"{label}: metric_config.{k}", None, reproduced[k], math.inf, True, added=True)
            for k in sorted(set(reproduced) - set(reported))]
    return out


def _records(rec: dict, label: str) -> Optional[dict[str, np.ndarray]]:
    """The decoded per-image records of a result record (None: none, or not decodable)."""
    if "per_image" not in rec:
        return None
    try:
        return perimage.decode(rec["per_image"], f"{label}: per_image")
    except LatentBenchError:
        return None


def compare_records(label: str, reported: Optional[dict], reproduced: Optional[dict],
                    indices: Optional[np.ndarray] = None) -> list[Difference]:
    """Per-image records compared exactly (``indices``: the images ``reproduced`` holds, else all);
    one Difference per record key, naming the first differing images."""
    if reported is None or reproduced is None:
        return [Difference(f"{label}: per_image", "present" if reported else "absent or undecodable",
                           "present" if reproduced else "absent or undecodable", math.inf, False)]
    out = []
    for key in sorted(set(reported) | set(reproduced)):
        a, b = reported.get(key), reproduced.get(key)
        if a is None or b is None:
            out.append(Difference(f"{label}: per_image.{key}", a is not None, b is not None, math.inf, False))
            continue
        if indices is not None:
            if len(a) <= int(indices.max(initial=-1)):
                out.append(Difference(f"{label}: per_image.{key}", f"{len(a)} images", f"image {int(indices.max())}",
                                      0.0, False))
                continue
            a = a[indices]
        where = indices if indices is not None else np.arange(len(a))
        if len(a) != len(b):
            out.append(Difference(f"{label}: per_image.{key}", f"{len(a)} images", f"{len(b)} images", 0.0, False))
            continue
        bad = np.flatnonzero(~_equal(a, b))
        out.append(Difference(f"{label}: per_image.{key}",
                              {int(where[i]): a[i].item() for i in bad[:5]} if len(bad) else f"{len(a)} images",
                              {int(where[i]): b[i].item() for i in bad[:5]} if len(bad) else f"{len(b)} images",
                              0.0, not len(bad)))
    return out


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a, b = a.astype(np.float64), b.astype(np.float64)
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return a.astype(np.int64) == b.astype(np.int64)


def version_errors(entry: dict[str, Any], proto, installed: str) -> list[str]:
    """Why ``entry`` cannot be compared with what this installation computes: another protocol
    version, or a latentbench of another major.minor (numbers may change between minor versions)."""
    errs = []
    v = entry["protocol"]["version"]
    if v != proto.version:
        errs.append(f"protocol.version: the entry was computed under {proto.name} version '{v}', the installed "
                    f"protocol {proto.name} is version '{proto.version}' -- re-run `latentbench benchmark` under "
                    f"the installed protocol to make a comparable entry")
    made = str(entry["provenance"].get("latentbench_version", ""))
    if made.split(".")[:2] != installed.split(".")[:2]:
        errs.append(f"provenance.latentbench_version: the entry was made by latentbench {made}, this is "
                    f"latentbench {installed}; results are only compared within one major.minor version -- "
                    f"verify with latentbench {'.'.join(made.split('.')[:2])}.x, or re-run `latentbench "
                    f"benchmark` with this version")
    return errs


def load_entry(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise VerifyError(f"entry {p} not found -- pass the path of a leaderboard/<protocol>/<name>.json file")
    try:
        entry = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VerifyError(f"{p} is not valid JSON ({e}) -- fix the file or regenerate it with `latentbench "
                          f"benchmark`") from None
    errs = schema_errors(entry, load_schema())
    if errs:
        raise VerifyError(f"{p} is not a valid entry: " + "; ".join(errs[:5])
                          + " -- fix it first (`latentbench leaderboard validate`)")
    return entry


def resolve_checkpoint(entry: dict, p: Path, root: Path, checkpoint: Optional[str]) -> Path:
    """The checkpoint folder to evaluate: ``--checkpoint`` (the verifier's own choice), else the
    entry's path, which must obey the path rule; its weights must have the entry's sha256."""
    if checkpoint:
        ck = Path(checkpoint)
    else:
        errs = checkpoint_path_errors(entry, root, p.parent.parent.name)
        if errs:
            raise VerifyError(f"{p}: {errs[0]}")
        if not entry["checkpoint"]["path"]:
            raise VerifyError(f"{p} names no checkpoint folder (checkpoint.path is null) -- pass --checkpoint DIR "
                              f"(rebuild it with `{rebuild_command(entry)}`)")
        ck = root / entry["checkpoint"]["path"]
    if not (ck / WEIGHTS_FILE).is_file():
        raise VerifyError(f"checkpoint of {p} not found at {ck} -- rebuild it with `{rebuild_command(entry)}` "
                          f"or pass --checkpoint DIR")
    sha = sha256_file(ck / WEIGHTS_FILE)
    if sha != entry["checkpoint"]["sha256"]:
        raise VerifyError(f"checkpoint {ck} has sha256 {sha} but {p} was computed on {entry['checkpoint']['sha256']}: "
                          f"these are different weights, verification would be meaningless -- use the "
                          f"checkpoint the entry names")
    return ck


def verify_entry(entry_path: str | Path, checkpoint: str | None = None, device: str = "cpu",
                 work_dir: str | None = None, write: bool = False, registry=None,
                 repo_root: str | Path | None = None, data_root: str | None = None, full: Optional[bool] = None,
                 images: int = DEFAULT_IMAGES, images_seed: Optional[int] = None,
                 executor: Optional[dict] = None) -> VerifyReport:
    """Check the entry (module docstring). ``full`` None: a full re-run for entries without
    per-image records, the images mode otherwise. With ``write``, record the outcome in the entry."""
    from latentbench import __version__
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    p = Path(entry_path)
    entry = load_entry(p)
    proto = registry.protocol(entry["protocol"]["name"], path=f"{p}:protocol.name")
    errs = version_errors(entry, proto, __version__)
    if errs:
        raise VerifyError(f"{p}: {errs[0]}")
    root = Path(repo_root) if repo_root else p.resolve().parent.parent.parent
    ck = resolve_checkpoint(entry, p, root, checkpoint)
    has_records = any("per_image" in r for r in entry["reported"]["results"])
    if full is None:
        full = not has_records
    if images < 1:
        raise VerifyError(f"--images {images}: recompute at least one image -- pass --images K with K >= 1, or --full")
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="latentbench-verify-")
        work_dir = tmp.name
    threads = _pin_threads(entry, device)
    try:
        start = time.perf_counter()
        if full:
            report, fresh = _verify_full(entry, proto, ck, device, work_dir, data_root, registry, root, executor)
        else:
            report, fresh = _verify_images(entry, proto, ck, device, work_dir, data_root, registry, images,
                                           images_seed), None
        report.seconds = time.perf_counter() - start
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if tmp is not None:
            tmp.cleanup()
    if write:
        _write(p, entry, report, fresh)
    return report


def _pin_threads(entry: dict, device: str) -> Optional[int]:
    """Run on as many CPU threads as the entry was computed with: float reductions depend on the
    thread count (measured: up to 4e-4 in a per-image MS-SSIM between 1 and 2 threads), so only the
    same count reproduces bit for bit. Returns the count to restore (None: unchanged)."""
    import torch

    hw = entry["provenance"].get("hardware")
    want = hw.get("torch_threads") if isinstance(hw, dict) else None
    if not str(device).startswith("cpu") or not isinstance(want, int) or isinstance(want, bool) or want < 1:
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(want)
    return before


def _verify_full(entry, proto, ck, device, work_dir, data_root, registry, root, executor=None):
    from latentbench.benchmark import BenchmarkRequest, evaluate

    fresh = evaluate(BenchmarkRequest(protocol=proto.name, checkpoint=str(ck), name=entry["name"], device=device,
                                      work_dir=work_dir, data_root=data_root, **(executor or {})), registry, repo_root=root)
    tol = proto.to_dict()["tolerances"]
    diffs = []
    if "data_digest" in entry:
        diffs.append(Difference("data_digest", entry["data_digest"], fresh["data_digest"], 0.0,
                                entry["data_digest"] == fresh["data_digest"]))
    diffs += compare_numbers(entry["reported"], fresh["reported"], tol)
    return VerifyReport(entry["name"], proto.name, tol, diffs, mode="full"), fresh


def _verify_images(entry, proto, ck, device, work_dir, data_root, registry, images, images_seed) -> VerifyReport:
    """Data digest; aggregates from the stored records, exactly; ``images`` images recomputed."""
    from latentbench.benchmark import protocol_runner
    from latentbench.checkpoint import load_checkpoint
    from latentbench.typed_config import to_plain

    runner = protocol_runner(proto.name, entry["name"], str(ck), device, work_dir, data_root, registry)
    ev = runner.split(runner.cfg.dataset.eval_split)
    digest = perimage.data_digest(ev.x, ev.y)
    diffs = [Difference("data_digest", entry.get("data_digest"), digest, 0.0, entry.get("data_digest") == digest)]
    seed = secrets.randbits(32) if images_seed is None else int(images_seed)
    specs = {m.label: m for m in runner.cfg.metrics}
    indices: list[int] = []
    model = None
    unchecked = len(entry["reported"]["clean"])
    for rec in entry["reported"]["results"]:
        label = rec["metric"]
        spec = specs.get(label)
        if "per_image" not in rec or spec is None:
            unchecked += len(rec["values"])
            continue
        cls = registry.metric(spec.plugin)
        config_diffs = compare_configs(label, rec["metric_config"], to_plain(spec.typed_config))
        diffs += config_diffs
        if any(not d.ok for d in config_diffs):
            continue  # computed with other settings than the protocol's: its images cannot be recomputed
        stored = _records(rec, label)
        if stored is None or not hasattr(cls, "aggregate_images"):
            diffs.append(Difference(f"{label}: per_image", "stored", "not decodable or not aggregated by "
                                    f"{spec.plugin}", math.inf, False))
            continue
        # (a) every value the records determine, recomputed from them and compared exactly
        derived = cls.aggregate_images(stored, rec["metric_config"])
        for k in sorted(derived):
            a = rec["values"].get(k)
            diffs.append(Difference(f"{label}: {k} (from per-image records)", a, derived[k], 0.0, a == derived[k]))
        unchecked += len(set(rec["values"]) - set(derived))
        # (c) a random subset of images recomputed exactly as in the full run (the metric may draw
        # them in the groups it attacks together, so the check costs about `images` images)
        rng = np.random.default_rng(seed)
        n = len(ev.x)
        chosen = (cls.sample_images(rec["metric_config"], n, images, rng) if hasattr(cls, "sample_images")
                  else np.sort(rng.choice(n, size=min(images, n), replace=False)))
        if model is None:
            model = load_checkpoint(ck, registry, device).eval()
        fresh = cls(spec.typed_config).images(_context(runner, model, entry["name"], label, ev, cls), chosen)
        diffs += compare_records(label, stored, fresh, chosen)
        indices = sorted(set(indices) | set(chosen.tolist()))
    tol = proto.to_dict()["tolerances"]
    return VerifyReport(entry["name"], proto.name, tol, diffs, mode="images", unchecked=unchecked,
                        images={"seed": seed, "indices": indices})


def _context(runner, model, name: str, label: str, ev, cls):
    """The metric's context as the runner builds it for the entry's cell (same seed and generator)."""
    from latentbench.metric import MetricContext
    from latentbench.seeding import component_generator

    ctx = MetricContext(model=model, x=ev.x.to(runner.device), y=None if ev.y is None else ev.y.to(runner.device),
                        dataset=runner.cfg.dataset.name, device=runner.device,
                        generator=component_generator(runner.cfg.seed, "cell", name, None, None, label),
                        seed=runner.cfg.seed, num_classes=runner.dataset_plugin.num_classes,
                        cache_dir=runner.cache_dir, trials=runner.cfg.trials)
    if {"train_data", "classifier"} & set(cls.needs):
        tr = runner.split("train")
        ctx.train_x = tr.x.to(runner.device)
        ctx.train_y = None if tr.y is None else tr.y.to(runner.device)
    return ctx


def _strip(results: list[dict]) -> list[dict]:
    """Result records without the bulky parts ``reported`` already holds (example images, per-image records)."""
    out = []
    for r in results:
        r = {k: v for k, v in r.items() if k != "per_image"}
        if isinstance(r.get("info"), dict) and "examples" in r["info"]:
            r["info"] = {k: v for k, v in r["info"].items() if k != "examples"}
        out.append(r)
    return out


def _write(p: Path, entry: dict, report: VerifyReport, fresh: Optional[dict]) -> None:
    """Record the outcome: never 'reproduced' with a mismatch, nor without a full re-run."""
    status = "mismatch" if not report.ok else ("reproduced" if report.mode == "full" else "checked")
    block: dict[str, Any] = {"status": status, "mode": report.mode, "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "tolerances": report.tolerances,
                             "differences": [d.to_json() for d in report.mismatches]}
    if fresh is not None:
        block.update(clean=fresh["reported"]["clean"], results=_strip(fresh["reported"]["results"]),
                     provenance=fresh["provenance"])
    else:
        block.update(images=report.images, unchecked=report.unchecked)
    entry["reproduced"] = block
    entry["unreliable"] = not report.ok
    p.write_text(json.dumps(entry, indent=1) + "\n")
