"""``robust_accuracy`` (the headline score) against independent computations: a plain PGD-L2 written
here on the bare classifier (identity autoencoder), closed forms (constant autoencoder, a linear
autoencoder with a linear two-class classifier), each sanity flag on a model built to trip it, the
resume state, and bad input. Every test brings its own small classifier (``ctx.classifier``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins.metrics import robust_accuracy as ra_module
from latentbench.plugins.metrics.robust_accuracy import FLAGS, RobustAccuracy
from latentbench.plugins.models.reference import ConstantAutoencoder, ConstantConfig, IdentityAutoencoder, IdentityConfig

#: a cheap ensemble: the first attack strong enough for the closed forms, the others a few steps
CHEAP = dict(ce_steps=20, ce_restarts=2, latent_targets=1, latent_steps=3, max_damage_steps=3, random_queries=10,
             check_subset=40, batch_size=512)


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: a second thread only adds synchronisation (about 10x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def metric(**kw) -> RobustAccuracy:
    return RobustAccuracy(**{**CHEAP, **kw})


def context(model, x, y, clf, cache_dir, train=None, num_classes=None, seed=0):
    return MetricContext(model=model, x=x, y=y, dataset="test", device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(seed), seed=seed,
                         train_x=None if train is None else train[0], train_y=None if train is None else train[1],
                         num_classes=num_classes or int(y.max()) + 1, classifier=lambda: clf, cache_dir=cache_dir)


def flags_of(res) -> dict[str, bool]:
    return {k[len("flag_"):]: bool(v) for k, v in res.values.items() if k.startswith("flag_")}


def binomial_tol(p: float, n: int) -> float:
    return 3 * math.sqrt(max(p * (1 - p), 0.0) / n) + 1.0 / n


# -- digits and a linear softmax classifier trained here ----------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, Y = load_digits(return_X_y=True)
    x = torch.tensor(X / 16.0, dtype=torch.float64).reshape(-1, 1, 8, 8)
    y = torch.tensor(Y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, ev = perm[:500], perm[500:650]
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double()
    opt = torch.optim.Adam(clf.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(clf(x[tr]), y[tr]).backward()
        opt.step()
    torch.set_num_threads(threads)
    clf.requires_grad_(False)
    return {"train": (x[tr], y[tr]), "eval": (x[ev], y[ev]), "clf": clf}


def plain_pgd_l2_robust(clf, x, y, eps, steps, restarts, seed):
    """Independent PGD-L2 on the bare classifier's cross-entropy: uniform start in the ball, steps of
    2.5 eps / steps along the normalised gradient, box clip then radial rescale into the ball. An image
    is robust when it is classified correctly and no evaluated point of any restart fools it."""
    g = torch.Generator().manual_seed(seed)
    B, d = len(x), x[0].numel()
    xf = x.reshape(B, d)
    with torch.no_grad():
        robust = clf(x).argmax(1) == y
    for _ in range(restarts):
        u = torch.randn(B, d, generator=g, dtype=x.dtype)
        u = u / u.norm(dim=1, keepdim=True)
        r = eps * torch.rand(B, 1, generator=g, dtype=x.dtype) ** (1.0 / d)
        xa = xf + r * u
        for t in range(steps + 1):
            xa = xa.clamp(0, 1)
            delta = xa - xf
            nrm = delta.norm(dim=1, keepdim=True)
            xa = xf + delta * torch.where(nrm > eps, eps / nrm, torch.ones_like(nrm))
            xa = xa.detach().requires_grad_(True)
            logits = clf(xa.reshape(x.shape))
            robust &= logits.argmax(1) == y
            if t == steps:
                break
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xa)
            xa = xa.detach() + 2.5 * eps / steps * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return robust


def test_identity_autoencoder_scores_the_classifiers_own_robust_accuracy(digits, tmp_path):
    clf = digits["clf"]
    x, y = digits["eval"]
    budgets = [0.2, 0.4, 0.6]
    model = IdentityAutoencoder(IdentityConfig(input_shape=(1, 8, 8)))
    res = metric(budgets=budgets)(context(model, x, y, clf, tmp_path, train=digits["train"], num_classes=10))
    v, n = res.values, len(x)
    with torch.no_grad():
        clean = float((clf(x).argmax(1) == y).double().mean())
    assert v["clean_accuracy"] == clean  # r(x) = x: exactly the classifier's accuracy
    for eps in budgets:
        ref = float(plain_pgd_l2_robust(clf, x, y, eps, CHEAP["ce_steps"], CHEAP["ce_restarts"], seed=1)
                    .double().mean())
        got = v[f"robust_accuracy@{eps:g}"]
        assert 0.05 < ref < clean  # a budget where the comparison means something
        assert abs(got - ref) <= binomial_tol(ref, n), (eps, got, ref)
    # the curve falls with eps and its mean is the headline
    accs = [v[f"robust_accuracy@{e:g}"] for e in budgets]
    assert accs == sorted(accs, reverse=True)
    assert v["robust_accuracy_mean"] == pytest.approx(sum(accs) / 3, abs=1e-15)
    assert not any(flags_of(res)[k] for k in ("collapsed", "constant_output", "vanishing_gradients", "stochastic",
                                              "unbounded_not_broken", "gradient_masking"))


def test_constant_autoencoder_closed_form_and_flags(digits, tmp_path):
    clf = digits["clf"]
    (xt, yt), (x, y) = digits["train"], digits["eval"]
    model = ConstantAutoencoder(ConstantConfig(input_shape=(1, 8, 8))).double()
    model.on_train_start([(xt, yt)])
    mean_image = xt.mean(0)
    torch.testing.assert_close(model.image, mean_image)
    with torch.no_grad():
        c = int(clf(mean_image[None]).argmax(1))
    share = float((y == c).double().mean())  # the share of the class the classifier gives the image
    budgets = [0.25, 0.5, 1.0]
    res = metric(budgets=budgets)(context(model, x, y, clf, tmp_path, train=digits["train"], num_classes=10))
    v = res.values
    assert v["clean_accuracy"] == share
    for eps in budgets:  # no attack can change a constant output
        assert v[f"robust_accuracy@{eps:g}"] == share
    assert v["robust_accuracy_mean"] == share
    f = flags_of(res)
    assert f["collapsed"] and f["constant_output"] and f["vanishing_gradients"] and f["unbounded_not_broken"]
    assert not f["gradient_masking"] and not f["nonmonotone"] and not f["stochastic"]
    assert v["output_spread"] < 1e-12 and v["zero_gradient_fraction"] == 1.0
    assert set(res.info["flags"]) == {k for k, on in f.items() if on}
    assert all(res.info["flag_messages"][k] == FLAGS[k] for k in res.info["flags"])


# -- a linear autoencoder and a linear two-class classifier: closed-form minimal perturbations ----------

D = 16  # 1 x 4 x 4 images


class LinearAE(Autoencoder):
    """r(x) = Dec Enc x (a rank-k linear map)."""

    name = "test_linear_ae"
    generative = False

    def __init__(self, enc, dec):
        super().__init__(ModelConfig(input_shape=(1, 4, 4), latent_dim=enc.shape[0]))
        self.register_buffer("enc", enc)
        self.register_buffer("dec", dec)

    def encode(self, x):
        return LatentGaussian(x.reshape(x.shape[0], -1) @ self.enc.T)

    def decode(self, z):
        return (z @ self.dec.T).reshape(z.shape[0], 1, 4, 4)


def two_class(w, b):
    """logits (0, w.r + b): class 1 iff w.r + b > 0."""
    lin = nn.Linear(D, 2).double()
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[1] = w
        lin.bias[1] = b
    return nn.Sequential(nn.Flatten(), lin).requires_grad_(False)


def linear_setup(n=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = 10
    enc = torch.randn(k, D, generator=g, dtype=torch.float64) / math.sqrt(D)
    dec = torch.randn(D, k, generator=g, dtype=torch.float64) / math.sqrt(k)
    model = LinearAE(enc, dec)
    P = dec @ enc  # r(x) = P x
    w = torch.randn(D, generator=g, dtype=torch.float64)
    # images in [0.3, 0.7]: a perturbation of L2 norm <= 0.3 never leaves the box
    x = 0.3 + 0.4 * torch.rand(n, D, generator=g, dtype=torch.float64)
    s = x @ P.T @ w
    b = -float(s.median())
    y = (s + b > 0).long()
    dist = (s + b).abs() / (P.T @ w).norm()  # the minimal flipping perturbation's norm
    return model, two_class(w, b), x.reshape(n, 1, 4, 4), y, dist


def test_linear_autoencoder_breaks_exactly_the_images_within_the_closed_form_distance(tmp_path):
    model, clf, x, y, dist = linear_setup()
    budgets = [0.05, 0.1, 0.2]
    res = metric(budgets=budgets)(context(model, x, y, clf, tmp_path, num_classes=2))
    assert res.values["clean_accuracy"] == 1.0
    tol = 0.03
    for eps in budgets:
        robust = torch.as_tensor(res.per_sample[f"robust@{eps:g}"]).bool()
        inside, outside = dist < eps * (1 - tol), dist > eps
        assert 0 < int(inside.sum()) < len(x) and int(outside.sum()) > 0  # both kinds present
        assert not bool(robust[inside].any()), f"eps={eps}: an image within {eps} of the boundary survived"
        assert bool(robust[outside].all()), f"eps={eps}: an image farther than {eps} was broken (impossible)"
        assert res.values[f"robust_accuracy@{eps:g}"] == pytest.approx(float((dist > eps).double().mean()),
                                                                      abs=float(((dist >= eps * (1 - tol)) &
                                                                                 (dist <= eps)).double().mean()))
    # the gradient attack finds them all: nothing is left for the gradient-free one
    assert res.values["gradient_free_fraction"] == 0.0


def test_without_early_stopping_the_robust_flags_are_the_same(tmp_path):
    model, clf, x, y, dist = linear_setup(n=40, seed=1)
    kw = dict(budgets=[0.05, 0.1])
    a = metric(early_stop=True, **kw)(context(model, x, y, clf, tmp_path / "a", num_classes=2))
    b = metric(early_stop=False, **kw)(context(model, x, y, clf, tmp_path / "b", num_classes=2))
    for eps in ("0.05", "0.1"):
        assert (a.per_sample[f"robust@{eps}"] == b.per_sample[f"robust@{eps}"]).all()


# -- sanity flags ----------------------------------------------------------------------------------------

def clusters(n=60, seed=0, gap=0.1):
    """Two classes of interior images, mean pixel 0.5 -/+ gap, classified by the sign of sum(x) - D/2.
    Distance to the boundary ~ gap * sqrt(D) = 0.4 - noise; nearest other-class image ~ 0.5 away."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.5 + (2 * y[:, None].double() - 1) * gap + 0.1 * (torch.rand(n, D, generator=g, dtype=torch.float64) - 0.5)
    w = torch.ones(D, dtype=torch.float64)
    return x.reshape(n, 1, 4, 4), y, two_class(w, -D / 2), (x @ w - D / 2).abs() / w.norm()


