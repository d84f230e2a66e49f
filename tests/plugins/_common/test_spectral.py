"""pullback_spectrum and the spectral metrics vs dense float64 eigendecompositions of the N x N metric."""

import math

import numpy as np
import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from tests.plugins.metrics.metric_toy_models import TanhMLPAutoencoder
from latentbench.plugins._common.spectral import pullback_spectrum, von_neumann_entropy
from latentbench.plugins.metrics.spectral_scores import SpectralRadius, VNEntropy


def dense_metric(model, xi, curved=False):
    """G_x built densely from torch.autograd.functional.jacobian (float64), independent of the Gram trick."""
    def mu(v):
        return model.encode(v.unsqueeze(0)).mean[0]

    def sd(v):
        return model.encode(v.unsqueeze(0)).std[0]

    n = xi.numel()
    j_mu = torch.autograd.functional.jacobian(mu, xi).reshape(-1, n)
    stochastic = model.encode(xi.unsqueeze(0)).std is not None
    gz = torch.eye(j_mu.shape[0], dtype=torch.float64)
    if curved:
        j_g = torch.autograd.functional.jacobian(lambda z: model.decode(z.unsqueeze(0)).reshape(-1), mu(xi))
        gz = j_g.T @ j_g
    g = j_mu.T @ gz @ j_mu
    if stochastic:
        j_s = torch.autograd.functional.jacobian(sd, xi).reshape(-1, n)
        g = g + j_s.T @ gz @ j_s
    return g


@pytest.mark.parametrize("stochastic", [True, False])
@pytest.mark.parametrize("curved", [False, True])
def test_eigenpairs_match_dense_reference(stochastic, curved):
    model = TanhMLPAutoencoder(input_shape=(1, 4, 4), latent_dim=3, stochastic=stochastic, batchnorm=True, seed=3).eval()
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sp = pullback_spectrum(model, x, curved=curved, eigenvectors=True, chunk_size=3)
    rows = 6 if stochastic else 3
    assert sp.eigenvalues.shape == (4, rows) and sp.eigenvectors.shape == (4, rows, 1, 4, 4)
    assert sp.stochastic == stochastic and sp.curved == curved
    for i in range(4):
        g = dense_metric(model, x[i], curved)
        w, v = torch.linalg.eigh(g)
        w, v = w.flip(0), v.flip(1)
        np.testing.assert_allclose(sp.eigenvalues[i].numpy(), w[:rows].numpy(), rtol=1e-6, atol=1e-12 * float(w[0]))
        # the dense matrix has exactly `rows` non-zero eigenvalues: J_sigma really is (or is not) included
        assert float(w[rows:].abs().max()) < 1e-10 * float(w[0])
        assert float(w[rows - 1]) > 1e-6 * float(w[0])
        for k in range(3):  # top eigenvectors (distinct eigenvalues for a random net), up to sign
            mine = sp.eigenvectors[i, k].reshape(-1)
            ref = v[:, k]
            assert abs(float(mine.norm()) - 1) < 1e-9
            assert min(float((mine - ref).norm()), float((mine + ref).norm())) < 1e-6
            # and it is an eigenvector of the dense G_x itself
            np.testing.assert_allclose((g @ mine).numpy(), (sp.eigenvalues[i, k] * mine).numpy(),
                                       rtol=0, atol=1e-9 * float(w[0]))


def test_deterministic_drops_sigma_and_top_k():
    sto = TanhMLPAutoencoder(stochastic=True, seed=1).eval()
    det = TanhMLPAutoencoder(stochastic=False, seed=1).eval()  # same mean head weights
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    w_det = pullback_spectrum(det, x).eigenvalues
    w_sto = pullback_spectrum(sto, x).eigenvalues
    assert w_det.shape[1] == 3 and w_sto.shape[1] == 6
    # adding J_sigma^T J_sigma (PSD) can only raise the top eigenvalue
    assert bool((w_sto[:, 0] >= w_det[:, 0] - 1e-12).all())
    top = pullback_spectrum(sto, x, eigenvectors=True, top_k=2)
    assert top.eigenvalues.shape == (3, 2) and top.eigenvectors.shape == (3, 2, 1, 4, 4)
    np.testing.assert_allclose(top.eigenvalues.numpy(), w_sto[:, :2].numpy(), rtol=1e-12)


def test_rank_is_capped_by_input_size():
    # N = 4 inputs, 2d = 6 rows: only 4 eigenvalues exist
    model = TanhMLPAutoencoder(input_shape=(1, 2, 2), latent_dim=3, stochastic=True).eval()
    x = torch.rand(2, 1, 2, 2, dtype=torch.float64)
    sp = pullback_spectrum(model, x, eigenvectors=True)
    assert sp.eigenvalues.shape == (2, 4)
    np.testing.assert_allclose(sp.eigenvalues[0].numpy(), torch.linalg.eigvalsh(dense_metric(model, x[0])).flip(0).numpy(),
                               rtol=1e-6)


