"""Library adapters (issue 14): diffusers AutoencoderKL and pythae models through `latentbench.evaluate`,
PhotoGuard's encoder attack, L-inf latent attacks, and pythae folders whose networks are pickled.

Most tests use a stand-in colour protocol built in the test (scikit-learn digits coloured per image
and resized to 3x32x32, a few images): no download, a few seconds per evaluation. One test per library
runs the registered colour-fashion-64-v1 itself at reduced size, on Fashion-MNIST-format files it writes. Numbers are checked
against computations made directly with the libraries' own modules, never with the adapter's output.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import shutil

import pytest
import torch
from torch import nn

import latentbench
from latentbench import hookimpl
from latentbench.adapters import AdapterError, auto_adapt
from latentbench.api import adapt as api_adapt
from latentbench.model import LatentGaussian
from latentbench.plugins.attacks.latent_space import LatentSpaceAttack
from latentbench.plugins.attacks.photoguard_encoder import PhotoGuardEncoder
from latentbench.plugins.attacks.max_damage import MaxDamageAttack
from latentbench.plugins.datasets.digits import Digits
from latentbench.protocol import Protocol

PROTOCOL = "test-colour-32"
SHAPE = (3, 32, 32)
N = 4
SEED = 0


# -- a 3-channel protocol built in the test ------------------------------------------------------
class ColourDigits(Digits):
    """Digits with a foreground and a background colour per image (corners of the RGB cube, fixed
    by the image's index), so the images use all three channels."""

    name = "test-colour-digits"
    native_shape = (3, 8, 8)

    def _load(self, split):
        s = super()._load(split)
        g = torch.Generator().manual_seed(1)
        corners = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.float32)
        fg = torch.randint(1, 8, (len(s.x),), generator=g)
        bg = (fg + torch.randint(1, 8, (len(s.x),), generator=g)) % 8
        f, b = corners[fg][:, :, None, None], corners[bg][:, :, None, None]
        return type(s)(b + s.x * (f - b), s.y)


COLOUR_PROTOCOL = Protocol(
    name=PROTOCOL, version="1",
    description="test stand-in for a colour protocol: coloured digits at 3x32x32",
    dataset={"name": ColourDigits.name, "image_size": 32, "eval_split": "test", "eval_subset": 8},
    attacks=(
        # the named configuration (photoguard_encoder: L-inf eps 0.06, grey target) at a tenth of its 200
        # steps: a step of the tiny VAE costs ~30 ms on one loaded core, and 200 would take 6-12 s
        {"name": "photoguard", "plugin": "photoguard_encoder", "config": {"steps": 20}},
        {"name": "latent_space_linf", "plugin": "latent_space", "config": {"norm": "linf", "steps": 5, "restarts": 1},
         "budgets": [0.03]},
        {"name": "max_damage_linf", "plugin": "max_damage", "config": {"norm": "linf", "steps": 5, "restarts": 1},
         "budgets": [0.03]},
    ),
    metrics=({"plugin": "attack_loss"},),
    seed=SEED,
)


class ColourPlugin:
    @hookimpl
    def latentbench_datasets(self):
        return [ColourDigits]

    @hookimpl
    def latentbench_protocols(self):
        return [COLOUR_PROTOCOL]


@pytest.fixture(scope="module")
def colour_registry():
    """The installed registry plus the stand-in protocol, as the process-wide registry evaluate reads."""
    import latentbench.registry as reg

    before = reg._REGISTRY
    reg._REGISTRY = reg.load_registry(extra_plugins=[ColourPlugin()])
    yield reg._REGISTRY
    reg._REGISTRY = before


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def eval_x(colour_registry):
    """The first N images of the protocol's seeded draw, read independently of the runner."""
    from latentbench.data import DatasetConfig

    data = colour_registry.dataset(ColourDigits.name)(DatasetConfig(image_size=32))
    return data.load_subset("test", N, SEED, f"{ColourDigits.name}/test").x


def cell(result, metric, attack):
    return next(c for c in result.cells if c["metric"] == metric and c["attack"] == attack)


# -- diffusers ------------------------------------------------------------------------------------
def tiny_autoencoder_kl(**overrides):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    kw = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
              up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
              latent_channels=4, norm_num_groups=8, sample_size=32)
    return diffusers.AutoencoderKL(**{**kw, **overrides}).eval()


@pytest.fixture(scope="module")
def kl_vae():
    return tiny_autoencoder_kl()