class Identity16(IdentityAutoencoder):
    def __init__(self):
        super().__init__(IdentityConfig(input_shape=(1, 4, 4)))


def test_no_flag_on_a_normal_small_model(tmp_path):
    x, y, clf, dist = clusters(gap=0.05)
    budgets = [0.1, 0.2, 0.3]
    assert 0.1 < float((dist < 0.2).double().mean()) < 0.9  # some images breakable, some not
    train = clusters(n=40, seed=1, gap=0.08)[:2]  # farther from the other class than the largest budget
    res = metric(budgets=budgets)(context(Identity16(), x, y, clf, tmp_path, train=train, num_classes=2))
    assert set(flags_of(res)) == set(FLAGS)  # every flag is reported
    assert not any(flags_of(res).values()), res.info["flags"]
    assert res.values["robust_accuracy@0.2"] == float((dist > 0.2).double().mean())


class RoundingAE(Autoencoder):
    """r(x) = round(k x) / k: piecewise constant, so every input gradient is exactly zero, but the
    output still follows the input (a gradient-free attack can move it)."""

    name = "test_rounding_ae"
    generative = False

    def __init__(self, k=20):
        super().__init__(ModelConfig(input_shape=(1, 4, 4), latent_dim=D))
        self.k = k

    def encode(self, x):
        return LatentGaussian(torch.round(self.k * x.reshape(x.shape[0], -1)) / self.k)

    def decode(self, z):
        return z.reshape(z.shape[0], 1, 4, 4)


