"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset (no download)."""

from __future__ import annotations

import numpy as np
import torch

from latentbench.data import Dataset, Split
from latentbench.seeding import component_generator


class Digits(Dataset):
    name = "digits"
    num_classes = 10
    native_shape = (1, 8, 8)
    source = "scikit-learn load_digits (1,797 images, 16 grey levels scaled to [0, 1])"
    #: fixed split: the dataset has no official one
    TEST_FRACTION = 0.2
    SPLIT_SEED = 0

    def _load(self, split: str) -> Split:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
        y = torch.from_numpy(d.target.astype(np.int64))
        perm = torch.randperm(len(y), generator=component_generator(self.SPLIT_SEED, "digits-split"))
        n_test = int(round(len(y) * self.TEST_FRACTION))
        idx = perm[:n_test] if split == "test" else perm[n_test:]
        idx = idx.sort().values
        return Split(x[idx], y[idx])
