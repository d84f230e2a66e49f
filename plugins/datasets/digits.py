"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset (no download)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from latentbench.data import Dataset, Split
from latentbench.errors import ConfigError
from latentbench.seeding import component_generator


class Digits(Dataset):
    name = "digits"
    num_classes = 10
    native_shape = (1, 8, 8)
    source = "scikit-learn load_digits (1,797 images, 16 grey levels scaled to [0, 1])"
    #: fixed split: the dataset has no official one. ``options: {test_fraction: f}`` holds out
    #: another fraction (digits-v2 holds out half, 899 images, to narrow its intervals); the
    #: permutation is the same, so the 0.2 test split is a subset of every larger one.
    TEST_FRACTION = 0.2
    SPLIT_SEED = 0
    #: images in scikit-learn's copy of the dataset
    N_IMAGES = 1797
    option_types = {"test_fraction": float}

    def check_config(self, path: str = "dataset") -> None:
        super().check_config(path)
        try:
            n_test = self._n_test()
        except ValueError as e:
            raise ConfigError(f"{path}.options.test_fraction", str(e), "use a fraction such as 0.2 or 0.5") from None
        if not 0 < n_test < self.N_IMAGES:
            raise ConfigError(f"{path}.options.test_fraction", f"holds out {n_test} of {self.N_IMAGES} images, leaving a "
                              "split empty", "use a fraction such as 0.2 or 0.5")

    def _test_fraction(self) -> float:
        f = float(self.config.options.get("test_fraction", self.TEST_FRACTION))
        if not 0.0 < f < 1.0:
            raise ValueError(f"digits option test_fraction must be in (0, 1), got {f}")
        return f

    def _n_test(self) -> int:
        return int(round(self.N_IMAGES * self._test_fraction()))

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        n_test = self._n_test()
        return n_test if split == "test" else self.N_IMAGES - n_test

    def _load(self, split: str) -> Split:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
        y = torch.from_numpy(d.target.astype(np.int64))
        perm = torch.randperm(len(y), generator=component_generator(self.SPLIT_SEED, "digits-split"))
        n_test = int(round(len(y) * self._test_fraction()))  # len(y) == N_IMAGES
        idx = perm[:n_test] if split == "test" else perm[n_test:]
        idx = idx.sort().values
        return Split(x[idx], y[idx])