def test_masked_gradients_raise_gradient_masking_and_vanishing_gradients(tmp_path):
    x, y, clf, dist = clusters(gap=0.05)
    res = metric(budgets=[0.1, 0.3], random_queries=100)(context(RoundingAE(), x, y, clf, tmp_path, num_classes=2))
    v, f = res.values, flags_of(res)
    assert v["zero_gradient_fraction"] == 1.0 and f["vanishing_gradients"]
    assert v["broken_first_by_random_search@0.3"] / len(x) > 0.02
    assert f["gradient_masking"] and v["gradient_free_fraction"] == v["broken_first_by_random_search@0.3"] / len(x)
    # the same data and classifier through the identity: the gradient attack does the work, no flag
    ok = metric(budgets=[0.1, 0.3], random_queries=100)(context(Identity16(), x, y, clf, tmp_path, num_classes=2))
    assert not flags_of(ok)["gradient_masking"] and not flags_of(ok)["vanishing_gradients"]
    assert ok.values["robust_accuracy@0.3"] <= v["robust_accuracy@0.3"]


class NoisyAE(Identity16):
    """encode adds fresh noise on every call (a sampling encoder passed off as deterministic)."""

    def encode(self, x):
        z = x.reshape(x.shape[0], -1)
        return LatentGaussian(z + 1e-4 * torch.randn(z.shape, dtype=z.dtype))


