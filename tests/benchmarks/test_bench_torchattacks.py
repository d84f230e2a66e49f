"""LatentBench's PGD (``downstream_pgd``) against torchattacks' PGD and PGDL2 at equal settings.

The task is Cemgil et al.'s downstream attack: a linear probe on the encoder mean of a Fashion-MNIST-
sized MLP autoencoder, batch 256, one restart, the same step size (2.5 eps / steps) and a random start
for both. Reported per setting: the speed-up (torchattacks median / LatentBench median, interleaved
rounds) and both adversarial accuracies -- a faster attack that fools fewer inputs is no gain, so the
test also asserts LatentBench's adversarial accuracy is at most torchattacks' (plus one image).

torchattacks is a benchmark-only dependency (``pip install --no-deps torchattacks``: it pins an old
``requests``); without it the test is skipped. Run: ``bash scripts/bench.sh`` or
``python -m pytest tests/benchmarks/test_bench_torchattacks.py --benchmark-only -s``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentbench.plugins.attacks.downstream_pgd import DownstreamPGD
from latentbench.solvers import default_step_size
from tests.benchmarks._versus import versus
from tests.benchmarks.test_bench_attacks import BenchMLPAE

torchattacks = pytest.importorskip("torchattacks")

B = 256
#: budgets at which torchattacks leaves a fair share of inputs unbroken (so accuracy can be compared)
#: random-start seeds over which the adversarial accuracies are averaged
SEEDS = (0, 1, 2)
SETTINGS = [("linf", 0.03, 20), ("linf", 0.03, 100), ("l2", 0.5, 20), ("l2", 0.5, 100)]
#: regression floors of the speed-up (torchattacks time / LatentBench time), per setting: about 85% of
#: the medians measured at one thread on a quiet 2-core machine (0.95, 1.18, 0.84, 0.98 over three
#: runs). The issue's goal is >= 1x everywhere; at 20 steps the early exit of broken inputs cannot
#: yet pay for what torchattacks does not do (the clean and the final evaluation: 2 forward passes
#: of 22, keep-best, the float64 start draw), see docs/scaling.md
FLOORS = {("linf", 20): 0.8, ("linf", 100): 1.0, ("l2", 20): 0.7, ("l2", 100): 0.85}


class CodeClassifier(nn.Module):
    """probe(encoder mean): the module torchattacks attacks."""

    def __init__(self, model, probe):
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, x):
        return self.probe(self.model.encode(x).mean)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = BenchMLPAE().eval()
    probe = nn.Linear(32, 10).eval()
    x = torch.rand((B, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = probe(model.encode(x).mean).argmax(1)  # every input starts correctly classified
    for p in [*model.parameters(), *probe.parameters()]:
        p.requires_grad_(False)
    return model, probe, x, y


@pytest.mark.parametrize("norm,eps,steps", SETTINGS, ids=[f"{n}-{e:g}-{s}" for n, e, s in SETTINGS])
def test_bench_pgd_vs_torchattacks(benchmark, setup, norm, eps, steps):
    model, probe, x, y = setup
    alpha = default_step_size(eps, steps, None)
    ta_cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    ta = ta_cls(CodeClassifier(model, probe), eps=eps, alpha=alpha, steps=steps, random_start=True)
    ours = DownstreamPGD(model, classifier=probe, eps=eps, norm=norm, steps=steps, restarts=1,
                         generator=torch.Generator().manual_seed(0))

    def run_ours():
        return ours(x, y=y)

    def run_ta():
        return ta(x, y)

    cmp = versus(benchmark, run_ours, run_ta, rounds=5)
    # strength, outside the timing: mean adversarial accuracy over a few seeds of the random start
    # (one seed's difference of an image or two is start noise, not strength)
    accs_ours, accs_ta, checks = [], [], []
    for seed in SEEDS:
        torch.manual_seed(seed)  # torchattacks draws its start from the global generator
        x_ta = ta(x, y)
        res = DownstreamPGD(model, classifier=probe, eps=eps, norm=norm, steps=steps, restarts=1,
                            generator=torch.Generator().manual_seed(seed))(x, y=y)
        accs_ta.append(_accuracy(model, probe, x_ta, y))  # both re-classified independently of the attacks
        checks.append(_accuracy(model, probe, res.x_adv, y))
        accs_ours.append(1.0 - float(res.extra["fooled"].double().mean()))
    acc_ours, acc_ta = sum(accs_ours) / len(SEEDS), sum(accs_ta) / len(SEEDS)
    # the same attack without a random start on either side: deterministic, so any difference is
    # the implementation's (step, projection, keep-best), not the start
    det_ours = DownstreamPGD(model, classifier=probe, eps=eps, norm=norm, steps=steps, restarts=1, random_start=False)(x, y=y)
    det_ta = ta_cls(CodeClassifier(model, probe), eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    det_acc_ours, det_acc_ta = _accuracy(model, probe, det_ours.x_adv, y), _accuracy(model, probe, det_ta, y)
    benchmark.extra_info.update({"adv_accuracy_latentbench": acc_ours, "adv_accuracy_torchattacks": acc_ta,
                                 "adv_accuracy_no_random_start_latentbench": det_acc_ours,
                                 "adv_accuracy_no_random_start_torchattacks": det_acc_ta,
                                 "seeds": len(SEEDS), "norm": norm, "eps": eps, "steps": steps, "batch": B})
    print(f"\n{norm} eps {eps:g} {steps} steps, batch {B}: LatentBench {cmp.subject_s * 1e3:.0f} ms, torchattacks "
          f"{cmp.reference_s * 1e3:.0f} ms -> {cmp.speedup:.2f}x; adversarial accuracy (mean of {len(SEEDS)} seeds) "
          f"{acc_ours:.3f} vs {acc_ta:.3f}; without random start {det_acc_ours:.3f} vs {det_acc_ta:.3f}")
    assert checks == pytest.approx(accs_ours)
    assert 0.0 < acc_ta < 1.0, "pick a budget at which the comparison of strengths means something"
    assert det_acc_ours <= det_acc_ta
    if norm == "linf":
        assert acc_ours <= acc_ta + 1.0 / B
    # L2 with a random start is reported, not asserted: LatentBench starts uniformly in the ball
    # (radius eps * U^(1/n), docs/methods.md §0) where torchattacks draws the radius uniformly
    # (eps * U, mostly near the centre); at 784 pixels every LatentBench start spends the whole budget
    # on a random direction, which costs about two images in 256 here and is the start, not the steps
    assert cmp.speedup >= FLOORS[(norm, steps)]


def _accuracy(model, probe, x_adv, y) -> float:
    with torch.no_grad():
        return float((probe(model.encode(x_adv).mean).argmax(1) == y).double().mean())
