"""MNIST-format datasets read from IDX files (never downloaded in tests)."""

from __future__ import annotations

from typing import ClassVar, Optional

from torch import Tensor

from latentbench.data import Dataset, Split
from latentbench.plugins.datasets._idx import check_idx_split, load_idx_dataset


class _IdxDataset(Dataset):
    """A dataset of IDX files: checked from the headers and labels, subsets loaded image by image."""

    num_classes = 10
    native_shape = (1, 28, 28)
    option_types = {}
    #: torchvision.datasets class that can download the files
    torchvision_cls: ClassVar[str] = ""

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        return check_idx_split(self.name, split, self.config.data_root, self.torchvision_cls, self.num_classes,
                               self.native_shape[1:], download=download)

    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        return load_idx_dataset(self.name, split, self.config.data_root, self.torchvision_cls, indices,
                                self.native_shape[1:])

    def _load(self, split: str) -> Split:
        return self._load_rows(split, None)


class FashionMNIST(_IdxDataset):
    name = "fashion-mnist"
    source = "Zalando Fashion-MNIST IDX files (Debian package dataset-fashion-mnist)"
    torchvision_cls = "FashionMNIST"


class MNIST(_IdxDataset):
    name = "mnist"
    source = "LeCun et al. MNIST IDX files"
    torchvision_cls = "MNIST"
