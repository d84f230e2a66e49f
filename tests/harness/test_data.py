"""The dataset contract: resizing and deterministic subsets."""

from __future__ import annotations

import torch

from latentbench.data import Split, resize


def test_resize_keeps_range_and_constant_images():
    c = torch.full((2, 1, 28, 28), 0.3)
    assert torch.allclose(resize(c, 32), c.new_full((2, 1, 32, 32), 0.3), atol=1e-6)
    r = resize(torch.rand(2, 3, 28, 28), 32)
    assert r.min() >= 0 and r.max() <= 1


def test_subset_is_deterministic_and_seed_dependent():
    s = Split(torch.arange(100).float().view(100, 1), torch.arange(100))
    a, b, c = s.subset(10, 0), s.subset(10, 0), s.subset(10, 1)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y) and len(set(a.y.tolist())) == 10
