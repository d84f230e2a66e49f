"""Spectral metrics: Gram-trick implementation vs a naive dense reference and vs the bare batched Jacobians.

Run with ``python -m pytest tests/benchmarks/test_bench_metrics.py --benchmark-only``. Ratios against
references timed in the same run are stored in ``benchmark.extra_info`` and printed.
"""

from __future__ import annotations

import resource

import pytest
import torch
from torch import nn
from torch.func import jacrev, vmap

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins._common.spectral import pullback_spectrum, von_neumann_entropy
from tests.benchmarks._versus import versus


class MLPEncoderVAE(Autoencoder):
    """Fashion-MNIST-sized stochastic MLP encoder (N-512-256 tanh + BatchNorm, latent 32), Khan & Storkey App. A style.

    The benchmarks use 1x32x32 inputs, the size at which fashion-mnist-32-v1 evaluates Fashion-MNIST.
    (At 28x28 the naive reference's N x N eigh is cheaper: the speed-up measured there was 25-32x.)"""

    name = "bench_mlp_vae"

    def __init__(self, input_shape=(1, 32, 32), latent_dim=32):
        super().__init__(ModelConfig(input_shape=input_shape, latent_dim=latent_dim))
        n = input_shape[0] * input_shape[1] * input_shape[2]
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(n, 512), nn.BatchNorm1d(512), nn.Tanh(),
                                  nn.Linear(512, 256), nn.BatchNorm1d(256), nn.Tanh())
        self.mu, self.log_std = nn.Linear(256, latent_dim), nn.Linear(256, latent_dim)

    def encode(self, x):
        h = self.body(x)
        return LatentGaussian(self.mu(h), nn.functional.softplus(self.log_std(h)) + 1e-4)


class ConvEncoderVAE(Autoencoder):
    """64x64 RGB conv encoder (32-64-128 k4 s2 ReLU + BatchNorm), latent 32."""

    name = "bench_conv_vae"

    def __init__(self, latent_dim=32):
        super().__init__(ModelConfig(input_shape=(3, 64, 64), latent_dim=latent_dim))
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU(), nn.Flatten())
        self.mu, self.log_std = nn.Linear(128 * 64, latent_dim), nn.Linear(128 * 64, latent_dim)

    def encode(self, x):
        h = self.body(x)
        return LatentGaussian(self.mu(h), nn.functional.softplus(self.log_std(h)) + 1e-4)


def naive_spectrum(model, x):
    """Per-sample torch.autograd.functional.jacobian and eigh of the full N x N metric."""
    out = []
    for xi in x:
        def f(v):
            p = model.encode(v.unsqueeze(0))
            return torch.cat([p.mean[0], p.std[0]])

        j = torch.autograd.functional.jacobian(f, xi).reshape(2 * model.latent_dim, -1)
        out.append(torch.linalg.eigvalsh(j.T @ j).flip(0))
    return torch.stack(out)


def bare_jacobians(model, x):
    def f(v):
        p = model.encode(v.unsqueeze(0))
        return torch.cat([p.mean[0], p.std[0]])

    return vmap(jacrev(f))(x)


def fast_scores(model, x):
    sp = pullback_spectrum(model, x)
    return sp.spectral_radius, von_neumann_entropy(sp.eigenvalues)


#: input sizes the spectral benchmarks check: Fashion-MNIST as shipped (28x28) and as fashion-mnist-32 (32x32)
SIZES = (28, 32)


def _mlp_setup(size):
    torch.manual_seed(0)
    model = MLPEncoderVAE(input_shape=(1, size, size)).eval()
    x = torch.rand(32, 1, size, size, generator=torch.Generator().manual_seed(0))
    return model, x


@pytest.mark.parametrize("size", SIZES)
def test_bench_spectral_vs_naive_dense(benchmark, size):
    model, x = _mlp_setup(size)
    # the dense reference is a per-sample loop (about a second per sample): each round it runs on
    # N_DENSE samples, right before the Gram-trick round on the whole batch; compared per sample
    n_dense = 2
    cmp = versus(benchmark, lambda: fast_scores(model, x), lambda: naive_spectrum(model, x[:n_dense]), rounds=5)
    t_dense, t_fast = cmp.reference_s / n_dense, cmp.subject_s / x.shape[0]
    radius, _ = fast_scores(model, x)
    ref = naive_spectrum(model, x[:2])
    torch.testing.assert_close(radius[:2], ref[:, 0], rtol=1e-3, atol=0)
    ratio = t_dense / t_fast
    benchmark.extra_info.update({"naive_dense_s_per_sample": t_dense, "gram_trick_s_per_sample": t_fast,
                                 "speedup_vs_naive": ratio, "batch": x.shape[0], "input": f"1x{size}x{size}", "latent_dim": 32})
    print(f"\nspectral scores, {size}x{size}, d=32, per sample (medians of interleaved rounds): dense {t_dense * 1e3:.1f} ms, "
          f"Gram trick (batch 32) {t_fast * 1e3:.2f} ms, speed-up {ratio:.1f}x")
    # regression floor: measured at one thread on a quiet machine 23-29x at 28x28 and 38-41x at 32x32
    # (the goal, >= 50x, is above what the arithmetic allows there: docs/scaling.md)
    assert ratio >= 20


@pytest.mark.parametrize("size", SIZES)
def test_bench_spectral_vs_bare_jacobians(benchmark, size):
    model, x = _mlp_setup(size)
    cmp = versus(benchmark, lambda: fast_scores(model, x), lambda: bare_jacobians(model, x), rounds=15, warmup_rounds=2)
    ratio = 1.0 / cmp.speedup  # scores time / bare Jacobian time
    benchmark.extra_info.update({"ratio_to_jacobians": ratio, "input": f"1x{size}x{size}"})
    print(f"\n{size}x{size}: spectral scores {cmp.subject_s * 1e3:.1f} ms vs bare batched Jacobians "
          f"{cmp.reference_s * 1e3:.1f} ms (medians of interleaved rounds): ratio {ratio:.2f}")
    # regression ceiling: measured 0.93-1.12 at one thread (goal <= 1.1; the Gram product and 32
    # LAPACK eigvalsh calls cost 6-11 ms against 60-90 ms of Jacobians)
    assert ratio <= 1.25


def test_bench_conv64_rgb_bounded_memory(benchmark):
    torch.manual_seed(0)
    model = ConvEncoderVAE().eval()
    x = torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    n = 3 * 64 * 64
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    sp = benchmark.pedantic(lambda: pullback_spectrum(model, x, chunk_size=4, eigenvectors=True, top_k=1),
                            rounds=1, iterations=1)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    dense_mib = n * n * 4 / 2 ** 20  # one float32 N x N metric for ONE sample
    benchmark.extra_info.update({"peak_rss_growth_mib": grown_mib, "one_dense_metric_mib": dense_mib,
                                 "batch": 16, "chunk_size": 4, "seconds": benchmark.stats.stats.min})
    print(f"\n64x64 RGB conv encoder, batch 16 (chunks of 4): {benchmark.stats.stats.min:.2f}s, peak RSS growth "
          f"{grown_mib:.0f} MiB (one dense N x N metric would be {dense_mib:.0f} MiB)")
    assert sp.eigenvalues.shape == (16, 1) and sp.eigenvectors.shape == (16, 1, 3, 64, 64)
    assert grown_mib < dense_mib
