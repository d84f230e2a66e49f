"""Manoj's 2D-Grid task: a mixture of (2n+1)^2 spherical 2-d Gaussians with means (2i, 2j),
-n <= i, j <= n, and variance 0.0025 (Manoj footnote 5). Labels are the mode index."""

from __future__ import annotations

from typing import Optional

import torch

from latentbench.data import Dataset, Split
from latentbench.errors import ConfigError
from latentbench.seeding import component_generator


def grid_means(n: int) -> torch.Tensor:
    r = torch.arange(-n, n + 1, dtype=torch.float32) * 2.0
    gi, gj = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([gi.reshape(-1), gj.reshape(-1)], dim=1)


def nearest_mode(points: torch.Tensor, n: int) -> torch.Tensor:
    """Manoj's classifier c for the grid: the index of the nearest mean."""
    return torch.cdist(points.reshape(points.shape[0], -1)[:, :2].float(), grid_means(n).to(points.device)).argmin(1)


class Grid2D(Dataset):
    name = "grid2d"
    native_shape = (2,)
    source = "Manoj §3 / footnote 5 (Lin et al. 2017; Srivastava et al. 2017)"
    #: ``modes``: draw data from only this many of the (2n+1)^2 modes (chosen from ``seed``), so that
    #: generators trained on it cover a known number of modes (Manoj Fig. 3.1); None = all modes
    DEFAULTS = {"n": 2, "variance": 0.0025, "train_size": 25000, "test_size": 5000, "seed": 0, "modes": None}
    option_types = {"n": int, "variance": float, "train_size": int, "test_size": int, "seed": int, "modes": Optional[int]}

    def check_config(self, path: str = "dataset") -> None:
        super().check_config(path)
        o = {**self.DEFAULTS, **self.config.options}
        rules = {"n": (0, 1000), "train_size": (1, 10**8), "test_size": (1, 10**8), "seed": (0, 2**63 - 1)}
        if o["modes"] is not None:
            rules["modes"] = (1, (2 * int(o["n"]) + 1) ** 2)
        for key, (lo, hi) in rules.items():
            if not lo <= o[key] <= hi:
                raise ConfigError(f"{path}.options.{key}", f"must be from {lo} to {hi}, got {o[key]}",
                                  f"leave it out for the default ({self.DEFAULTS[key]})")
        if not o["variance"] > 0:
            raise ConfigError(f"{path}.options.variance", f"must be > 0, got {o['variance']}",
                              f"leave it out for the default ({self.DEFAULTS['variance']})")

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        return int({**self.DEFAULTS, **self.config.options}[f"{split}_size"])

    @property
    def n(self) -> int:
        return int(self.config.options.get("n", self.DEFAULTS["n"]))

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return (2 * self.n + 1) ** 2

    def _load(self, split: str) -> Split:
        o = {**self.DEFAULTS, **self.config.options}
        size = int(o[f"{split}_size"])
        g = component_generator(int(o["seed"]), "grid2d", split)
        means = grid_means(int(o["n"]))
        modes = torch.arange(len(means))
        if o["modes"] is not None:
            pick = component_generator(int(o["seed"]), "grid2d", "modes")
            modes = torch.randperm(len(means), generator=pick)[: int(o["modes"])].sort().values
        y = modes[torch.randint(len(modes), (size,), generator=g)]
        x = means[y] + torch.randn(size, 2, generator=g) * float(o["variance"]) ** 0.5
        return Split(x, y)