class Isotropic(TanhMLPAutoencoder):
    """mu(x) = c * P x with P a row-orthonormal projection: G_x = c^2 P^T P has d equal eigenvalues."""

    def __init__(self, n=16, d=5, c=0.7):
        super().__init__(input_shape=(1, 4, 4), latent_dim=d, stochastic=False)
        q, _ = torch.linalg.qr(torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("p", c * q.T)

    def encode(self, x):
        from latentbench.model import LatentGaussian

        return LatentGaussian(x.reshape(x.shape[0], -1) @ self.p.T, None)


def test_entropy_of_isotropic_metric_is_log_rank():
    model = Isotropic(d=5, c=0.7).eval()
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    sp = pullback_spectrum(model, x)
    np.testing.assert_allclose(sp.eigenvalues.numpy(), np.full((3, 5), 0.49), rtol=1e-12)
    np.testing.assert_allclose(von_neumann_entropy(sp.eigenvalues).numpy(), math.log(5), rtol=1e-12)
    # the paper's max-normalisation gives p_k = 1 and entropy 0 for the same metric
    np.testing.assert_allclose(von_neumann_entropy(sp.eigenvalues, "max").numpy(), 0.0, atol=1e-12)


def test_entropy_formula_and_zero_eigenvalues():
    lam = torch.tensor([[4.0, 3.0, 1.0, 0.0]], dtype=torch.float64)
    p = np.array([0.5, 0.375, 0.125])
    np.testing.assert_allclose(float(von_neumann_entropy(lam)), -(p * np.log(p)).sum(), rtol=1e-12)
    q = np.array([1.0, 0.75, 0.25])
    np.testing.assert_allclose(float(von_neumann_entropy(lam, "max")), -(q * np.log(q)).sum(), rtol=1e-12)
    with pytest.raises(LatentBenchError, match="normalization"):
        von_neumann_entropy(lam, "sum")


def _ctx(model, x):
    return MetricContext(model=model, x=x, y=None, dataset="toy", device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0), seed=0)


@pytest.mark.parametrize("curved", [False, True])
def test_metrics_report_per_sample_values_summary_and_histogram(curved):
    model = TanhMLPAutoencoder(stochastic=True, seed=5).eval()
    x = torch.rand(7, 1, 4, 4, dtype=torch.float64)
    ref = [torch.linalg.eigvalsh(dense_metric(model, x[i], curved)).flip(0)[:6] for i in range(7)]
    res = SpectralRadius(curved=curved, chunk_size=2, bins=4)(_ctx(model, x))
    key = "curved_spectral_radius" if curved else "spectral_radius"
    expect = np.array([float(r[0]) for r in ref])
    np.testing.assert_allclose(res.per_sample[key], expect, rtol=1e-6)
    assert res.values[f"{key}_mean"] == pytest.approx(expect.mean(), rel=1e-6)
    assert res.values[f"{key}_std"] == pytest.approx(expect.std(), rel=1e-5)
    hist = res.info[f"{key}_histogram"]
    assert sum(hist["counts"]) == 7 and len(hist["edges"]) == 5
    assert res.config["curved"] is curved and res.config["metric"] == "spectral_radius"

    ent = VNEntropy(curved=curved)(_ctx(model, x))
    ekey = "curved_vn_entropy" if curved else "vn_entropy"
    p = [r.numpy() / r.sum().item() for r in ref]
    np.testing.assert_allclose(ent.per_sample[ekey], [-(q * np.log(q)).sum() for q in p], rtol=1e-6)
    assert ent.info["normalization"] == "trace" and ent.config["normalization"] == "trace"
    ent_max = VNEntropy(normalization="max", curved=curved)(_ctx(model, x))
    assert ent_max.info["normalization"] == "max"
    # max normalisation from the dense eigenvalues: p_k = lambda_k / lambda_max, zero terms dropped
    q = [r.numpy() / r.max().item() for r in ref]
    expect_max = [-(qi[qi > 1e-12] * np.log(qi[qi > 1e-12])).sum() for qi in q]
    np.testing.assert_allclose(ent_max.per_sample[ekey], expect_max, rtol=1e-5)
    assert not np.allclose(expect_max, ent.per_sample[ekey])  # the two normalisations differ here


def test_bad_inputs_are_named():
    model = TanhMLPAutoencoder().eval()
    with pytest.raises(LatentBenchError, match="top_k"):
        pullback_spectrum(model, torch.rand(2, 1, 4, 4, dtype=torch.float64), top_k=0)
    with pytest.raises(ValueError, match="normalization"):
        VNEntropy(normalization="median")


def test_model_mode_restored_and_float32_model():
    model = TanhMLPAutoencoder(dtype=torch.float32, batchnorm=True).train()
    x = torch.rand(3, 1, 4, 4)
    sp = pullback_spectrum(model, x)
    assert model.training and sp.eigenvalues.dtype == torch.float32
    model64 = TanhMLPAutoencoder(dtype=torch.float64, batchnorm=True).eval()
    ref = pullback_spectrum(model64, x.double())
    np.testing.assert_allclose(sp.eigenvalues.numpy(), ref.eigenvalues.numpy(), rtol=1e-4)
