"""CIFAR-10, SVHN and CelebA from local files through torchvision's readers (docs/datasets.md).

LatentBench never downloads these: torchvision's dataset classes are built with ``download=False``
on the files the user already has, so torchvision's own md5 checks still guard them (CIFAR-10's
batches are Python pickles: the md5 check is what keeps a tampered file from being unpickled). The
folder is ``data_root``, else the first of ``$LATENTBENCH_DATA/<name>``, ``/usr/share/datasets/<name>``
and ``~/.cache/latentbench/data`` that holds the files. Missing files are a one-line error naming
the expected paths and how to get them; files present but refused are reported as damaged.

- ``cifar10``: ``<root>/cifar-10-batches-py/`` (the extracted python archive), 3x32x32, 10 classes.
- ``svhn``: ``<root>/train_32x32.mat``, ``<root>/test_32x32.mat`` (format 2, cropped digits),
  3x32x32, 10 classes (torchvision maps label 10 to digit 0).
- ``celeba``: ``<root>/celeba/img_align_celeba/`` and the five annotation files, aligned 178x218
  faces resized (shorter side) and centre-cropped to ``image_size`` (default 64); the label is one
  binary attribute (option ``attribute``, default ``Smiling``); torchvision's ``train``/``test``
  partition.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import torch
from torch import Tensor

from latentbench.data import Dataset, DatasetConfig, DatasetError, Split
from latentbench.errors import ConfigError
from latentbench.plugins.datasets._idx import DOWNLOAD_ROOT
from latentbench.plugins.datasets.image_folder import DEFAULT_SIZE, load_image


class _LocalTorchvision(Dataset):
    """A torchvision dataset read from local files only; subclasses say which files and how to get them."""

    #: paths under the root that must exist, for every split
    expected: ClassVar[tuple[str, ...]] = ()
    #: how to get the files (the fix of the missing-files error)
    how_to_get: ClassVar[str] = ""

    def __init__(self, config: DatasetConfig | None = None):
        super().__init__(config)
        self._opened: dict[str, Any] = {}

    def _candidates(self) -> list[Path]:
        if self.config.data_root:  # an explicit folder is honoured: no fallback
            return [Path(os.path.expanduser(self.config.data_root))]
        roots = [Path(os.environ["LATENTBENCH_DATA"]) / self.name] if os.environ.get("LATENTBENCH_DATA") else []
        return roots + [Path("/usr/share/datasets") / self.name, Path(os.path.expanduser(DOWNLOAD_ROOT))]

    def _root(self) -> Path:
        roots = self._candidates()
        for r in roots:
            if all((r / p).exists() for p in self.expected):
                return r
        missing = [str(roots[0] / p) for p in self.expected if not (roots[0] / p).exists()]
        searched = ", ".join(str(r) for r in roots)
        raise DatasetError(f"dataset '{self.name}' not found (searched {searched}; missing e.g. {missing[0]})",
                           f"{self.how_to_get}, then pass --data-root ROOT (data_root in the config) so that "
                           f"ROOT/{self.expected[0]} exists; LatentBench never downloads it")

    def _open(self, split: str):
        """torchvision's dataset object of a split (cached); its refusal becomes a one-line DatasetError."""
        if split not in self._opened:
            root = self._root()
            try:
                self._opened[split] = self._torchvision(str(root), split)
            except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
                raise DatasetError(f"dataset '{self.name}': torchvision refused the files under {root} ({e}); they "
                                   "are present, so a file is damaged or not the published one (md5 mismatch)",
                                   f"replace them with intact copies: {self.how_to_get}") from None
        return self._opened[split]

    def _torchvision(self, root: str, split: str):
        raise NotImplementedError

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        return len(self._open(split))

    def _load(self, split: str) -> Split:
        return self._load_rows(split, None)


