"""Matrix-free (Lanczos) spectrum of the pullback metric vs dense float64 eigendecompositions of the N x N
metric and vs closed forms."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins._common.spectral_matfree import matfree_spectrum
from latentbench.plugins.metrics.spectral_scores import (AUTO_MATFREE_ABOVE, SpectralRadius, SpectralRadiusConfig,
                                                         VNEntropy, resolved_method)
from tests.plugins._common.test_spectral import dense_metric
from tests.plugins.metrics.metric_toy_models import TanhMLPAutoencoder


class ConvAutoencoder(Autoencoder):
    """Random conv encoder (conv-BatchNorm-tanh x2, linear mean/std heads) and a linear-sigmoid decoder."""

    name = "test_conv_matfree"

    def __init__(self, size=16, latent_dim=6, seed=0):
        super().__init__(ModelConfig(input_shape=(1, size, size), latent_dim=latent_dim))
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.Tanh(),
                                  nn.Conv2d(4, 8, 3, 2, 1), nn.Tanh(), nn.Flatten())
        feat = 8 * (size // 4) ** 2
        self.mu, self.log_std = nn.Linear(feat, latent_dim), nn.Linear(feat, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, size * size), nn.Sigmoid())
        bn = self.body[1]
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        self.double()

    def encode(self, x):
        h = self.body(x)
        return LatentGaussian(self.mu(h), nn.functional.softplus(self.log_std(h)) + 1e-3)

    def decode(self, z):
        return self.dec(z).reshape(z.shape[0], *self.input_shape)


class LinearEncoder(Autoencoder):
    """mu(x) = W x, W = U diag(s) V^T: G_x = W^T W has eigenvalues s_i^2 for every x (closed form)."""

    name = "test_linear_matfree"

    def __init__(self, input_shape, s: torch.Tensor, rows: int):
        n = math.prod(input_shape)
        super().__init__(ModelConfig(input_shape=tuple(input_shape), latent_dim=rows))
        g = torch.Generator().manual_seed(1)
        u, _ = torch.linalg.qr(torch.randn(rows, len(s), dtype=torch.float64, generator=g))
        v, _ = torch.linalg.qr(torch.randn(n, len(s), dtype=torch.float64, generator=g))
        self.register_buffer("w", u @ torch.diag(s) @ v.T)

    def encode(self, x):
        return LatentGaussian(x.reshape(x.shape[0], -1) @ self.w.T, None)


def _entropy(lam: np.ndarray, normalization: str = "trace") -> float:
    lam = lam[lam > 0]
    p = lam / (lam.sum() if normalization == "trace" else lam.max())
    return float(-(p * np.log(p)).sum())


CASES = [  # (model factory, input shape, curved)
    (lambda: TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=5, stochastic=True, batchnorm=True, seed=2), (1, 8, 8), False),
    (lambda: TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=5, stochastic=False, seed=2), (1, 8, 8), False),
    (lambda: TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=4, stochastic=True, seed=4), (1, 8, 8), True),
    (lambda: ConvAutoencoder(size=16, latent_dim=6), (1, 16, 16), False),
    (lambda: ConvAutoencoder(size=16, latent_dim=5), (1, 16, 16), True),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_full_spectrum_and_entropy_match_dense(case):
    factory, shape, curved = CASES[case]
    model = factory().eval()
    x = torch.rand(3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(case))
    sp = matfree_spectrum(model, x, curved=curved, chunk_size=2, seed=case)
    for i in range(3):
        ref = torch.linalg.eigvalsh(dense_metric(model, x[i], curved)).flip(0).numpy()
        r = sp.rank_bound
        # every non-zero eigenvalue to 1e-8 relative (the default rank + 1 steps hold the whole range)
        np.testing.assert_allclose(sp.eigenvalues[i, :r].numpy(), ref[:r], rtol=1e-8, atol=1e-12 * ref[0])
        assert float(sp.eigenvalues[i, r:].abs().sum()) < 1e-10 * ref[0]
        for norm in ("trace", "max"):
            est, err = sp.entropy(norm)
            assert abs(float(est[i]) - _entropy(ref[:r], norm)) < 1e-8
            assert float(err[i]) < 1e-8  # nothing left outside the Krylov basis: no tail, no bias


@pytest.mark.parametrize("shape,rows", [((1, 16, 16), 48), ((1, 8, 8), 100)])  # Lanczos on A A^T, on G_x
def test_linear_encoder_truncated_lanczos_within_stated_error(shape, rows):
    rank = min(rows, math.prod(shape))
    s = 0.85 ** torch.arange(rank, dtype=torch.float64)
    model = LinearEncoder(shape, s, rows).eval()
    x = torch.rand(2, *shape, dtype=torch.float64)
    sp = matfree_spectrum(model, x, steps=24, probes=32, seed=0)
    lam = (s ** 2).numpy()
    assert sp.steps == 24 and sp.rank_bound == rank
    assert sp.side == ("rows" if rows <= math.prod(shape) else "input")
    # the top eigenvalues converge first: the five largest to 1e-8 relative after 24 of 48/64 steps
    np.testing.assert_allclose(sp.eigenvalues[:, :5].numpy(), np.tile(lam[:5], (2, 1)), rtol=1e-8)
    assert int(sp.converged().min()) >= 5
    # Hutch++ trace: unbiased; 6 standard errors (ample) around the closed form
    assert bool(((sp.trace - lam.sum()).abs() <= 6 * sp.trace_se + 1e-12).all())
    for norm in ("trace", "max"):
        exact = _entropy(lam, norm)
        est, err = sp.entropy(norm)
        assert bool((err > 0).all())  # a truncated spectrum is stated as an estimate
        assert bool(((est - exact).abs() <= err).all()), (norm, est, exact, err)
    # and the stated error is informative: measured 0.014-0.022, against log r = 3.9-4.2 for the whole range
    assert float(sp.entropy("trace")[1].max()) < 0.05


def test_repeated_eigenvalues_are_all_found():
    # one Krylov space holds one copy of a repeated eigenvalue; the restarts after breakdown find the rest
    s = torch.tensor([2.0, 1.0, 1.0, 1.0, 0.5, 0.5], dtype=torch.float64)
    model = LinearEncoder((1, 6, 6), s, 10).eval()
    sp = matfree_spectrum(model, torch.rand(1, 1, 6, 6, dtype=torch.float64))
    np.testing.assert_allclose(sp.eigenvalues[0, :6].numpy(), (s ** 2).numpy(), rtol=1e-10)
    np.testing.assert_allclose(sp.eigenvalues[0, 6:].numpy(), 0.0, atol=1e-12)
    est, _ = sp.entropy()
    assert abs(float(est[0]) - _entropy((s ** 2).numpy())) < 1e-10


def test_float32_model_and_mode_restored():
    model = TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=5, dtype=torch.float32, batchnorm=True).train()
    x = torch.rand(2, 1, 8, 8)
    sp = matfree_spectrum(model, x)
    assert model.training and sp.eigenvalues.dtype == torch.float32
    ref = [torch.linalg.eigvalsh(dense_metric(model.double().eval(), x[i].double())).flip(0)[:10] for i in range(2)]
    np.testing.assert_allclose(sp.eigenvalues.numpy(), torch.stack(ref).numpy(), rtol=1e-4, atol=1e-6 * float(ref[0][0]))


def test_bad_arguments_are_named():
    model = TanhMLPAutoencoder().eval()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    for kw, word in [({"steps": 0}, "steps"), ({"probes": -1}, "probes"), ({"chunk_size": 0}, "chunk_size")]:
        with pytest.raises(LatentBenchError, match=word):
            matfree_spectrum(model, x, **kw)
    with pytest.raises(LatentBenchError, match="non-empty batch"):
        matfree_spectrum(model, x[:0])
    for kw, word in [({"method": "fast"}, "method"), ({"lanczos_steps": 0}, "lanczos_steps"),
                     ({"trace_probes": -2}, "trace_probes")]:
        with pytest.raises(ValueError, match=word):
            SpectralRadius(**kw)


def _ctx(model, x):
    return MetricContext(model=model, x=x, y=None, dataset="toy", device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0), seed=0)


def test_auto_threshold_and_metrics_record_the_method():
    cfg = SpectralRadiusConfig()
    assert resolved_method(cfg, 3 * 32 * 32) == "dense" and resolved_method(cfg, 3 * 64 * 64) == "matfree"
    assert resolved_method(cfg, AUTO_MATFREE_ABOVE) == "dense" and resolved_method(cfg, AUTO_MATFREE_ABOVE + 1) == "matfree"
    assert resolved_method(SpectralRadiusConfig(method="dense"), 10 ** 6) == "dense"
    model = TanhMLPAutoencoder(input_shape=(1, 8, 8), latent_dim=4, seed=7).eval()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    ref = [torch.linalg.eigvalsh(dense_metric(model, x[i])).flip(0)[:8].numpy() for i in range(4)]
    dense = SpectralRadius()(_ctx(model, x))  # 64 inputs: auto is dense
    mf = SpectralRadius(method="matfree", trace_probes=4)(_ctx(model, x))
    assert dense.info["method"] == "dense" and mf.info["method"] == "matfree"
    assert mf.info["lanczos_steps"] == 8 and mf.info["trace_probes"] == 4 and mf.info["rank_bound"] == 8
    assert mf.config["method"] == "matfree" and mf.config["lanczos_steps"] is None
    np.testing.assert_allclose(mf.per_sample["spectral_radius"], [r[0] for r in ref], rtol=1e-10)
    ent = VNEntropy(method="matfree", lanczos_steps=3)(_ctx(model, x))
    assert ent.info["method"] == "matfree" and ent.info["lanczos_steps"] == 3
    assert ent.info["entropy_error_bound_max"] > 0
    exact = np.array([_entropy(r) for r in ref])
    assert np.all(np.abs(ent.per_sample["vn_entropy"] - exact) <= ent.info["entropy_error_bound_max"])