def test_stochastic_encoder_is_flagged(tmp_path):
    x, y, clf, _ = clusters(n=20)
    torch.manual_seed(0)
    f = flags_of(metric(budgets=[0.1])(context(NoisyAE(), x, y, clf, tmp_path, num_classes=2)))
    assert f["stochastic"]
    f = flags_of(metric(budgets=[0.1])(context(Identity16(), x, y, clf, tmp_path, num_classes=2)))
    assert not f["stochastic"]


def test_one_step_is_flagged_not_converged(tmp_path):
    # Every image lies 0.97 eps from the boundary of a linear classifier (identity autoencoder). One
    # APGD step (size 2 eps from a random start r u, |r| ~ eps in 16 dimensions, projected back into
    # the ball) reaches at most ~(2 + r u.g) / |r u + 2 g| ~ 0.93 eps along the gradient g, so with
    # ce_steps=1 nothing is broken; the doubled run's second step (momentum) lands within 0.97 eps of
    # the optimum and breaks them: robust accuracy moves by ~1 > 0.03. With 20 vs 40 steps both break all.
    g = torch.Generator().manual_seed(0)
    n, eps = 30, 0.2
    w = torch.randn(D, generator=g, dtype=torch.float64)
    w_hat = w / w.norm()
    base = 0.4 + 0.2 * torch.rand(n, D, generator=g, dtype=torch.float64)
    b = -float(0.5 * w.sum())
    x = base - ((base @ w + b) / w.norm() + 0.97 * eps)[:, None] * w_hat  # all class 0, 0.97 eps away
    assert float(x.min()) > 0.2 and float(x.max()) < 0.8
    x, y, clf = x.reshape(n, 1, 4, 4), torch.zeros(n, dtype=torch.long), two_class(w, b)
    one = metric(budgets=[eps], ce_steps=1)(context(Identity16(), x, y, clf, tmp_path, num_classes=2))
    assert one.values["double_steps_change"] > 0.03 and flags_of(one)["not_converged"]
    many = metric(budgets=[eps], ce_steps=20)(context(Identity16(), x, y, clf, tmp_path, num_classes=2))
    assert many.values["double_steps_change"] == 0.0 and not flags_of(many)["not_converged"]
    assert many.values[f"robust_accuracy@{eps:g}"] == 0.0


class PocketClassifier(nn.Module):
    """Class 1 only inside small balls (radius rho) around pockets c_i = x_i + d v_i, class 0 elsewhere."""

    def __init__(self, centres, rho, scale=100.0):
        super().__init__()
        self.register_buffer("c", centres.reshape(len(centres), -1))
        self.rho, self.scale = rho, scale

    def forward(self, r):
        d2 = torch.cdist(r.reshape(len(r), -1), self.c).pow(2).amin(1)
        return torch.stack([torch.zeros_like(d2), self.scale * (self.rho ** 2 - d2)], 1)


