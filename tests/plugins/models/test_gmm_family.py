"""gmm_dae, robust_gmm_dae and robust_dae: training, checkpoints, loss weights, noise, adversaries."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.plugins.models.gmm_family_reference import one_hot_gmm_cov, ref_adv_ks, ref_cov_loss, ref_ks
from latentbench import hookimpl
from latentbench.checkpoint import load_checkpoint, save_checkpoint
from latentbench.errors import ConfigError
from latentbench.perturbation import flat_norm
from latentbench.training import TrainConfig, train
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.models import robust_dae as robust_module
from latentbench.plugins.models.gmm_dae import GMMDAE, GMMDAEConfig
from latentbench.plugins.models.robust_dae import RobustDAE, RobustDAEConfig, RobustGMMDAE, RobustGMMDAEConfig

CLASSES = {"gmm_dae": GMMDAE, "robust_gmm_dae": RobustGMMDAE, "robust_dae": RobustDAE}
SMALL = dict(hidden=[64, 64])
#: variants trained on digits: each model, plus the PGD-trained and uncoupled ablations
VARIANTS = {
    "gmm_dae": (GMMDAE, dict(backbone="mlp", **SMALL)),
    "robust_gmm_dae": (RobustGMMDAE, SMALL),
    "robust_dae": (RobustDAE, SMALL),
    "robust_dae_pgd": (RobustDAE, dict(adversary="pgd", pgd_steps=3, **SMALL)),
    "robust_gmm_dae_uncoupled": (RobustGMMDAE, dict(coupled=False, **SMALL)),
}


def _registry():
    """The built-in registry once every model module exists; until then one holding these classes."""
    from latentbench.registry import load_registry

    try:
        reg = load_registry(autoload=False)
        if all(n in reg.names("model") for n in CLASSES):
            return reg
    except Exception:
        pass

    class _GMMFamily:
        @hookimpl
        def latentbench_models(self):
            return list(CLASSES.values())

    return load_registry(autoload=False, extra_plugins=[_GMMFamily()])


def _params(prior):
    return prior.means.double().numpy(), prior.stds.double().numpy(), prior.weights.double().numpy()


def _eval_loss(model, x):
    model.eval()
    torch.manual_seed(123)  # the adversary's random start
    with torch.no_grad():
        return {k: float(v) for k, v in model.loss(x).items()}


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    # these tiny networks gain nothing from a second thread and lose a lot on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return Digits().load("train")


@pytest.fixture(scope="module")
def trained(digits):
    """Each variant: (model, loss on a fixed batch before training, after training, train history)."""
    out = {}
    xb = digits.x[:128]
    for key, (cls, kw) in VARIANTS.items():
        torch.manual_seed(0)
        model = cls(cls.config_class(**kw))
        model.estimate_loss_weights(64, torch.Generator().manual_seed(0))
        before = _eval_loss(model, xb)
        result = train(model, digits, TrainConfig(epochs=4, batch_size=64, progress=False, seed=1))
        out[key] = (model, before, _eval_loss(model, xb), result)
    return out


@pytest.mark.parametrize("key", list(VARIANTS))
def test_short_training_on_digits_lowers_loss(trained, key):
    model, before, after, result = trained[key]
    assert after["loss"] < 0.5 * before["loss"], (before, after)
    assert after["rec"] < 0.5 * before["rec"]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # the trainer's batch size equals the one the weights were estimated for: they are kept
    assert int(model.weights_batch_size) == 64


@pytest.mark.parametrize("key", list(VARIANTS))
def test_checkpoint_round_trip_is_bit_identical(trained, digits, tmp_path, key):
    model, *_ = trained[key]
    model.eval()
    save_checkpoint(model, tmp_path / key)
    loaded = load_checkpoint(tmp_path / key, registry=_registry())
    assert type(loaded) is type(model) and loaded.config == model.config
    x = digits.x[:32]
    with torch.no_grad():
        assert torch.equal(loaded.encode(x).mean, model.encode(x).mean)
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
        assert torch.equal(loaded.sample(8, torch.Generator().manual_seed(3)),
                           model.sample(8, torch.Generator().manual_seed(3)))
    for name in ("lambda_ks", "lambda_cv", "weights_batch_size"):
        assert torch.equal(getattr(loaded, name), getattr(model, name))
    assert float(loaded.lambda_ks) > 0 and float(loaded.lambda_cv) > 0


def _draw_like_prior(prior, n, g):
    # the draw order GMMPrior.sample documents: mode indices, then standard normals, on the CPU
    comp = torch.multinomial(prior.weights.double(), n, replacement=True, generator=g)
    eps = torch.randn((n, prior.dim), generator=g, dtype=prior.means.dtype)
    return (prior.means[comp] + prior.stds[comp] * eps).double().numpy()


@pytest.mark.parametrize("cls", [GMMDAE, RobustGMMDAE, RobustDAE])
def test_loss_weights_are_inverse_mean_losses_on_prior_batches(cls):
    m_batches, n = 6, 24
    kw = dict(backbone="mlp") if cls is GMMDAE else {}
    model = cls(cls.config_class(weight_batches=m_batches, **SMALL, **kw))
    lam_ks, lam_cv = model.estimate_loss_weights(n, torch.Generator().manual_seed(42))
    params = _params(model.prior)
    cov = one_hot_gmm_cov(10, 10) if cls is not RobustDAE else np.eye(10)
    g = torch.Generator().manual_seed(42)
    ks_vals, cv_vals = [], []
    for _ in range(m_batches):
        z = _draw_like_prior(model.prior, n, g)
        if cls is GMMDAE:
            ks_vals.append(ref_ks(params, z))
            cv_vals.append(ref_cov_loss(z, cov))
        else:  # Robust-DAE appendix eq. 10: z and z' drawn independently from the prior
            zp = _draw_like_prior(model.prior, n, g)
            ks_vals.append(ref_adv_ks(params, z, zp, coupled=True))
            cv_vals.append(ref_cov_loss(np.hstack([z, zp]), np.block([[cov, 0.95 * cov], [0.95 * cov, cov]])))
    assert lam_ks == pytest.approx(1 / np.mean(ks_vals), rel=1e-4)
    assert lam_cv == pytest.approx(1 / np.mean(cv_vals), rel=1e-4)
    assert float(model.lambda_ks) == pytest.approx(lam_ks) and float(model.lambda_cv) == pytest.approx(lam_cv)
    assert int(model.weights_batch_size) == n


def test_on_train_start_uses_the_loader_batch_size():
    model = GMMDAE(GMMDAEConfig(backbone="mlp", weight_batches=4, **SMALL))
    x = torch.rand(20, 1, 8, 8)
    torch.manual_seed(0)
    model.on_train_start(iter([(x[:10], None), (x[10:], None)]))
    assert int(model.weights_batch_size) == 10
    first = model.lambda_ks.clone()
    model.on_train_start(iter([(x[:10], None)]))  # same size: estimate kept
    assert torch.equal(model.lambda_ks, first)
    model.on_train_start(iter([(x, None)]))
    assert int(model.weights_batch_size) == 20


def test_regularizers_match_reference_for_coupled_and_augmented():
    rng = np.random.default_rng(0)
    z, za = rng.normal(0, 1, (16, 10)), rng.normal(0.2, 1.2, (16, 10))
    cov = one_hot_gmm_cov(10, 10)
    for coupled, alpha in ((True, 0.95), (False, 0.0)):
        model = RobustGMMDAE(RobustGMMDAEConfig(coupled=coupled, **SMALL)).double()
        ks, cv = model.regularizers(torch.tensor(z), torch.tensor(za))
        # rel 1e-6: the prior's weights 1/10 were rounded to float32 before the cast to float64
        assert float(ks) == pytest.approx(ref_adv_ks(_params(model.prior), z, za, coupled), rel=1e-6)
        target = np.block([[cov, alpha * cov], [alpha * cov, cov]])
        assert float(cv) == pytest.approx(ref_cov_loss(np.hstack([z, za]), target), rel=1e-6)


def test_latent_noise_only_in_training_mode():
    torch.manual_seed(0)
    model = RobustDAE(RobustDAEConfig(**SMALL))
    model.estimate_loss_weights(32, torch.Generator().manual_seed(0))
    x = torch.rand(32, 1, 8, 8)
    z = torch.zeros(20_000, 10)

    model.eval()
    assert torch.equal(model.noisy_codes(z), z)
    assert torch.equal(model.encode(x).mean, model.encode(x).mean) and model.encode(x).std is None
    with torch.no_grad():
        clean_rec = float(F.mse_loss(model.decode(model.encode(x).mean), x))
        recs = [float(model.loss(x)["rec"]) for _ in range(2)]
    assert recs == [pytest.approx(clean_rec, rel=1e-6)] * 2

    model.train()
    noise = model.noisy_codes(z) - z
    # std 0.1: the sample std of 200,000 normals lies within 5 standard errors (0.1 / sqrt(2 n))
    assert abs(float(noise.std()) - 0.1) < 5 * 0.1 / np.sqrt(2 * noise.numel())
    assert abs(float(noise.mean())) < 5 * 0.1 / np.sqrt(noise.numel())
    assert torch.equal(model.encode(x).mean, model.encode(x).mean)  # the encoder itself never adds noise
    with torch.no_grad():
        train_recs = [float(model.loss(x)["rec"]) for _ in range(2)]
    assert train_recs[0] != train_recs[1] and clean_rec not in train_recs


@pytest.mark.parametrize("adversary", ["fgsm", "pgd"])
def test_training_adversary_respects_budget_and_pushes_codes(adversary):
    torch.manual_seed(0)
    cfg = RobustGMMDAEConfig(backbone="conv", batchnorm=True, conv_channels=[8, 16], adversary=adversary, pgd_steps=4)
    model = RobustGMMDAE(cfg)
    x = Digits().load("test").x[:64]
    model.train()
    model.encode(x)  # fill the batch-norm running statistics once
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    g = torch.Generator().manual_seed(1)
    x_adv = model.adversarial_inputs(x, generator=g)
    assert model.training and model.encoder.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # the attack leaves parameter gradients alone
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())  # no running-stat updates
    assert float(flat_norm(x_adv - x, "linf").max()) <= cfg.eps + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    model.eval()
    with torch.no_grad():
        z = model.encode(x).mean
        shift_adv = (model.encode(x_adv).mean - z).norm(dim=1)
        u = (torch.rand(x.shape, generator=g) * 2 - 1) * cfg.eps
        shift_rand = (model.encode((x + u).clamp(0, 1)).mean - z).norm(dim=1)
    assert float(shift_adv.mean()) > 1.5 * float(shift_rand.mean())


def test_pgd_adversary_runs_through_the_shared_engine(monkeypatch):
    calls = []
    real = robust_module.pgd

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(robust_module, "pgd", spy)
    model = RobustDAE(RobustDAEConfig(adversary="pgd", pgd_steps=5, eps=0.2, **SMALL))
    model.adversarial_inputs(torch.rand(8, 1, 8, 8))
    assert len(calls) == 1
    assert calls[0]["restarts"] == 1 and calls[0]["random_init"]
    monkeypatch.setattr(robust_module, "pgd", lambda *a, **k: pytest.fail("fgsm must not call pgd"))
    RobustDAE(RobustDAEConfig(**SMALL)).adversarial_inputs(torch.rand(8, 1, 8, 8))


def test_sample_draws_from_the_prior_and_decodes():
    model = GMMDAE(GMMDAEConfig(**SMALL)).eval()
    with torch.no_grad():
        a = model.sample(16, torch.Generator().manual_seed(5))
        b = model.sample(16, torch.Generator().manual_seed(5))
        z = model.prior.sample(16, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and torch.equal(a, model.decode(z))
    assert a.shape == (16, 1, 8, 8) and float(a.min()) >= 0 and float(a.max()) <= 1


def test_defaults_follow_the_spec():
    g = GMMDAEConfig()
    assert (g.n_modes, g.latent_dim, g.mode_std, g.backbone, g.conv_channels) == (10, 10, 1.0, "conv", [128, 256, 512, 1024])
    r = RobustGMMDAEConfig()
    assert (r.hidden, r.activation, r.batchnorm, r.backbone) == ([200] * 4, "relu", False, "mlp")
    assert (r.eps, r.alpha, r.latent_noise_std, r.adversary, r.coupled, r.n_modes) == (0.3, 0.95, 0.1, "fgsm", True, 10)
    torch.manual_seed(0)
    prior = GMMDAE(GMMDAEConfig(**SMALL)).prior
    assert torch.equal(prior.means, torch.eye(10)) and torch.allclose(prior.weights, torch.full((10,), 0.1))


def test_bad_configs_and_inputs_give_clear_errors():
    with pytest.raises(ConfigError, match="latent_dim >= n_modes.*raise latent_dim"):
        GMMDAEConfig.from_dict({"latent_dim": 5})
    with pytest.raises(ConfigError, match="adversary 'bim' unknown"):
        RobustDAEConfig.from_dict({"adversary": "bim"})
    with pytest.raises(ConfigError, match="alpha"):
        RobustGMMDAEConfig.from_dict({"alpha": 1.5})
    RobustDAEConfig.from_dict({"latent_dim": 3})  # the unimodal prior has no one-hot constraint
    model = RobustDAE(RobustDAEConfig(**SMALL))
    with pytest.raises(ValueError, match="input_shape"):
        model.encode(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError):
        GMMDAE(dataclasses.replace(GMMDAEConfig(), n_modes=12))