@pytest.fixture(scope="module")
def kl_result(kl_vae, colour_registry, one_thread, tmp_path_factory):
    return latentbench.evaluate(kl_vae, PROTOCOL, n_examples=N, progress=False,
                                store=tmp_path_factory.mktemp("kl"))


def kl_code(vae, x):
    """The scaled posterior mean, computed with diffusers directly: [0, 1] -> [-1, 1], times scaling_factor."""
    with torch.no_grad():
        return vae.encode(x * 2 - 1).latent_dist.mean.flatten(1) * vae.config.scaling_factor


def test_evaluate_autoencoder_kl_on_a_colour_protocol(kl_result, kl_vae, eval_x):
    r = kl_result
    assert not r.failures and r.model == "AutoencoderKL" and r.n_images == N
    with torch.no_grad():
        recon = (kl_vae.decode(kl_vae.encode(eval_x * 2 - 1).latent_dist.mean).sample + 1) / 2
    assert r.clean["mse"] == pytest.approx(((recon - eval_x) ** 2).flatten(1).mean(1).mean().item(), rel=1e-5)
    assert {(c["metric"], c["attack"], c["budget"]) for c in r.cells} == {
        ("attack_loss", "photoguard", 0.06), ("attack_loss", "latent_space_linf", 0.03),
        ("attack_loss", "max_damage_linf", 0.03)}
    for attack in ("latent_space_linf", "max_damage_linf"):  # L-inf budgets: the largest pixel change
        assert 0 < cell(r, "attack_loss", attack)["values"]["adv_norm_mean"] <= 0.03 + 1e-6


def test_photoguard_configuration_pulls_codes_towards_the_grey_code(kl_result, kl_vae, eval_x):
    c = cell(kl_result, "attack_loss", "photoguard")
    assert c["budget"] == 0.06  # no budgets in the protocol: the attack's own eps
    v = c["values"]
    assert 0 < v["adv_norm_mean"] <= 0.06 + 1e-6
    grey = torch.full((1, *SHAPE), 0.5)
    clean_dist = (kl_code(kl_vae, eval_x) - kl_code(kl_vae, grey)).norm(dim=1)
    # the attack moved the codes towards the grey image's code (distances in the diffusion model's units)
    assert v["attack_loss_mean"] < 0.9 * clean_dist.mean().item()


def _tiny_pythae_vae_64():
    models = pythae_models()
    torch.manual_seed(0)
    return models.VAE(models.VAEConfig(input_dim=(3, 64, 64), latent_dim=4)).eval()


@pytest.mark.parametrize("library", ["diffusers", "pythae"])
def test_evaluate_library_models_on_colour_fashion_64_at_reduced_size(library, one_thread, tmp_path):
    """The registered colour-fashion-64-v1 (its dataset at 3x64x64, its reference classifier, its ε grid)
    with fewer images and steps, on Fashion-MNIST-format files written here: a tiny AutoencoderKL and a
    tiny pythae VAE, each in one evaluate call, with the PhotoGuard configuration and the headline score."""
    import latentbench.registry as reg
    from latentbench.plugins.protocols.colour_fashion import BUDGETS
    from tests.plugins.protocols.test_colour_protocol import _write_idx, reduced_protocol

    root = tmp_path / "fashion"
    root.mkdir()
    _write_idx(root, "test", 24, 0)
    _write_idx(root, "train", 32, 1)
    reduced = reduced_protocol(
        root, "colour-fashion-64-v1-reduced", 8, metrics=({"plugin": "attack_loss"},),
        attacks=({"name": "photoguard", "plugin": "photoguard_encoder", "config": {"steps": 10}},))

    class Reduced:
        @hookimpl
        def latentbench_protocols(self):
            return [reduced]

    vae = tiny_autoencoder_kl(sample_size=64) if library == "diffusers" else _tiny_pythae_vae_64()
    before = reg._REGISTRY
    reg._REGISTRY = reg.load_registry(extra_plugins=[Reduced()])
    try:
        r = latentbench.evaluate(vae, reduced.name, n_examples=4, progress=False, store=tmp_path / "store")
    finally:
        reg._REGISTRY = before
    assert not r.failures and r.n_images == 4
    pg = cell(r, "attack_loss", "photoguard")
    assert pg["budget"] == 0.06 and 0 < pg["values"]["adv_norm_mean"] <= 0.06 + 1e-6
    head_cell = next(c for c in r.cells if c["metric"] == "robust_accuracy")["values"]
    accs = [head_cell[f"robust_accuracy@{b:g}"] for b in BUDGETS]
    assert 0 <= accs[2] <= accs[1] <= accs[0] <= head_cell["clean_accuracy"] <= 1


