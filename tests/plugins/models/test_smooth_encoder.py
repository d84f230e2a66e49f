"""Smooth encoder (Cemgil et al. §3, App. B.2, C): the SE-ELBO terms against independent computations
(torch.distributions, numerical integration, numerical minimisation of the entropic OT functional),
the selection attack, and the decoder gradient being the plain VAE's."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, optimize, stats
from torch.distributions import Normal

from latentbench.perturbation import flat_norm
from latentbench.plugins.attacks.pgd_wasserstein import PGDWasserstein
from latentbench.plugins._common.gaussians import posterior_distance
from latentbench.plugins.models.smooth_encoder import SmoothEncoder, SmoothEncoderConfig
from latentbench.plugins.models.vae import reconstruction_nll

SMALL = dict(hidden=[16, 16], latent_dim=3)


def _model(**kw):
    torch.manual_seed(0)
    return SmoothEncoder(SmoothEncoderConfig(**{**SMALL, **kw})).double().eval()


def _x(n=4, seed=0):
    return torch.rand(n, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _entropic_w2_by_minimisation(mu_a, var_a, mu_b, var_b, gamma):
    """Cemgil et al. App. B.2 per dimension: minimise F(psi) = -gamma psi - 1/2 log(S_a - psi^2 / S_b) over the
    feasible psi in (-sqrt(S_a S_b), sqrt(S_a S_b)), then W = (mu_a - mu_b)^2 + S_a + S_b - 2 psi*."""
    total = 0.0
    for ma, va, mb, vb in zip(mu_a, var_a, mu_b, var_b):
        bound = math.sqrt(va * vb)
        f = lambda p: -gamma * p - 0.5 * math.log(va - p * p / vb)
        res = optimize.minimize_scalar(f, bounds=(-bound * (1 - 1e-12), bound * (1 - 1e-12)), method="bounded",
                                       options={"xatol": 1e-13})
        total += (ma - mb) ** 2 + va + vb - 2 * res.x
    return total


def test_se_terms_match_independent_computations():
    m = _model(gamma=0.7, decoder_variance=0.3)
    x = _x()
    x_sel = (x + 0.05 * torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    u = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        t = m.se_terms(x, x_sel, noise=u)
        qa, qb = m.encode(x), m.encode(x_sel)
        g = m.decode(qa.mean + qa.std * u)
    # data fidelity: the Gaussian log-likelihood with its constant (App. C)
    ref_data = Normal(g, math.sqrt(0.3)).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(t["data_fidelity"], ref_data, rtol=1e-12)
    for k in range(4):
        # prior fidelity E_q[log N(z; 0, I)] by numerical integration, dimension by dimension
        for q, key in ((qa, "prior_fidelity_x"), (qb, "prior_fidelity_x_sel")):
            want = sum(integrate.quad(lambda z: stats.norm.pdf(z, float(mu), float(s)) * stats.norm.logpdf(z),
                                      float(mu) - 12 * float(s), float(mu) + 12 * float(s), epsabs=1e-12)[0]
                       for mu, s in zip(q.mean[k], q.std[k]))
            assert float(t[key][k]) == pytest.approx(want, rel=1e-8)
        w = _entropic_w2_by_minimisation(qa.mean[k].tolist(), qa.std[k].pow(2).tolist(),
                                         qb.mean[k].tolist(), qb.std[k].pow(2).tolist(), 0.7)
        assert float(t["w2_gamma"][k]) == pytest.approx(w, rel=1e-7)
    assert torch.allclose(t["se_elbo"], t["data_fidelity"] + t["prior_fidelity_x"] + t["prior_fidelity_x_sel"]
                          - t["w2_gamma"], rtol=1e-12)


def test_w2_gamma_tends_to_exact_w2_for_large_gamma():
    """W_{2,gamma} - W_2^2 = sum_k [2 s_a s_b - (sqrt(1 + 4 gamma^2 S_a S_b) - 1) / gamma], which lies in
    (0, 1/gamma] per dimension: the gap closes like D / gamma."""
    x = _x()
    x_sel = 1 - x
    for gamma in (1.0, 1e2, 1e4, 1e8):
        m = _model(gamma=gamma)
        with torch.no_grad():
            w = m.se_terms(x, x_sel)["w2_gamma"]
            qa, qb = m.encode(x), m.encode(x_sel)
        exact = ((qa.mean - qb.mean) ** 2 + (qa.std - qb.std) ** 2).sum(1)
        gap = w - exact
        assert bool((gap > 0).all()) and bool((gap <= 3 / gamma + 1e-13).all()), (gamma, gap)
        if gamma >= 1e4:
            assert bool((gap >= 0.9 * (3 / gamma - 3 / gamma**2)).all())


def test_selection_is_the_pgd_wasserstein_attack_inside_the_budget():
    m = _model()
    atk = m.selection_attack()
    assert isinstance(atk, PGDWasserstein)
    assert (atk.config.eps, atk.config.norm, atk.config.steps, atk.config.distance) == (0.1, "linf", 20, "w2")
    m.train()
    x = _x(8)
    torch.manual_seed(0)
    x_sel = m.select(x)
    assert m.training  # the attack ran in eval mode and restored the mode
    assert float(flat_norm(x_sel - x, "linf").max()) <= 0.1 + 1e-12
    assert float(x_sel.min()) >= 0 and float(x_sel.max()) <= 1
    with torch.no_grad():
        m.eval()
        q0, q1 = m.encode(x), m.encode(x_sel)
        w_sel = posterior_distance(q1.mean, q1.std, q0.mean, q0.std, "w2")
        # PGD keeps the best iterate, which is at least as good as its uniform random start
        g = torch.Generator().manual_seed(5)
        x_rand = (x + (torch.rand(x.shape, generator=g, dtype=torch.float64) * 0.2 - 0.1)).clamp(0, 1)
        qr = m.encode(x_rand)
        w_rand = posterior_distance(qr.mean, qr.std, q0.mean, q0.std, "w2")
    assert float(w_sel.mean()) > float(w_rand.mean())


def test_decoder_gradient_is_the_plain_vae_gradient():
    """x' enters only encoder terms (Cemgil et al. §3): d(-SE-ELBO)/d(decoder) = d(-log p(x|z_a))/d(decoder)."""
    m = _model()
    x, x_sel = _x(), 1 - _x()
    u = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    dec = list(m.decoder.parameters())
    g_se = torch.autograd.grad(-m.se_terms(x, x_sel, noise=u)["se_elbo"].mean(), dec)
    q = m.encode(x)
    nll = reconstruction_nll(m.decoder(q.mean + q.std * u), x, "gaussian", m.config.decoder_variance)
    g_vae = torch.autograd.grad(nll.mean(), dec)
    for a, b in zip(g_se, g_vae):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)


def test_loss_uses_the_selected_point():
    m = _model()
    x = _x()
    torch.manual_seed(7)
    out = m.loss(x)
    torch.manual_seed(7)
    x_sel = m.select(x)
    t = m.se_terms(x, x_sel)
    assert float(out["loss"].detach()) == pytest.approx(-float(t["se_elbo"].mean().detach()), rel=1e-12)
    assert float(out["w2_gamma"].detach()) > 0


def test_bad_selection_config():
    with pytest.raises(ValueError, match="selection_norm|unknown norm"):
        SmoothEncoder(SmoothEncoderConfig(**SMALL, selection_norm="l1"))
    with pytest.raises(ValueError, match="selection_distance"):
        SmoothEncoder(SmoothEncoderConfig(**SMALL, selection_distance="kl"))
    with pytest.raises(ValueError, match="gamma"):
        SmoothEncoder(SmoothEncoderConfig(**SMALL, gamma=0.0))