def test_attack_too_weak_at_the_larger_budget_is_flagged_nonmonotone(tmp_path):
    # Pockets at distance d = eps1 from each image. With one APGD step (2 eps towards the pocket from
    # a random start, projected back onto the ball) the attack lands on the eps1-sphere near the pocket
    # (within ~0.3 d) and breaks the image; at eps2 = 2 d the same step lands on the 2d-sphere, at
    # least d from the pocket, and the other attacks are too short to search the ball's interior:
    # images broken at eps1 survive eps2. The reported curve still never rises.
    g = torch.Generator().manual_seed(0)
    n, d = 24, 0.1
    x = 0.4 + 0.2 * torch.rand(n, D, generator=g, dtype=torch.float64)
    v = torch.randn(n, D, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    clf = PocketClassifier(x + d * v, rho=0.45 * d)
    x, y = x.reshape(n, 1, 4, 4), torch.zeros(n, dtype=torch.long)
    res = metric(budgets=[d, 2 * d], ce_steps=1, latent_steps=1, max_damage_steps=1, random_queries=1)(
        context(Identity16(), x, y, clf, tmp_path, num_classes=2))
    raw1 = res.per_sample[f"first_breaking_attack@{d:g}"] >= 0
    raw2 = res.per_sample[f"first_breaking_attack@{2 * d:g}"] >= 0
    assert raw1.mean() > 0.5 and (raw1 & ~raw2).mean() > 0.01
    assert res.values["nonmonotone_fraction"] == (raw1 & ~raw2).mean()
    assert flags_of(res)["nonmonotone"]
    assert res.values[f"robust_accuracy@{2 * d:g}"] <= res.values[f"robust_accuracy@{d:g}"]
    assert res.values[f"robust_accuracy@{2 * d:g}"] == 1 - (raw1 | raw2).mean()


def test_budget_reaching_another_class_is_flagged(tmp_path):
    x, y, clf, _ = clusters(n=20)
    far = clusters(n=20, seed=1)[:2]
    base = metric(budgets=[0.1, 0.3])
    quiet = base(context(Identity16(), x, y, clf, tmp_path, train=far, num_classes=2))
    # the nearest image of another class, computed here over training and evaluation images
    ref_x = torch.cat([far[0], x]).flatten(1)
    ref_y = torch.cat([far[1], y])
    dd = torch.cdist(x.flatten(1), ref_x)
    dd[y[:, None] == ref_y[None, :]] = math.inf
    assert quiet.values["nearest_other_class_min"] == pytest.approx(float(dd.min(1).values.min()), rel=1e-12)
    assert quiet.values["nearest_other_class_median"] == pytest.approx(float(dd.min(1).values.median()), rel=1e-12)
    assert quiet.values["nearest_other_class_min"] > 0.3 and not flags_of(quiet)["budget_reaches_other_class"]
    # a training image of class 1 at L2 distance 0.25 (< 0.3) from evaluation image 0 (class 0)
    near_x = (x[0] + 0.25 / 4).clamp(0, 1)  # +0.0625 on all 16 pixels: norm 0.25
    train = (torch.cat([far[0], near_x[None]]), torch.cat([far[1], torch.tensor([1])]))
    res = base(context(Identity16(), x, y, clf, tmp_path, train=train, num_classes=2))
    assert res.values["nearest_other_class_min"] == pytest.approx(0.25, rel=1e-9)
    assert flags_of(res)["budget_reaches_other_class"]
    # float32 training images against float64 evaluation images are fine
    res32 = base(context(Identity16(), x, y, clf, tmp_path, train=(train[0].float(), train[1]), num_classes=2))
    assert res32.values["nearest_other_class_min"] == pytest.approx(0.25, rel=1e-6)


# -- resume ------------------------------------------------------------------------------------------

class Killed(RuntimeError):
    pass


class CountingIdentity(IdentityAutoencoder):
    """The identity on digits, counting encoder calls; raises after ``limit`` calls (a killed run)."""

    def __init__(self, limit=None):
        super().__init__(IdentityConfig(input_shape=(1, 8, 8)))
        self.calls, self.limit = 0, limit

    def encode(self, x):
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            raise Killed("killed")
        return super().encode(x)


def test_a_killed_run_resumes_without_recomputing_saved_stages(digits, tmp_path, monkeypatch):
    clf = digits["clf"]
    x, y = digits["eval"][0][:60], digits["eval"][1][:60]
    assert int((clf(x).argmax(1) != y).sum()) > 0  # some images never attacked (saved as no fidelity)
    cfg = dict(budgets=[0.25, 0.5], batch_size=16)
    current = {"model": None}
    log: dict[str, list] = {"put": [], "get": []}
    orig_put, orig_get = ra_module._State.put, ra_module._State.get

    def put(self, stage, value):  # log the encoder calls spent when each stage is saved
        log["put"].append((stage, current["model"].calls))
        orig_put(self, stage, value)

    def get(self, stage):
        log["get"].append((stage, current["model"].calls))
        return orig_get(self, stage)

    monkeypatch.setattr(ra_module._State, "put", put)
    monkeypatch.setattr(ra_module._State, "get", get)

    def run(model, cache):
        current["model"] = model
        log["put"].clear()
        log["get"].clear()
        return metric(**cfg)(context(model, x, y, clf, cache, train=digits["train"], num_classes=10))

    # the uninterrupted run, in its own cache folder
    fresh = CountingIdentity()
    ref = run(fresh, tmp_path / "fresh")
    saves = list(log["put"])
    setup = log["get"][0][1]  # calls before the first stage: clean reconstructions and codes
    stages = [s for s, _ in saves]
    assert stages[:4] == ["0.25/reconstruction_ce", "0.25/latent_space", "0.25/max_damage", "0.25/random_search"]
    assert stages[-1] == "checks" and len(stages) == 9

    # killed in the middle of the sixth stage (0.5/latent_space), after five saved stages
    limit = (saves[4][1] + saves[5][1]) // 2
    assert saves[4][1] < limit < saves[5][1]
    cache = tmp_path / "resumed"
    with pytest.raises(Killed):
        run(CountingIdentity(limit), cache)
    (state_file,) = list((cache / "robust_accuracy").glob("*.json"))
    assert list(json.loads(state_file.read_text())["stages"]) == stages[:5]

    again = CountingIdentity()
    res = run(again, cache)
    # only the missing stages run again, and the five saved ones cost no encoder call
    assert [s for s, _ in log["put"]] == stages[5:]
    assert again.calls == fresh.calls - (saves[4][1] - setup)
    assert res.values == ref.values
    assert res.per_sample.keys() == ref.per_sample.keys()
    assert all((res.per_sample[k] == ref.per_sample[k]).all() for k in ref.per_sample)
    assert res.info["flags"] == ref.info["flags"] and res.info["examples"] == ref.info["examples"]
    # a third run finds every stage saved: the set-up and the example grid's two reconstructions remain
    third = CountingIdentity()
    assert run(third, cache).values == ref.values
    assert log["put"] == [] and third.calls == setup + 2


def test_the_resume_state_is_keyed_by_the_classifier(tmp_path):
    # a caller-supplied classifier is not named by the config: another one in the same cache folder
    # must not pick up the first one's saved stages
    model, clf, x, y, dist = linear_setup(n=40, seed=2)
    w = clf[1].weight[1].clone()
    b = float(clf[1].bias[1])
    shifted = two_class(w, b + 0.02 * float(w.norm()))  # moves the boundary: other images robust
    cfg = dict(budgets=[0.05, 0.1])
    metric(**cfg)(context(model, x, y, clf, tmp_path / "shared", num_classes=2))
    shared = metric(**cfg)(context(model, x, y, shifted, tmp_path / "shared", num_classes=2))
    alone = metric(**cfg)(context(model, x, y, shifted, tmp_path / "alone", num_classes=2))
    first = metric(**cfg)(context(model, x, y, clf, tmp_path / "first", num_classes=2))
    assert shared.values == alone.values and alone.values != first.values
    assert len(list((tmp_path / "shared" / "robust_accuracy").glob("*.json"))) == 2


def test_bad_input_gives_a_clear_error(tmp_path):
    x, y, clf, _ = clusters(n=10)
    m = metric(budgets=[0.1])

    def run(xx, yy, **kw):
        return m(context(Identity16(), xx, yy, clf, tmp_path, num_classes=2, **kw))

    with pytest.raises(LatentBenchError, match="labelled"):
        run(x, None)
    bad = x.clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(LatentBenchError, match="NaN or inf"):
        run(bad, y)
    bad[0, 0, 0, 0] = math.inf
    with pytest.raises(LatentBenchError, match="NaN or inf"):
        run(bad, y)
    with pytest.raises(LatentBenchError, match=r"\[0, 1\]"):
        run(x * 255, y)
    with pytest.raises(LatentBenchError, match=r"class indices in \[0, 2\)"):
        run(x, y + 2)
    with pytest.raises(LatentBenchError, match="one label per image"):
        run(x, y[:5])
    with pytest.raises(LatentBenchError, match="non-empty"):
        run(x[:0], y[:0])
    with pytest.raises(ValueError, match="budgets"):
        RobustAccuracy(budgets=[0.5, 0.25])
    with pytest.raises(ValueError, match="ce_steps"):
        RobustAccuracy(ce_steps=0)