def test_autoencoder_kl_adapter_scales_shifts_and_flattens():
    vae = tiny_autoencoder_kl(scaling_factor=0.5, shift_factor=0.1)
    model = api_adapt(auto_adapt(vae), SHAPE, torch.device("cpu"))
    x = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        post = vae.encode(x * 2 - 1).latent_dist
        want = ((post.mean - 0.1) * 0.5).flatten(1)
        got = model.encode(x)
        assert model.config.latent_shape == [4, 16, 16] and got.mean.shape == (2, 4 * 16 * 16)
        torch.testing.assert_close(got.mean, want)
        torch.testing.assert_close(got.std, (post.std * 0.5).flatten(1))
        z = torch.randn(2, 4 * 16 * 16, generator=torch.Generator().manual_seed(4))
        want_img = (vae.decode(z.reshape(2, 4, 16, 16) / 0.5 + 0.1).sample + 1) / 2
        torch.testing.assert_close(model.decode(z), want_img)


def test_autoencoder_kl_slicing_and_tiling_are_passed_for_the_adapter_calls_only():
    from latentbench.adapters import diffusers as adapter

    vae = tiny_autoencoder_kl()
    seen = []
    real = type(vae).encode

    def spy(self, x, *a, **k):
        seen.append((self.use_slicing, self.use_tiling))
        return real(self, x, *a, **k)

    wrapped = adapter.adapt(vae, slicing=True, tiling=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(vae), "encode", spy)
        wrapped.encode(x)
    assert seen == [(True, True)]
    assert (vae.use_slicing, vae.use_tiling) == (False, False)  # the caller's VAE is as it was
    # other settings, other stored results: a buffer of the weights (whose sha256 keys the results)
    # hashes the adapter's settings
    def identity(w):
        return bytes(w.parts[0].adapter_identity.tolist())

    assert len({identity(adapter.adapt(vae)), identity(wrapped), identity(adapter.adapt(vae, scaled=False))}) == 3
    assert identity(adapter.adapt(vae)) == identity(adapter.adapt(copy.deepcopy(vae)))


def test_half_precision_autoencoder_kl_is_attacked_in_float32(one_thread):
    vae32 = tiny_autoencoder_kl()
    vae16 = copy.deepcopy(vae32).half()
    # the float32 reference with the same (rounded) weights the half model has
    ref = copy.deepcopy(vae16).float()
    dev = torch.device("cpu")
    m16, m32 = api_adapt(auto_adapt(vae16), SHAPE, dev), api_adapt(auto_adapt(ref), SHAPE, dev)
    assert next(vae16.parameters()).dtype == torch.float16  # upcast on a copy, not in place
    assert all(p.dtype == torch.float32 for p in m16.parameters() if p.is_floating_point())
    x = torch.rand(3, *SHAPE, generator=torch.Generator().manual_seed(5))
    grads = []
    for m in (m16, m32):
        xg = x.clone().requires_grad_(True)
        m.encode(xg).mean.pow(2).sum().backward()
        grads.append(xg.grad)
    assert grads[0].dtype == torch.float32 and torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    # the same attack on both: float32 throughout, the same numbers
    res = [PhotoGuardEncoder(m, steps=20, generator=torch.Generator().manual_seed(0))(x) for m in (m16, m32)]
    assert res[0].objective.dtype == torch.float32 and torch.isfinite(res[0].objective).all()
    torch.testing.assert_close(res[0].objective, res[1].objective, rtol=1e-3, atol=1e-5)
    # and close to the original float32 model (weights differ by float16 rounding only)
    m_orig = api_adapt(auto_adapt(vae32), SHAPE, dev)
    with torch.no_grad():
        a, b = m16.encode(x).mean, m_orig.encode(x).mean
    assert (a - b).norm() / b.norm() < 1e-2


def test_autoencoder_kl_on_grey_images_names_the_protocol_and_the_reason(tmp_path):
    from latentbench.api import ModelShapeError

    with pytest.raises(ModelShapeError) as e:
        latentbench.evaluate(tiny_autoencoder_kl(), "digits-v2", n_examples=4, progress=False, store=tmp_path)
    msg = str(e.value)
    for words in ("AutoencoderKL (through latentbench.adapters) does not work on protocol digits-v2's images of "
                  "shape (1, 8, 8)", "to have 3 channels", "-- evaluate it under a protocol whose images it takes"):
        assert words in msg, words


