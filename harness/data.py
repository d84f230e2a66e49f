"""Dataset interface and helpers: splits as tensors in [0, 1], NCHW, deterministic subsets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.seeding import component_generator


@dataclass
class Split:
    """One split of a dataset: images (N, C, H, W) float32 in [0, 1] and integer labels (N,)."""

    x: Tensor
    y: Optional[Tensor]

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, n: int | None, seed: int, name: str = "subset") -> "Split":
        """A deterministic subset of ``n`` examples drawn without replacement from (seed, name)."""
        if n is None or n >= len(self):
            return self
        g = component_generator(seed, "subset", name)
        idx = torch.randperm(len(self), generator=g)[:n].sort().values
        return Split(self.x[idx], None if self.y is None else self.y[idx])

    def to(self, device) -> "Split":
        return Split(self.x.to(device), None if self.y is None else self.y.to(device))


@dataclass
class DatasetConfig:
    """How a dataset is loaded: optional resize to ``image_size`` and a data root to search first."""

    image_size: Optional[int] = None
    data_root: Optional[str] = None
    #: dataset-specific options (e.g. grid2d's ``n`` and ``std``)
    options: dict = dataclasses.field(default_factory=dict)


class Dataset:
    """Base of dataset plugins: ``load(split)`` returns a :class:`Split`; labels where they exist."""

    name: ClassVar[str] = ""
    num_classes: ClassVar[Optional[int]] = None
    #: shape before any resize
    native_shape: ClassVar[tuple[int, ...]] = ()
    source: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(self, config: DatasetConfig | None = None):
        self.config = config or DatasetConfig()

    def shape(self) -> tuple[int, ...]:
        if self.config.image_size and len(self.native_shape) == 3:
            return (self.native_shape[0], self.config.image_size, self.config.image_size)
        return tuple(self.native_shape)

    def _load(self, split: str) -> Split:
        raise NotImplementedError

    def load(self, split: str) -> Split:
        if split not in self.splits:
            raise LatentBenchError(f"dataset '{self.name}' has no split '{split}': use one of {', '.join(self.splits)}")
        s = self._load(split)
        if self.config.image_size and s.x.dim() == 4 and s.x.shape[-1] != self.config.image_size:
            s = Split(resize(s.x, self.config.image_size), s.y)
        return s


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize (antialiased when shrinking), clamped back into [0, 1]."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1]).clamp(0, 1)
