"""MS-SSIM that works on 8x8 to 64x64 images, built from pytorch-msssim's own pieces (docs/methods.md §5).

``pytorch_msssim.ms_ssim`` asserts min(H, W) > (win_size - 1) * 2^4 whatever weights are passed, so
with its defaults (5 scales, 11-tap window, sigma 1.5) it refuses anything below 161 pixels. We
run the same algorithm (the package's ``_ssim`` per scale, ReLU on the contrast-structure terms,
2x2 average pooling with odd-size padding between scales, weighted product) with a configuration
chosen from the image size:

- side >= 161: the package defaults (11-tap window, sigma 1.5, 5 scales, Wang et al. weights);
- 14 <= side < 161: a 7-tap window with sigma 1.0 (the default's sigma / width ratio), and as many
  scales (<= 5) as keep the coarsest image at least one window wide;
- side < 14: a 3-tap window with sigma 0.5, same rule (8x8 gives 2 scales).

Weights are the first L of the standard five (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) renormalised
to sum 1 (at >= 161 pixels the five weights are used unchanged, as the package does; they sum
to 1.0001). data_range is 1 (images in [0, 1]), K = (0.01, 0.03). The configuration is returned as a
dict and stored in every result so numbers from different configurations are never mixed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim
from torch import Tensor

from latentbench.errors import LatentBenchError

STANDARD_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class MSSSIMSetup:
    win_size: int
    win_sigma: float
    weights: tuple[float, ...]
    data_range: float = 1.0
    K: tuple[float, float] = (0.01, 0.03)

    @property
    def scales(self) -> int:
        return len(self.weights)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["weights"] = list(self.weights)
        d["K"] = list(self.K)
        d["scales"] = self.scales
        return d


def _coarsest_side(side: int, scales: int) -> int:
    for _ in range(scales - 1):
        side = (side + side % 2) // 2  # avg_pool2d(kernel 2, padding side % 2)
    return side


def setup_for_size(height: int, width: int, data_range: float = 1.0) -> MSSSIMSetup:
    """The small-image configuration for an H x W image (see the module docstring)."""
    side = min(height, width)
    if side < 3:
        raise LatentBenchError(f"MS-SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    if side > (11 - 1) * 2 ** 4:
        return MSSSIMSetup(11, 1.5, STANDARD_WEIGHTS, data_range)
    win, sigma = (7, 1.0) if side >= 14 else (3, 0.5)
    scales = max(L for L in range(1, 6) if _coarsest_side(side, L) >= win)
    w = STANDARD_WEIGHTS[:scales]
    total = sum(w)
    return MSSSIMSetup(win, sigma, tuple(v / total for v in w), data_range)


def ms_ssim_pairs(x: Tensor, y: Tensor, setup: MSSSIMSetup | None = None) -> Tensor:
    """Per-pair MS-SSIM (B,) of image batches (B, C, H, W) in [0, data_range]."""
    if x.shape != y.shape or x.dim() != 4:
        raise LatentBenchError(f"MS-SSIM needs two image batches of the same shape (B, C, H, W); got {tuple(x.shape)} "
                               f"and {tuple(y.shape)}")
    setup = setup or setup_for_size(x.shape[-2], x.shape[-1])
    if _coarsest_side(min(x.shape[-2:]), setup.scales) < setup.win_size:
        raise LatentBenchError(f"MS-SSIM configuration {setup.to_dict()} is too large for {x.shape[-2]}x{x.shape[-1]} "
                               f"images: use setup_for_size(H, W)")
    win = _fspecial_gauss_1d(setup.win_size, setup.win_sigma).repeat([x.shape[1], 1, 1, 1]).to(x.device, x.dtype)
    weights = x.new_tensor(setup.weights)
    terms = []
    for i in range(setup.scales):
        ssim_pc, cs = _ssim(x, y, data_range=setup.data_range, win=win, size_average=False, K=setup.K)
        if i < setup.scales - 1:
            terms.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(ssim_pc))
    stacked = torch.stack(terms, 0)  # (scales, B, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), 0).mean(1)
