"""MNIST-format datasets read from IDX files (never downloaded in tests)."""

from __future__ import annotations

from latentbench.data import Dataset, Split
from latentbench.plugins.datasets._idx import load_idx_dataset


class FashionMNIST(Dataset):
    name = "fashion-mnist"
    num_classes = 10
    native_shape = (1, 28, 28)
    source = "Zalando Fashion-MNIST IDX files (Debian package dataset-fashion-mnist)"

    def _load(self, split: str) -> Split:
        return load_idx_dataset(self.name, split, self.config.data_root, "FashionMNIST")


class MNIST(Dataset):
    name = "mnist"
    num_classes = 10
    native_shape = (1, 28, 28)
    source = "LeCun et al. MNIST IDX files"

    def _load(self, split: str) -> Split:
        return load_idx_dataset(self.name, split, self.config.data_root, "MNIST")
