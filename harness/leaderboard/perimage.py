"""Per-image records in an entry, compactly: what makes a claim checkable cheaply and exactly.

A metric's ``per_sample`` arrays (one value per evaluation image, e.g. the headline metric's clean
correctness, first breaking attack and worst fidelity per ε) are stored in the entry's result
record under ``per_image``: flags bit-packed, other arrays as little-endian bytes, each zlib-compressed
and base64-encoded. ``leaderboard verify`` decodes them, recomputes the aggregates from them
(exactly: the metric's ``aggregate_images``) and recomputes a random subset of images.

The evaluation data is pinned by ``data_digest``: sha256 of the images (float32) and labels (int64),
with their shapes, so a record's image index means the same image to the submitter and the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any, Mapping

import numpy as np

from latentbench.errors import LatentBenchError

ENCODING = "zlib+base64"
#: stored dtypes: "bits" (0/1 flags, bit-packed), or a numpy dtype kept exactly (little-endian)
DTYPES = ("bits", "int8", "int16", "int32", "float32", "float64")


def data_digest(x, y) -> str:
    """sha256 of the evaluation images (as float32) and labels (as int64), shapes included."""
    xs = np.ascontiguousarray(np.asarray(_numpy(x), dtype="<f4"))
    h = hashlib.sha256(f"x{list(xs.shape)}".encode())
    h.update(xs.tobytes())
    if y is not None:
        ys = np.ascontiguousarray(np.asarray(_numpy(y), dtype="<i8"))
        h.update(f"y{list(ys.shape)}".encode())
        h.update(ys.tobytes())
    return h.hexdigest()


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _dtype_of(a: np.ndarray) -> str:
    if a.dtype == bool or (a.dtype.kind in "iu" and a.size and set(np.unique(a).tolist()) <= {0, 1}
                           and a.dtype.itemsize == 1):
        return "bits"
    if a.dtype.kind == "f":
        return "float32" if a.dtype.itemsize <= 4 else "float64"
    if a.dtype.kind in "iu":
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        for name in ("int8", "int16", "int32"):
            info = np.iinfo(name)
            if info.min <= lo and hi <= info.max:
                return name
    raise LatentBenchError(f"per-image record of dtype {a.dtype} cannot be stored in an entry; "
                           f"return flags, integers or floats from the metric's per_sample")


def encode(per_sample: Mapping[str, Any]) -> dict[str, Any]:
    """``{"encoding", "n", "arrays": {key: {"dtype", "data"}}}`` of one-value-per-image arrays."""
    arrays, n = {}, None
    for key in sorted(per_sample):
        a = np.asarray(per_sample[key]).reshape(-1)
        if n is not None and len(a) != n:
            raise LatentBenchError(f"per-image record '{key}' has {len(a)} values, the others {n}")
        n = len(a)
        dtype = _dtype_of(a)
        if dtype == "bits":
            raw = np.packbits(a.astype(bool)).tobytes()
        else:
            raw = a.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
        arrays[key] = {"dtype": dtype, "data": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}
    return {"encoding": ENCODING, "n": n or 0, "arrays": arrays}


def decode(block: Mapping[str, Any], where: str = "per_image") -> dict[str, np.ndarray]:
    """The arrays of an ``encode`` block; a malformed block raises naming the field."""
    if block.get("encoding") != ENCODING:
        raise LatentBenchError(f"{where}.encoding: '{block.get('encoding')}' is not '{ENCODING}'; "
                               f"write entries with `latentbench benchmark`")
    n = block.get("n")
    out = {}
    for key, arr in (block.get("arrays") or {}).items():
        dtype = arr.get("dtype") if isinstance(arr, Mapping) else None
        if dtype not in DTYPES:
            raise LatentBenchError(f"{where}.arrays.{key}.dtype: '{dtype}' is not one of {', '.join(DTYPES)}")
        try:
            raw = zlib.decompress(base64.b64decode(arr.get("data", ""), validate=True))
        except (ValueError, zlib.error) as e:
            raise LatentBenchError(f"{where}.arrays.{key}.data: not zlib-compressed base64 ({e}); "
                                   f"write entries with `latentbench benchmark`") from None
        if dtype == "bits":
            a = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[: n if isinstance(n, int) else 0].astype(np.int8)
            ok = len(raw) == (n + 7) // 8 if isinstance(n, int) else False
        else:
            dt = np.dtype(dtype).newbyteorder("<")
            ok = len(raw) % dt.itemsize == 0 and len(raw) // dt.itemsize == n
            a = np.frombuffer(raw[: len(raw) - len(raw) % dt.itemsize], dtype=dt).astype(dtype)
        if not ok:
            raise LatentBenchError(f"{where}.arrays.{key}: does not hold {n} values; the record is truncated or "
                                   f"was edited by hand")
        out[key] = a
    return out
