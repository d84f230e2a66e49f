"""Verification: re-run an entry's protocol on its checkpoint and compare every number."""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentbench.checkpoint import WEIGHTS_FILE, sha256_file
from latentbench.errors import LatentBenchError
from latentbench.leaderboard.schema import load_schema, schema_errors
from latentbench.leaderboard.validate import _cell

@dataclass
class Difference:
    field: str
    reported: Any
    reproduced: Any
    allowed: float
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "reported": self.reported, "reproduced": self.reproduced, "allowed": self.allowed}


@dataclass
class VerifyReport:
    entry: str
    protocol: str
    tolerances: dict[str, float]
    compared: list[Difference]
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[Difference]:
        return [d for d in self.compared if not d.ok]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def text(self) -> str:
        lines = [f"verify {self.entry} under {self.protocol} (tolerance |reported - reproduced| <= "
                 f"{self.tolerances['abs']} + {self.tolerances['rel']} * |reported|), re-run took {self.seconds:.1f}s:"]
        for d in self.mismatches:
            lines.append(f"  MISMATCH {d.field}: reported {d.reported}, reproduced {d.reproduced}"
                         + (f" (allowed difference {d.allowed:.4g})" if math.isfinite(d.allowed) else ""))
        lines.append(f"{len(self.compared) - len(self.mismatches)}/{len(self.compared)} numbers reproduced"
                     + ("" if self.ok else f"; {len(self.mismatches)} mismatch(es)"))
        return "\n".join(lines)


def within(reported: float, reproduced: float, tol: dict[str, float]) -> tuple[bool, float]:
    allowed = tol["abs"] + tol["rel"] * abs(reported)
    return abs(reported - reproduced) <= allowed, allowed


def compare_numbers(reported: dict, reproduced: dict, tol: dict[str, float]) -> list[Difference]:
    """Compare every number of two ``{clean, results}`` sections; a cell or value present on one side
    only is a mismatch."""
    out = []
    for k in sorted(set(reported["clean"]) | set(reproduced["clean"])):
        a, b = reported["clean"].get(k), reproduced["clean"].get(k)
        if k == "n_images":
            out.append(Difference(f"clean.{k}", a, b, 0.0, a == b))
        elif a is None or b is None:
            out.append(Difference(f"clean.{k}", a, b, math.inf, False))
        else:
            ok, allowed = within(a, b, tol)
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
            if k not in va or k not in vb:
                out.append(Difference(f"{label}: {k}", va.get(k), vb.get(k), math.inf, False))
            else:
                ok, allowed = within(va[k], vb[k], tol)
                out.append(Difference(f"{label}: {k}", va[k], vb[k], allowed, ok))
        fa, fb = rep[cell].get("feature_extractor"), new[cell].get("feature_extractor")
        if fa != fb:  # numbers computed in different feature spaces are not comparable at all
            out.append(Difference(f"{label}: feature_extractor", fa, fb, math.inf, False))
    return out


def verify_entry(entry_path: str | Path, checkpoint: str | None = None, device: str = "cpu",
                 work_dir: str | None = None, write: bool = False, registry=None,
                 repo_root: str | Path | None = None, data_root: str | None = None) -> VerifyReport:
    """Re-run the entry's protocol on its checkpoint and compare every number with the protocol's
    tolerances. With ``write``, store the maintainers' numbers under ``reproduced`` and set
    ``unreliable`` when they do not match."""
    from latentbench.benchmark import BenchmarkRequest, evaluate
    from latentbench.registry import get_registry

    registry = registry or get_registry()
    p = Path(entry_path)
    if not p.exists():
        raise LatentBenchError(f"entry {p} not found")
    entry = json.loads(p.read_text())
    errs = schema_errors(entry, load_schema())
    if errs:
        raise LatentBenchError(f"{p} is not a valid entry, fix it first: " + "; ".join(errs[:5]))
    proto = registry.protocol(entry["protocol"]["name"], path=f"{p}:protocol.name")
    root = Path(repo_root) if repo_root else p.resolve().parent.parent.parent
    ck = Path(checkpoint) if checkpoint else (root / entry["checkpoint"]["path"] if entry["checkpoint"]["path"] else None)
    if ck is None or not (ck / WEIGHTS_FILE).exists():
        raise LatentBenchError(f"checkpoint of {p} not found at {ck}; rebuild it with `{entry['checkpoint']['regenerate']}` "
                               f"or pass --checkpoint DIR")
    sha = sha256_file(ck / WEIGHTS_FILE)
    if sha != entry["checkpoint"]["sha256"]:
        raise LatentBenchError(f"checkpoint {ck} has sha256 {sha} but {p} was computed on {entry['checkpoint']['sha256']}: "
                               f"these are different weights, verification would be meaningless")
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="latentbench-verify-")
        work_dir = tmp.name
    try:
        start = time.perf_counter()
        fresh = evaluate(BenchmarkRequest(protocol=proto.name, checkpoint=str(ck), name=entry["name"], device=device,
                                          work_dir=work_dir, data_root=data_root), registry, repo_root=root)
        seconds = time.perf_counter() - start
    finally:
        if tmp is not None:
            tmp.cleanup()
    tol = dict(proto.tolerances)
    diffs = compare_numbers(entry["reported"], fresh["reported"], tol)
    report = VerifyReport(entry["name"], proto.name, tol, diffs, seconds)
    if write:
        entry["reproduced"] = {"status": "reproduced" if report.ok else "mismatch",
                               "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tolerances": tol,
                               "clean": fresh["reported"]["clean"], "results": fresh["reported"]["results"],
                               "differences": [d.to_json() for d in report.mismatches],
                               "provenance": fresh["provenance"]}
        entry["unreliable"] = not report.ok
        p.write_text(json.dumps(entry, indent=1) + "\n")
    return report