class _ArrayDataset(_LocalTorchvision):
    """Datasets torchvision holds in memory as uint8 arrays with integer labels."""

    num_classes = 10
    native_shape = (3, 32, 32)
    option_types = {}

    def _arrays(self, ds) -> tuple[np.ndarray, np.ndarray]:
        """(images N x 3 x H x W uint8, labels N)."""
        raise NotImplementedError

    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        x, y = self._arrays(self._open(split))
        if indices is not None:  # convert only the chosen images
            x, y = x[indices.numpy()], y[indices.numpy()]
        return Split(torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0),
                     torch.from_numpy(np.asarray(y, dtype=np.int64)))


class CIFAR10(_ArrayDataset):
    name = "cifar10"
    source = "CIFAR-10 python batches (Krizhevsky 2009), read by torchvision.datasets.CIFAR10 from local files"
    expected = ("cifar-10-batches-py/batches.meta", "cifar-10-batches-py/test_batch",
                *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)))
    how_to_get = ("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into a folder ROOT "
                  "(or run torchvision.datasets.CIFAR10(ROOT, download=True) once on a machine with network)")

    def _torchvision(self, root: str, split: str):
        from torchvision.datasets import CIFAR10 as TV

        return TV(root, train=split == "train", download=False)

    def _arrays(self, ds):
        return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets)


class SVHN(_ArrayDataset):
    name = "svhn"
    source = "SVHN cropped digits, format 2 (Netzer et al. 2011), read by torchvision.datasets.SVHN from local files"
    expected = ("train_32x32.mat", "test_32x32.mat")
    how_to_get = ("download http://ufldl.stanford.edu/housenumbers/train_32x32.mat and test_32x32.mat into a folder "
                  "ROOT (or run torchvision.datasets.SVHN(ROOT, split=..., download=True) once on a machine with network)")

    def _torchvision(self, root: str, split: str):
        from torchvision.datasets import SVHN as TV

        return TV(root, split=split, download=False)

    def _arrays(self, ds):
        return ds.data, ds.labels


class CelebA(_LocalTorchvision):
    name = "celeba"
    num_classes = 2
    source = "CelebA aligned faces (Liu et al. 2015), read by torchvision.datasets.CelebA from local files"
    option_types = {"attribute": str}
    DEFAULT_ATTRIBUTE = "Smiling"
    expected = ("celeba/img_align_celeba", "celeba/list_attr_celeba.txt", "celeba/identity_CelebA.txt",
                "celeba/list_bbox_celeba.txt", "celeba/list_landmarks_align_celeba.txt",
                "celeba/list_eval_partition.txt")
    how_to_get = ("get img_align_celeba.zip (extract it) and the five annotation .txt files from "
                  "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into ROOT/celeba/ (or run "
                  "torchvision.datasets.CelebA(ROOT, download=True) once on a machine with network)")

    def __init__(self, config: DatasetConfig | None = None):
        super().__init__(config)
        size = self.config.image_size or DEFAULT_SIZE
        self.native_shape = (3, size, size)  # read at the size asked for: the files are 178x218

    def _torchvision(self, root: str, split: str):
        from torchvision.datasets import CelebA as TV

        return TV(root, split=split, target_type="attr", download=False)

    def _attribute_column(self, ds) -> int:
        attr = str(self.config.options.get("attribute", self.DEFAULT_ATTRIBUTE))
        if attr not in ds.attr_names:
            raise ConfigError("dataset.options.attribute", f"CelebA has no attribute '{attr}'",
                              f"use one of {', '.join(n for n in ds.attr_names if n)}")
        return ds.attr_names.index(attr)

    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        ds = self._open(split)
        col = self._attribute_column(ds)
        rows = range(len(ds)) if indices is None else indices.tolist()
        folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
        size = self.native_shape[1]
        x = torch.stack([load_image(str(folder / ds.filename[i]), size) for i in rows]) if len(rows) \
            else torch.zeros((0, *self.native_shape))
        return Split(x, ds.attr[list(rows), col].to(torch.int64))
