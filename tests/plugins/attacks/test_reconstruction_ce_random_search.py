"""``reconstruction_ce`` (APGD-CE through the autoencoder) and ``random_search`` (gradient-free):
budget and box at every evaluated point, ``fooled`` and the objective recomputed independently,
closed-form linear problems, no gradients for the random search, and early exit of fooled inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins.attacks import RandomSearch, ReconstructionCE
from tests.plugins.attacks.conftest import EncodeRecorder, TinyMLPAE

SHAPE = (1, 4, 4)
D = 16


class Identity(Autoencoder):
    name = "test_identity"
    generative = False

    def __init__(self, shape=SHAPE):
        super().__init__(ModelConfig(input_shape=shape, latent_dim=int(torch.tensor(shape).prod())))

    def encode(self, x):
        return LatentGaussian(x.reshape(x.shape[0], -1))

    def decode(self, z):
        return z.reshape(z.shape[0], *self.input_shape)


def _image_classifier(seed=0, classes=3, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(D, classes).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(classes, D, generator=g, dtype=torch.float64) * scale)
        lin.bias.copy_(-lin.weight.sum(1) * 0.5)  # centred on the mid-grey image
    return nn.Sequential(nn.Flatten(), lin)


def _two_class(w: torch.Tensor, b: float):
    """logits (0, w.x + b): class 1 iff w.x + b > 0; the margin of class y is |w.x + b|."""
    lin = nn.Linear(D, 2).double()
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[1] = w
        lin.bias[1] = b
    return nn.Sequential(nn.Flatten(), lin)


def _linear_problem(distances, seed=0):
    """Interior images (box never binds within 0.25) at prescribed L2 distances from the plane w.x + b = 0,
    all on the class-0 side."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, generator=g, dtype=torch.float64)
    w_hat = w / w.norm()
    base = 0.4 + 0.2 * torch.rand(len(distances), D, generator=g, dtype=torch.float64)
    b = float(-0.5 * w.sum())  # the plane through the mid-grey image
    # move each image along w_hat so that (w.x + b)/||w|| = -distance
    base = base - ((base @ w + b) / w.norm() + torch.as_tensor(distances, dtype=torch.float64))[:, None] * w_hat
    assert float(base.min()) > 0.25 and float(base.max()) < 0.75
    x = base.reshape(-1, *SHAPE)
    return x, w, b, torch.zeros(len(distances), dtype=torch.long)


def _recompute(model, clf, x_adv, y):
    with torch.no_grad():
        return clf(model.decode(model.encode(x_adv).mean))


