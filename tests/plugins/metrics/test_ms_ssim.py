"""Small-image MS-SSIM vs pytorch-msssim's own function and a direct computation written here."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim as package_ms_ssim

from latentbench.errors import LatentBenchError
from latentbench.plugins.metrics._msssim import STANDARD_WEIGHTS, MSSSIMSetup, ms_ssim_pairs, setup_for_size


def direct_ms_ssim(x, y, win, sigma, weights, data_range=1.0, k1=0.01, k2=0.03):
    """Textbook MS-SSIM (Wang et al. 2003): full 2-D Gaussian window, 'valid' convolution, per-scale mean cs,
    final-scale mean ssim, ReLU as pytorch-msssim, weighted product; per image (mean over channels)."""
    coords = torch.arange(win, dtype=torch.float64) - win // 2
    g1 = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g2 = torch.outer(g1, g1)
    g2 = g2 / g2.sum()
    C = x.shape[1]
    kern = g2.expand(C, 1, win, win)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    x, y = x.double(), y.double()
    vals = []
    for level, w in enumerate(weights):
        blur = lambda t: F.conv2d(t, kern, groups=C)  # noqa: E731
        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx ** 2
        syy = blur(y * y) - my ** 2
        sxy = blur(x * y) - mx * my
        cs = ((2 * sxy + c2) / (sxx + syy + c2)).mean(dim=(2, 3))
        if level < len(weights) - 1:
            vals.append(cs.clamp_min(0) ** w)
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        else:
            lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            s = (lum * (2 * sxy + c2) / (sxx + syy + c2)).mean(dim=(2, 3))
            vals.append(s.clamp_min(0) ** w)
    return torch.stack(vals).prod(0).mean(1)


def pair(shape, seed=0, noise=0.15):
    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 3, 1, 1)  # some structure
    other = (base + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return base, other


@pytest.mark.parametrize("size,win,scales", [(8, 3, 2), (28, 7, 3), (32, 7, 3), (64, 7, 4), (256, 11, 5)])
def test_setup_for_size(size, win, scales):
    s = setup_for_size(size, size)
    assert (s.win_size, s.scales) == (win, scales)
    if scales == 5:  # large images keep the package's defaults unchanged (they sum to 1.0001)
        assert s.weights == STANDARD_WEIGHTS and s.win_sigma == 1.5
    else:
        assert sum(s.weights) == pytest.approx(1.0)
        np.testing.assert_allclose(s.weights, np.array(STANDARD_WEIGHTS[:scales]) / sum(STANDARD_WEIGHTS[:scales]))
    d = s.to_dict()
    assert {"win_size", "win_sigma", "scales", "weights", "data_range"} <= set(d)


@pytest.mark.parametrize("size,channels", [(8, 1), (28, 1), (32, 3), (64, 3)])
def test_identity_gives_one_and_symmetry(size, channels):
    a, b = pair((4, channels, size, size))
    np.testing.assert_allclose(ms_ssim_pairs(a, a).numpy(), 1.0, rtol=1e-12)
    ab, ba = ms_ssim_pairs(a, b), ms_ssim_pairs(b, a)
    np.testing.assert_allclose(ab.numpy(), ba.numpy(), rtol=1e-12)
    assert bool((ab < 1).all()) and bool((ab > 0).all())


def test_64x64_auto_setup_matches_direct_computation():
    a, b = pair((3, 3, 64, 64), seed=1)
    s = setup_for_size(64, 64)
    ref = direct_ms_ssim(a, b, s.win_size, s.win_sigma, s.weights)
    # the package builds its window in float32 (_fspecial_gauss_1d), hence agreement to ~1e-6, not 1e-12
    np.testing.assert_allclose(ms_ssim_pairs(a, b, s).numpy(), ref.numpy(), rtol=1e-5)


def test_64x64_package_function_and_ours_agree_with_direct_computation():
    # the package accepts 64x64 only with (win - 1) * 16 < 64, i.e. a 3-tap window (5 standard weights)
    a, b = pair((3, 1, 64, 64), seed=2)
    pkg = package_ms_ssim(a, b, data_range=1.0, size_average=False, win_size=3, win_sigma=1.5)
    ours = ms_ssim_pairs(a, b, MSSSIMSetup(3, 1.5, STANDARD_WEIGHTS))
    ref = direct_ms_ssim(a, b, 3, 1.5, STANDARD_WEIGHTS)
    np.testing.assert_allclose(pkg.numpy(), ref.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.numpy(), pkg.numpy(), rtol=1e-12)


def test_package_refuses_small_images_and_we_do_not():
    a, b = pair((2, 1, 32, 32))
    with pytest.raises(AssertionError):
        package_ms_ssim(a, b, data_range=1.0)
    assert ms_ssim_pairs(a, b).shape == (2,)


def test_more_noise_lowers_ms_ssim():
    a, b1 = pair((8, 1, 32, 32), seed=3, noise=0.05)
    _, b2 = pair((8, 1, 32, 32), seed=3, noise=0.3)
    assert bool((ms_ssim_pairs(a, b1) > ms_ssim_pairs(a, b2)).all())


def test_bad_inputs():
    a = torch.rand(2, 1, 8, 8)
    with pytest.raises(LatentBenchError, match="same shape"):
        ms_ssim_pairs(a, torch.rand(2, 1, 8, 9))
    with pytest.raises(LatentBenchError, match="too large"):
        ms_ssim_pairs(a, a, MSSSIMSetup(7, 1.0, STANDARD_WEIGHTS))
    with pytest.raises(LatentBenchError, match="3x3"):
        setup_for_size(2, 2)
