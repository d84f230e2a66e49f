"""Summaries shared by the metrics: mean/std/histogram of per-sample values, trial statistics."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def as_numpy(values) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def describe(prefix: str, values, bins: int = 0) -> tuple[dict[str, float], dict]:
    """``{prefix}_mean``/``_std`` (population std over samples) and, if ``bins``, histogram counts/edges.

    Returns (values, info) where info holds the histogram (lists, JSON-ready).
    """
    v = as_numpy(values).reshape(-1)
    if v.size == 0:
        raise ValueError(f"no values to summarise for '{prefix}'")
    out = {f"{prefix}_mean": float(v.mean()), f"{prefix}_std": float(v.std())}
    info = {}
    if bins:
        finite = v[np.isfinite(v)]
        counts, edges = np.histogram(finite, bins=bins)
        info[f"{prefix}_histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return out, info
