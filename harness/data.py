"""Dataset interface and helpers: splits as tensors in [0, 1], NCHW, deterministic subsets.

Everything a run will load is checked before any work starts: :meth:`Dataset.check_config`
(image size, options), :meth:`Dataset.check_split` (files present and consistent, labels in range,
number of examples) and :func:`data_memory` (an estimate of the bytes the loaded splits take).
:meth:`Dataset.load_subset` draws the subset first and loads (and resizes) only those examples.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench.errors import ConfigError, LatentBenchError
from latentbench.seeding import component_generator


class DatasetError(LatentBenchError):
    """A dataset's files are missing, unreadable or inconsistent, or its data is out of range."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} -- {fix}")


def subset_indices(length: int, n: int | None, seed: int, name: str = "subset") -> Optional[Tensor]:
    """Sorted indices of ``n`` of ``length`` examples drawn without replacement from (seed, name);
    None when ``n`` covers the whole split."""
    if n is None or n >= length:
        return None
    g = component_generator(seed, "subset", name)
    return torch.randperm(length, generator=g)[:n].sort().values


@dataclass
class Split:
    """One split of a dataset: images (N, C, H, W) float32 in [0, 1] and integer labels (N,)."""

    x: Tensor
    y: Optional[Tensor]

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, n: int | None, seed: int, name: str = "subset") -> "Split":
        """A deterministic subset of ``n`` examples drawn without replacement from (seed, name)."""
        idx = subset_indices(len(self), n, seed, name)
        return self if idx is None else self.rows(idx)

    def rows(self, idx: Tensor) -> "Split":
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
    """Base of dataset plugins: ``load(split)`` returns a :class:`Split`; labels where they exist.

    A plugin implements ``_load(split)``; it may also implement ``_load_rows(split, indices)`` (load
    only some examples) and ``check_split(split)`` (the split's size without loading it), which make
    :meth:`load_subset` load only the examples a run uses and let validation check sizes up front.
    """

    name: ClassVar[str] = ""
    num_classes: ClassVar[Optional[int]] = None
    #: shape before any resize
    native_shape: ClassVar[tuple[int, ...]] = ()
    source: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: smallest and largest ``image_size`` (the conv backbone needs at least 8x8)
    image_size_range: ClassVar[tuple[int, int]] = (8, 256)
    #: the ``options`` the dataset reads, with their types (as in a config dataclass); None: not
    #: declared, so not checked
    option_types: ClassVar[Optional[dict[str, Any]]] = None

    def __init__(self, config: DatasetConfig | None = None):
        self.config = config or DatasetConfig()

    def shape(self) -> tuple[int, ...]:
        if self.config.image_size and len(self.native_shape) == 3:
            return (self.native_shape[0], self.config.image_size, self.config.image_size)
        return tuple(self.native_shape)

    # -- checks before any work --------------------------------------------------------------------
    def check_config(self, path: str = "dataset") -> None:
        """Raise ConfigError for an image size the dataset cannot give or an option it does not take."""
        size = self.config.image_size
        if size is not None:
            lo, hi = self.image_size_range
            if len(self.native_shape) != 3:
                raise ConfigError(f"{path}.image_size", f"dataset '{self.name}' has no images (its examples have shape "
                                  f"{tuple(self.native_shape)})", "remove image_size")
            if not lo <= size <= hi:
                raise ConfigError(f"{path}.image_size", f"{size} is outside the sizes dataset '{self.name}' supports "
                                  f"({lo}..{hi}; native {self.native_shape[-1]})",
                                  f"use an image_size from {lo} to {hi}, or leave it out for the native size")
        if self.option_types is not None:
            self._check_options(f"{path}.options")

    def _check_options(self, path: str) -> None:
        from latentbench.errors import suggest
        from latentbench.typed_config import check_type

        for key, value in self.config.options.items():
            if key not in self.option_types:
                close = suggest(key, self.option_types)
                known = ", ".join(sorted(self.option_types)) or "(none)"
                raise ConfigError(f"{path}.{key}", f"dataset '{self.name}' has no option '{key}'",
                                  f"did you mean {', '.join(close)}?" if close else f"its options: {known}")
            check_type(value, self.option_types[key], f"{path}.{key}")

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        """Check a split's files (present, readable, consistent, labels in range) without loading its
        images and return its number of examples; None when that is not known before loading.
        ``download=False``: files a load would have to download count as missing (raise)."""
        return None

    # -- loading -------------------------------------------------------------------------------------
    def _load(self, split: str) -> Split:
        raise NotImplementedError

    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        """The examples ``indices`` of a split (all for None), before any resize."""
        s = self._load(split)
        return s if indices is None else s.rows(indices)

    def load(self, split: str, indices: Optional[Tensor] = None) -> Split:
        """A split (only the examples ``indices``, when given), resized to ``image_size``; labels checked
        against ``num_classes``."""
        if split not in self.splits:
            raise LatentBenchError(f"dataset '{self.name}' has no split '{split}': use one of {', '.join(self.splits)}")
        s = self._load_rows(split, indices)
        self._check_labels(s, split)
        # resizing is per image, so resizing only the chosen rows gives the same values as resizing all
        if self.config.image_size and s.x.dim() == 4 and s.x.shape[-1] != self.config.image_size:
            s = Split(resize(s.x, self.config.image_size), s.y)
        return s

    def load_subset(self, split: str, n: Optional[int], seed: int, name: str) -> Split:
        """``load(split).subset(n, seed, name)``, the same examples bit for bit, but when the split's size
        is known up front only those ``n`` examples are read and resized. ``n`` larger than the split
        is an error (a subset never silently shrinks)."""
        size = self.check_split(split)
        if size is None:
            s = self.load(split)
            _check_subset_size(n, len(s), self.name, split)
            return s.subset(n, seed, name)
        _check_subset_size(n, size, self.name, split)
        return self.load(split, subset_indices(size, n, seed, name))

    def _check_labels(self, s: Split, split: str) -> None:
        if not isinstance(s.y, Tensor):
            return
        if len(s.y) != len(s.x):
            raise DatasetError(f"dataset '{self.name}' ({split}) has {len(s.x)} images but {len(s.y)} labels",
                               "use matching image and label files")
        if self.num_classes is not None and len(s.y):
            check_label_range(int(s.y.min()), int(s.y.max()), self.num_classes, f"dataset '{self.name}' ({split})")


def check_label_range(lo: int, hi: int, num_classes: int, what: str) -> None:
    if lo < 0 or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        raise DatasetError(f"{what} has label {bad}, outside the dataset's {num_classes} classes (0..{num_classes - 1})",
                           "use the label file that belongs to this dataset")


def _check_subset_size(n: Optional[int], size: int, dataset: str, split: str) -> None:
    if n is not None and n > size:
        raise DatasetError(f"a subset of {n} examples was asked of dataset '{dataset}' ({split}), which has {size}",
                           f"ask for at most {size} (or leave the subset size out for the whole split)")


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize (antialiased when shrinking), clamped back into [0, 1]."""
    # clamped in place: the interpolation's output is a fresh tensor, and a copy would double the peak
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1]).clamp_(0, 1)


# -- memory ---------------------------------------------------------------------------------------
def available_memory() -> Optional[int]:
    """Bytes this machine can still give a process: MemAvailable from /proc/meminfo, else the physical
    memory; None when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def data_memory(n_examples: int, shape: tuple[int, ...]) -> int:
    """Bytes of ``n_examples`` float32 examples of ``shape``."""
    return n_examples * math.prod(shape) * 4


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
