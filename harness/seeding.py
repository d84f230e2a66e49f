"""One master seed; every component gets its own generator derived from the seed and its name."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, *names: object) -> int:
    h = hashlib.sha256(("/".join([str(seed), *map(str, names)])).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def component_generator(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded from (seed, names): independent of other components' draws."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *names))
    return g


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (for code that draws from them, e.g. reparameterisation in training)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