@pytest.mark.parametrize("cls", [ReconstructionCE, RandomSearch], ids=lambda c: c.name)
@pytest.mark.parametrize("eps,seed", [(0.05, 0), (0.4, 1), (1.5, 2), (5.0, 3)])
def test_every_evaluated_point_is_in_box_and_budget_and_fooled_is_recomputed(cls, eps, seed):
    model = TinyMLPAE(SHAPE, latent_dim=3, stochastic=False, seed=seed)
    clf = _image_classifier(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((6, *SHAPE), generator=g, dtype=torch.float64)
    x[0] = 0.0  # a corner of the box: the projection must keep it inside
    x[1] = 1.0
    with torch.no_grad():
        y = clf(model.reconstruct(x)).argmax(1)
    y[2] = (y[2] + 1) % 3  # already misclassified
    steps = 12 if cls is ReconstructionCE else 40
    atk = cls(model, generator=torch.Generator().manual_seed(seed), classifier=clf, eps=eps, steps=steps,
              restarts=2 if cls is ReconstructionCE else 1)
    rec = EncodeRecorder(model)
    res = atk(x, y=y)
    rec.assert_feasible(x, eps, "l2")
    assert float(res.x_adv.min()) >= 0 and float(res.x_adv.max()) <= 1
    assert bool(((res.x_adv - x).flatten(1).norm(dim=1) <= eps * (1 + 1e-9)).all())
    logits = _recompute(model, clf, res.x_adv, y)
    fooled = res.extra["fooled"]
    assert fooled.dtype == torch.bool and torch.equal(fooled, logits.argmax(1) != y)
    assert bool(fooled[2])  # the misclassified input stays fooled
    if cls is ReconstructionCE:  # reported objective: the cross-entropy at x_adv
        torch.testing.assert_close(res.objective, F.cross_entropy(logits, y, reduction="none"), rtol=1e-9, atol=1e-12)
    else:  # the margin max_{k != y} logit_k - logit_y at x_adv
        other = torch.stack([torch.cat([row[:k], row[k + 1:]]).max() for row, k in zip(logits, y.tolist())])
        margin = other - logits[torch.arange(6), y]
        torch.testing.assert_close(res.objective, margin, rtol=1e-9, atol=1e-12)
        assert torch.equal(fooled, margin > 0)


def test_reconstruction_ce_matches_the_closed_form_on_a_linear_two_class_problem():
    # identity autoencoder, class 1 iff w.x + b > 0: the minimal flipping perturbation has norm
    # distance = |w.x + b| / ||w||; within eps it is found, beyond it nothing can be
    eps = 0.2
    dist = torch.tensor([0.05, 0.1, 0.15, 0.18, 0.22, 0.3, 0.5, 0.21])
    x, w, b, y = _linear_problem(dist)
    clf = _two_class(w, b)
    res = ReconstructionCE(Identity(), generator=torch.Generator().manual_seed(0), classifier=clf, eps=eps, steps=20,
                           restarts=1)(x, y=y)
    torch.testing.assert_close((x.flatten(1) @ w + b).abs() / w.norm(), dist.double())  # the setup itself
    assert res.extra["fooled"].tolist() == (dist < eps).tolist()
    # fooled inputs left the batch at the first check (10 steps); the others ran all 20 (+ final evaluation)
    per_input = res.extra["forward_passes_per_input"]
    assert per_input[dist < eps].tolist() == [10] * int((dist < eps).sum())
    assert per_input[dist >= eps].tolist() == [21] * int((dist >= eps).sum())
    # an unbroken input ends at the closed-form best point: the sphere point along -w... (towards class 1)
    unbroken = dist >= eps
    best = x.flatten(1) + eps * w / w.norm()
    torch.testing.assert_close(res.x_adv.flatten(1)[unbroken], best[unbroken], rtol=0, atol=2e-3)


def test_random_search_finds_a_fooling_point_well_inside_the_ball():
    # the plane is at 0.3 eps from every image: random search (no gradients) must cross it everywhere;
    # images 1.5 eps away can never be fooled and keep querying to the end of the budget
    eps, steps = 0.2, 300
    dist = torch.tensor([0.3] * 6 + [1.5] * 2) * eps
    x, w, b, y = _linear_problem(dist)
    clf = _two_class(w, b)
    res = RandomSearch(Identity(), generator=torch.Generator().manual_seed(0), classifier=clf, eps=eps,
                       steps=steps)(x, y=y)
    assert res.extra["fooled"].tolist() == [True] * 6 + [False] * 2
    assert res.backward_passes == 0
    per_input = res.extra["forward_passes_per_input"]
    assert per_input[6:].tolist() == [steps + 1] * 2  # clean margin + `steps` proposals
    assert int(per_input[:6].max()) < steps + 1  # fooled inputs left early


class _CountingClassifier(nn.Module):
    """Records each call's rows and whether autograd was on; backward through it raises."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.batches: list[torch.Tensor] = []
        self.grad_enabled: list[bool] = []

    def forward(self, r):
        self.batches.append(r.detach().clone())
        self.grad_enabled.append(torch.is_grad_enabled())
        return _NoBackward.apply(self.inner(r))


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, g):
        raise AssertionError("random_search must not backpropagate")


def test_random_search_uses_no_gradients_and_stops_querying_fooled_inputs():
    eps, steps = 0.1, 120
    # 0: misclassified from the start; 1-3: crossable well inside the ball; 4-5: not crossable
    dist = torch.tensor([0.3, 0.3, 0.3, 0.3, 1.5, 1.5]) * eps
    x, w, b, y = _linear_problem(dist, seed=4)
    y[0] = 1
    # the images are farther apart than 2 eps, so each evaluated row names its input (the nearest)
    gap = torch.cdist(x.flatten(1), x.flatten(1)) + 10 * torch.eye(len(x), dtype=x.dtype)
    assert float(gap.min()) > 2 * eps
    clf = _CountingClassifier(_two_class(w, b))
    x_in = x.clone().requires_grad_(True)  # even an input on a graph is not differentiated
    res = RandomSearch(Identity(), generator=torch.Generator().manual_seed(1), classifier=clf, eps=eps,
                       steps=steps)(x_in, y=y)
    assert not any(clf.grad_enabled)
    fooled = res.extra["fooled"]
    assert fooled.tolist() == [True, True, True, True, False, False]
    # count the queries per input independently: every evaluated row is within eps of its own input
    counts = torch.zeros(len(x), dtype=torch.long)
    for batch in clf.batches:
        d = torch.cdist(batch.flatten(1), x.detach().flatten(1))
        owner = d.argmin(1)
        assert bool((d.min(1).values <= eps * (1 + 1e-9)).all())
        counts += torch.bincount(owner, minlength=len(x))
    assert torch.equal(counts, res.extra["forward_passes_per_input"])
    assert counts[0] == 2  # fooled at the clean image: the clean margin and the start, never a proposal
    assert counts[4:].tolist() == [steps + 1] * 2
    # an input found fooled leaves at the next check (every 10 queries): fewer than 10 queries wasted
    with torch.no_grad():
        for i in (1, 2, 3):
            rows = [bt[(torch.cdist(bt.flatten(1), x.detach().flatten(1)).argmin(1) == i)] for bt in clf.batches]
            seq = torch.cat([r for r in rows if len(r)])
            m = (seq.flatten(1) @ w + b)  # class-1 logit minus class-0 logit: > 0 fooled
            first = int(torch.nonzero(m > 0).flatten()[0])  # the query that first crossed the plane
            assert len(seq) - 1 - first <= 10, (i, first, len(seq))


def test_reconstruction_ce_stops_fooled_inputs_across_restarts():
    eps = 0.2
    dist = torch.tensor([0.05, 0.05, 0.3, 0.3])
    x, w, b, y = _linear_problem(dist, seed=2)
    clf = _two_class(w, b)
    res = ReconstructionCE(Identity(), generator=torch.Generator().manual_seed(0), classifier=clf, eps=eps, steps=30,
                           restarts=3)(x, y=y)
    per_input = res.extra["forward_passes_per_input"]
    # every restart of a fooled input leaves at the first check; the others run 3 x (30 + 1)
    assert per_input.tolist() == [3 * 10, 3 * 10, 3 * 31, 3 * 31]
    assert res.forward_passes == 3 * 31


def test_both_need_an_image_classifier_and_labels():
    model = Identity()
    x = torch.rand((2, *SHAPE), dtype=torch.float64)
    for cls in (ReconstructionCE, RandomSearch):
        with pytest.raises(ValueError, match="classifier"):
            cls(model)
        with pytest.raises(ValueError, match="labels"):
            cls(model, classifier=_image_classifier())(x)
        with pytest.raises(ValueError, match="labels"):
            cls(model, classifier=_image_classifier())(x, y=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="l2"):
        RandomSearch(model, classifier=_image_classifier(), norm="linf")
    with pytest.raises(ValueError, match="schedule"):
        ReconstructionCE(model, classifier=_image_classifier(), schedule="cosine")