def test_adapter_refuses_other_models():
    from latentbench.adapters import diffusers as dadapter
    from latentbench.adapters import pythae as padapter

    for adapter in (dadapter, padapter):
        with pytest.raises(AdapterError, match="latentbench.wrap"):
            adapter.adapt(nn.Linear(2, 2))
    assert auto_adapt(nn.Linear(2, 2)).__class__ is nn.Linear  # not recognised: left to evaluate's checks


# -- L-inf latent attacks against closed forms ---------------------------------------------------
class LinearCode(nn.Module):
    """z = w.x (one latent dimension), decoder g(z) = v z: L-inf optima have closed forms."""

    def __init__(self, n=12):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(n, generator=g))
        self.v = nn.Parameter(torch.randn(5, generator=g))

    def encode(self, x):
        return LatentGaussian((x.flatten(1) @ self.w)[:, None])

    def decode(self, z):
        return z * self.v


def test_linf_latent_attacks_reach_the_closed_form_optimum():
    model = LinearCode()
    eps, steps = 0.05, 200
    w1 = model.w.detach().abs().sum().item()
    step = 2.5 * eps / steps
    # pixels at 0.5 +- 0.1: the [0, 1] box never binds at eps 0.05
    x = 0.5 + 0.1 * (torch.rand(3, 1, 3, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    z = (x.flatten(1) @ model.w).detach()
    g = torch.Generator().manual_seed(0)
    # latent_space towards targets: |z - z_t| shrinks by at most eps * ||w||_1 under L-inf
    target = x.flip(0)
    zt = (target.flatten(1) @ model.w).detach()
    res = LatentSpaceAttack(model, eps=eps, norm="linf", steps=steps, restarts=1, generator=g)(x, target=target)
    want = ((z - zt).abs() - eps * w1).clamp_min(0)
    assert torch.allclose(res.objective, want, atol=step * w1 + 1e-6)
    assert (res.norm <= eps + 1e-6).all()
    # PhotoGuard: the target is the grey image's code
    zg = 0.5 * model.w.detach().sum()
    res = PhotoGuardEncoder(model, eps=eps, generator=g)(x)
    assert torch.allclose(res.objective, ((z - zg).abs() - eps * w1).clamp_min(0), atol=step * w1 + 1e-6)
    # max_damage: the largest output change is ||v|| * eps * ||w||_1
    res = MaxDamageAttack(model, eps=eps, norm="linf", steps=steps, restarts=1, generator=g)(x)
    best = model.v.detach().norm() * eps * w1
    assert torch.allclose(res.objective, best.expand(3), rtol=1e-4)


def test_photoguard_config_defaults_and_checks():
    from latentbench.plugins.attacks.photoguard_encoder import PhotoGuardEncoderConfig

    cfg = PhotoGuardEncoderConfig()
    assert (cfg.eps, cfg.norm, cfg.steps, cfg.restarts, cfg.grey) == (0.06, "linf", 200, 1, 0.5)
    assert PhotoGuardEncoder.targeted is False and PhotoGuardEncoder.maximize is False
    with pytest.raises(ValueError, match="grey level in \\[0, 1\\]"):
        PhotoGuardEncoder(LinearCode(), grey=1.5)


# -- pythae ---------------------------------------------------------------------------------------
def pythae_models():
    return pytest.importorskip("pythae.models")


def tiny_pythae_vae():
    models = pythae_models()
    torch.manual_seed(0)
    return models.VAE(models.VAEConfig(input_dim=SHAPE, latent_dim=4)).eval()


@pytest.fixture(scope="module")
def pythae_vae():
    return tiny_pythae_vae()


@pytest.fixture(scope="module")
def pythae_result(pythae_vae, colour_registry, one_thread, tmp_path_factory):
    return latentbench.evaluate(pythae_vae, PROTOCOL, n_examples=N, progress=False,
                                store=tmp_path_factory.mktemp("pythae"))


def test_evaluate_pythae_vae_on_a_colour_protocol(pythae_result, pythae_vae, eval_x):
    r = pythae_result
    assert not r.failures and r.model == "VAE"
    with torch.no_grad():
        out = pythae_vae.encoder(eval_x)
        recon = pythae_vae.decoder(out.embedding).reconstruction
        grey = pythae_vae.encoder(torch.full((1, *SHAPE), 0.5)).embedding
    assert r.clean["mse"] == pytest.approx(((recon - eval_x) ** 2).flatten(1).mean(1).mean().item(), rel=1e-5)
    v = cell(r, "attack_loss", "photoguard")["values"]
    assert 0 < v["adv_norm_mean"] <= 0.06 + 1e-6
    assert v["attack_loss_mean"] < 0.9 * (out.embedding - grey).norm(dim=1).mean().item()


def test_pythae_adapter_uses_the_encoder_mean_and_log_covariance(pythae_vae):
    model = api_adapt(auto_adapt(pythae_vae), SHAPE, torch.device("cpu"))
    x = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out = pythae_vae.encoder(x)
        got = model.encode(x)
        torch.testing.assert_close(got.mean, out.embedding)
        torch.testing.assert_close(got.std, torch.exp(0.5 * out.log_covariance))
        torch.testing.assert_close(model.decode(out.embedding), pythae_vae.decoder(out.embedding).reconstruction)


# pythae networks defined here: model.save pickles them (cloudpickle) as custom networks
def _pythae_nets():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class TinyEncoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(math.prod(SHAPE), 8)

        def forward(self, x):
            h = self.net(x.flatten(1))
            return ModelOutput(embedding=h[:, :4], log_covariance=h[:, 4:])

    class TinyDecoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, math.prod(SHAPE))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, *SHAPE))

    return TinyEncoder, TinyDecoder


