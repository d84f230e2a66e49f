"""MS-SSIM at the sizes the protocols use (8, 28, 32 px) against an implementation written here in
numpy/scipy from the definition (Wang, Simoncelli & Bovik 2003, "Multiscale structural similarity for
image quality assessment"), with the small-image configuration docs/methods.md §3 ``ms_ssim`` states:
Gaussian window (3 taps, sigma 0.5 below 14 px; 7 taps, sigma 1.0 from 14 px), 'valid' filtering,
K = (0.01, 0.03), data range 1, contrast-structure terms at every scale but the last, full SSIM at
the last, ReLU on each term, 2x2 average pooling (zero padding of odd sides, counted in the mean),
the first L standard weights renormalised (8 px: L = 2; 28 and 32 px: L = 3). Nothing from
pytorch-msssim or latentbench is used by the reference. Where pytorch-msssim's size limits allow
(its single-scale ``ssim``, which has no minimum size beyond the window), it is compared too."""

import numpy as np
import pytest
import torch
from pytorch_msssim import ssim as package_ssim
from scipy.ndimage import correlate1d

from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.metrics._msssim import MSSSIMSetup, ms_ssim_pairs

STANDARD = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
#: size -> (window taps, sigma, scales), as documented for small images (27 -> 14 -> 7 and 31 -> 16 -> 8
#: keep three scales at least one 7-tap window wide)
CONFIG = {8: (3, 0.5, 2), 27: (7, 1.0, 3), 28: (7, 1.0, 3), 31: (7, 1.0, 3), 32: (7, 1.0, 3)}


def gauss_1d(taps, sigma):
    c = np.arange(taps) - taps // 2
    g = np.exp(-c ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def blur_valid(img, g):
    """Separable 'valid' Gaussian filtering of a 2-D image (scipy correlate, then crop the border)."""
    h = len(g) // 2
    out = correlate1d(correlate1d(img, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return out[h:img.shape[0] - h, h:img.shape[1] - h]


def pool2(img):
    """2x2 average pooling; odd sides padded with one zero row/column on each side, as avg_pool2d(padding=1)."""
    if img.shape[0] % 2 or img.shape[1] % 2:
        img = np.pad(img, ((img.shape[0] % 2,) * 2, (img.shape[1] % 2,) * 2))
        img = img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2]
    return img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2).mean(axis=(1, 3))


def ssim_terms(a, b, g, c1=0.01 ** 2, c2=0.03 ** 2):
    ma, mb = blur_valid(a, g), blur_valid(b, g)
    saa = blur_valid(a * a, g) - ma ** 2
    sbb = blur_valid(b * b, g) - mb ** 2
    sab = blur_valid(a * b, g) - ma * mb
    cs = (2 * sab + c2) / (saa + sbb + c2)
    lum = (2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1)
    return float((lum * cs).mean()), float(cs.mean())


def reference_ms_ssim(a, b):
    """MS-SSIM of two single-channel images (H, W) in [0, 1], from the definition."""
    taps, sigma, scales = CONFIG[min(a.shape)]
    g = gauss_1d(taps, sigma)
    w = STANDARD[:scales] / STANDARD[:scales].sum()
    value = 1.0
    for j in range(scales):
        s, cs = ssim_terms(a, b, g)
        if j < scales - 1:
            value *= max(cs, 0.0) ** w[j]
            a, b = pool2(a), pool2(b)
        else:
            value *= max(s, 0.0) ** w[j]
    return value


def image_pairs(size, n=6, seed=0):
    """Digits scaled to size x size (bilinear), paired with noisy / shifted / blurred versions of themselves."""
    x = Digits().load("test").x[:n].double()
    if size != 8:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    y = x.clone()
    y[0::3] = (x[0::3] + 0.3 * torch.randn(x[0::3].shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[1::3] = torch.roll(x[1::3], shifts=max(1, size // 8), dims=-1)
    y[2::3] = torch.nn.functional.avg_pool2d(x[2::3], 3, 1, 1)
    return x, y


@pytest.mark.parametrize("size", [8, 28, 32])
def test_ms_ssim_matches_the_definition(size):
    x, y = image_pairs(size)
    ref = np.array([reference_ms_ssim(x[i, 0].numpy(), y[i, 0].numpy()) for i in range(len(x))])
    ours = ms_ssim_pairs(x, y).numpy()
    # pytorch-msssim builds its window in float32 (weights rounded at ~6e-8): agreement to ~1e-6, not 1e-12
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    assert ref.min() < 0.9 and np.ptp(ref) > 0.05  # the pairs are not trivially similar or all alike


@pytest.mark.parametrize("size", [28, 32])
def test_odd_side_pooling_matches_the_definition(size):
    # 27 and 31 px: the first pooling pads an odd side (27 -> 14, 31 -> 16)
    x, y = image_pairs(size)
    x, y = x[..., :size - 1, :size - 1], y[..., :size - 1, :size - 1]
    ref = np.array([reference_ms_ssim(x[i, 0].numpy(), y[i, 0].numpy()) for i in range(len(x))])
    np.testing.assert_allclose(ms_ssim_pairs(x, y).numpy(), ref, rtol=1e-5)


@pytest.mark.parametrize("size", [8, 28, 32])
def test_single_scale_matches_pytorch_msssim_ssim(size):
    # pytorch-msssim's ms_ssim refuses images below (win - 1) * 16 px; its single-scale ssim does not,
    # so the first scale (one weight) is compared with the package and with the reference
    taps, sigma, _ = CONFIG[size]
    x, y = image_pairs(size, seed=1)
    ours = ms_ssim_pairs(x, y, MSSSIMSetup(taps, sigma, (1.0,))).numpy()
    pkg = package_ssim(x, y, data_range=1.0, size_average=False, win_size=taps, win_sigma=sigma).numpy()
    ref = np.array([max(ssim_terms(x[i, 0].numpy(), y[i, 0].numpy(), gauss_1d(taps, sigma))[0], 0.0)
                    for i in range(len(x))])
    np.testing.assert_allclose(ours, pkg, rtol=1e-12)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)  # float32 window, as above


def test_reference_is_not_vacuous():
    # the reference itself: identical images give exactly 1, and its scale weights sum to 1
    a = image_pairs(32)[0][0, 0].numpy()
    assert reference_ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    b = np.clip(a + 0.3, 0, 1)
    assert reference_ms_ssim(a, b) < 0.99
