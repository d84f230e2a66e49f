"""Tiny hand-made per-seed results for checking that each experiment's verdicts are recomputed from
what results.json stores (no training)."""

import numpy as np

SEEDS = 3


def noisy(value, images=8, scale=1e-3, seed=0):
    """(seeds, images) scores around ``value`` (a scalar or a per-seed list) with small fixed noise."""
    rng = np.random.default_rng(seed)
    base = np.broadcast_to(np.asarray(value, dtype=float).reshape(-1, 1), (SEEDS, images))
    return (base + rng.normal(0, scale, (SEEDS, images))).tolist()


def const(value, images=8):
    return np.full((SEEDS, images), float(value)).tolist()