class Payload:
    """Unpickling this creates the file ``path``: the marker that a pickle was run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def custom_folder(tmp_path):
    """A pythae model.save folder of a VAE with custom networks, its encoder.pkl replaced by a payload."""
    models = pythae_models()
    Enc, Dec = _pythae_nets()
    torch.manual_seed(0)
    model = models.VAE(models.VAEConfig(input_dim=SHAPE, latent_dim=4), encoder=Enc(), decoder=Dec()).eval()
    folder = tmp_path / "model"
    model.save(str(folder))
    shutil.copytree(folder, tmp_path / "genuine")
    marker = tmp_path / "unpickled"
    (folder / "encoder.pkl").write_bytes(pickle.dumps(Payload(marker)))
    return folder, marker, model, Enc, Dec


def test_pythae_folder_with_pickled_networks_is_refused(custom_folder):
    from latentbench.adapters.pythae import PickleRefusedError, load

    folder, marker, _, _, _ = custom_folder
    assert sorted(p.name for p in folder.glob("*.pkl")) == ["decoder.pkl", "encoder.pkl"]
    with pytest.raises(PickleRefusedError) as e:
        load(folder)
    msg = str(e.value)
    for words in ("decoder, encoder", "decoder.pkl, encoder.pkl", "arbitrary code execution", "allow_pickle=True",
                  "trust", "decoder=..., encoder=..."):
        assert words in msg, words
    assert not marker.exists()  # nothing was unpickled


def test_pythae_folder_loads_with_networks_built_in_python(custom_folder):
    from latentbench.adapters.pythae import load

    folder, marker, model, Enc, Dec = custom_folder
    loaded = load(folder, encoder=Enc(), decoder=Dec())
    assert not marker.exists()
    x = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder(x).embedding, model.encoder(x).embedding)
    # allow_pickle=True: the caller trusts the folder, and pythae unpickles its networks
    trusted = load(folder.parent / "genuine", allow_pickle=True)
    with torch.no_grad():
        torch.testing.assert_close(trusted.decoder(torch.ones(1, 4)).reconstruction,
                                   model.decoder(torch.ones(1, 4)).reconstruction)


def test_pythae_folder_with_default_networks_loads_tensors_only(pythae_vae, tmp_path):
    from latentbench.adapters.pythae import load

    pythae_vae.save(str(tmp_path / "m"))
    loaded = load(tmp_path / "m")
    x = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder(x).embedding, pythae_vae.encoder(x).embedding)
    # a model.pt holding more than tensors needs a full unpickler: refused, not run
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    marker = tmp_path / "unpickled"
    torch.save({**state, "extra": Payload(marker)}, tmp_path / "m" / "model.pt")
    with pytest.raises(AdapterError, match="tensors only"):
        load(tmp_path / "m")
    assert not marker.exists()


def test_pythae_folder_errors_name_the_fix(tmp_path):
    from latentbench.adapters.pythae import load

    pythae_models()
    with pytest.raises(AdapterError, match="model.save"):
        load(tmp_path)
    (tmp_path / "model_config.json").write_text(json.dumps({"name": "NoSuchConfig"}))
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(AdapterError, match="no model of this pythae version"):
        load(tmp_path)
