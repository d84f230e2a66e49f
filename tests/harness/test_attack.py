"""The attack base class: a third-party attack that holds only a config and an objective gets
projection, random starts, restarts, step sizes, the solvers, the budget check and best-of-restarts
selection from :class:`latentbench.Attack`; results are checked against closed forms and against
restarts run one at a time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from latentbench import Attack, AttackConfig, Autoencoder, LatentGaussian, ModelConfig, SolverAttackConfig
from latentbench.errors import NonFiniteError
from latentbench.perturbation import flat_norm, random_start

SHAPE = (1, 3, 4)
N = 12


class LinearCode(Autoencoder):
    """One-dimensional code z = w . vec(x) (float64): attacks on it have closed-form optima."""

    name = "test_linear_code"

    def __init__(self, w: torch.Tensor):
        super().__init__(ModelConfig(input_shape=SHAPE, latent_dim=1))
        self.register_buffer("w", w.reshape(1, N))

    def encode(self, x):
        return LatentGaussian(x.reshape(x.shape[0], -1) @ self.w.T, None)

    def decode(self, z):
        return z.expand(-1, N).reshape(-1, *SHAPE)


# -- a third-party attack as a plugin author writes it: config + objective, nothing else -----------

@dataclass
class PushConfig(AttackConfig):
    eps: float = 0.2
    norm: str = "l2"
    steps: int = 40
    restarts: int = 3


class PushCode(Attack):
    """Maximise the code w . x."""

    name = "test_push_code"
    config_class = PushConfig

    def objective(self, x_adv):
        return self.encode_mean(x_adv)[:, 0]


@dataclass
class PushSolverConfig(SolverAttackConfig):
    eps: float = 0.2
    norm: str = "l2"
    steps: int = 100
    restarts: int = 2


class PushCodeSolver(PushCode):
    name = "test_push_code_solver"
    config_class = PushSolverConfig


def _w(seed=0):
    return torch.randn(N, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _x(B=4, seed=1):
    # pixels in [0.3, 0.7]: a budget of 0.2 (L2 or L-inf) never reaches the box, so optima are analytic
    return 0.3 + 0.4 * torch.rand((B, *SHAPE), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _code(x, w):
    return x.reshape(x.shape[0], -1) @ w


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_objective_only_attack_reaches_the_closed_form_optimum(norm):
    w, x, eps = _w(), _x(), 0.2
    # max_{||d|| <= eps} w.(x + d): d = eps w/||w||_2 (L2, by Cauchy-Schwarz) or eps sign(w) (L-inf)
    d_star = eps * (w / w.norm() if norm == "l2" else w.sign())
    opt = _code(x, w) + eps * (w.norm() if norm == "l2" else w.abs().sum())
    # L2 with step eps: on the sphere each step halves the angle to w, so 40 steps converge to ~1e-12;
    # L-inf with the default 2.5 eps / steps: sign steps reach the vertex after 2 eps of travel
    kw = dict(step_size=eps) if norm == "l2" else {}
    res = PushCode(LinearCode(w), generator=torch.Generator().manual_seed(0), norm=norm, eps=eps, **kw)(x)
    torch.testing.assert_close(res.x_adv, x + d_star.reshape(SHAPE), rtol=0, atol=1e-9)
    torch.testing.assert_close(res.objective, opt, rtol=1e-12, atol=0)
    torch.testing.assert_close(res.norm, torch.full((4,), eps, dtype=torch.float64), rtol=1e-9, atol=0)
    # passes from the base: (steps + 2) objective calls per restart, steps gradients per restart
    assert res.forward_passes == (40 + 1) * 3 and res.backward_passes == 40 * 3
    assert res.budget == eps and res.config == {"attack": "test_push_code", "eps": eps, "norm": norm, "steps": 40,
                                                "step_size": kw.get("step_size"), "restarts": 3,
                                                "random_start": True}
    assert res.extra == {}


def test_minimising_attack_reaches_the_opposite_vertex():
    class PullCode(PushCode):
        name = "test_pull_code"
        maximize = False

    w, x, eps = _w(2), _x(), 0.2
    res = PullCode(LinearCode(w), generator=torch.Generator().manual_seed(0), norm="linf", eps=eps)(x)
    torch.testing.assert_close(res.x_adv, x - eps * w.sign().reshape(SHAPE), rtol=0, atol=1e-12)
    torch.testing.assert_close(res.objective, _code(x, w) - eps * w.abs().sum(), rtol=1e-12, atol=0)


def test_lbfgsb_solver_from_the_config_reaches_the_closed_form_optimum():
    # L2: the threat model the L-BFGS-B variant serves (Saseendran (thesis) §5.4, docs/methods.md §2)
    w, x, eps = _w(3), _x(), 0.2
    opt = _code(x, w) + eps * w.norm()
    res = PushCodeSolver(LinearCode(w), generator=torch.Generator().manual_seed(0), eps=eps, solver="lbfgsb")(x)
    assert torch.all(res.objective <= opt * (1 + 1e-12))  # nothing in the ball beats the optimum
    torch.testing.assert_close(res.objective, opt, rtol=1e-6, atol=0)
    assert res.extra == {"solver": "lbfgsb"}  # the base records which solver ran


def test_restarts_are_one_start_draw_each_and_the_best_is_kept():
    # sin(40 w.x) has many local maxima in the ball: restarts matter, and each input keeps its best
    class Wavy(PushCode):
        name = "test_wavy"

        def objective(self, x_adv):
            return torch.sin(40 * self.encode_mean(x_adv)[:, 0])

    w, x, eps, R = _w(4), _x(8), 0.2, 5
    model = LinearCode(w)
    kw = dict(norm="l2", eps=eps, steps=6)
    many = Wavy(model, generator=torch.Generator().manual_seed(7), restarts=R, **kw)(x)
    # restart r alone: a single-restart run whose generator has already made the r earlier start draws
    singles = []
    for r in range(R):
        g = torch.Generator().manual_seed(7)
        for _ in range(r):
            random_start(x, eps, "l2", g)
        singles.append(Wavy(model, generator=g, restarts=1, **kw)(x))
    objs = torch.stack([s.objective for s in singles])  # (R, B)
    torch.testing.assert_close(many.objective, objs.max(0).values, rtol=0, atol=1e-12)
    best = objs.argmax(0)
    x_best = torch.stack([singles[int(r)].x_adv[i] for i, r in enumerate(best)])
    torch.testing.assert_close(many.x_adv, x_best, rtol=0, atol=1e-12)
    assert len(set(best.tolist())) > 1  # the test means something: different inputs keep different restarts
    # restart 0 is the single-start run with the same seed, so R restarts are never worse than one
    assert torch.all(many.objective >= singles[0].objective - 1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_more_restarts_never_worse_than_one_with_the_same_seed(seed, norm):
    class Wavy(PushCode):
        name = "test_wavy"

        def objective(self, x_adv):
            return torch.sin(40 * self.encode_mean(x_adv)[:, 0])

    model, x = LinearCode(_w(seed)), _x(6, seed)
    one = Wavy(model, generator=torch.Generator().manual_seed(seed), norm=norm, steps=5, restarts=1)(x)
    for R in (2, 4):
        many = Wavy(model, generator=torch.Generator().manual_seed(seed), norm=norm, steps=5, restarts=R)(x)
        # (1e-12: R * B rows and B rows may round differently in the matrix product)
        assert torch.all(many.objective >= one.objective - 1e-12)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_every_point_the_objective_sees_is_in_box_and_budget(norm):
    # w > 0 on inputs near 1 pushes every pixel out of the box: projection must hold it there
    seen = []

    class Recording(PushCode):
        name = "test_recording"

        def objective(self, x_adv):
            seen.append(x_adv.detach().clone())
            return super().objective(x_adv)

    w = _w(5).abs() + 0.1
    x = 0.9 + 0.1 * torch.rand((3, *SHAPE), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    eps = 0.5
    res = Recording(LinearCode(w), generator=torch.Generator().manual_seed(0), norm=norm, eps=eps, steps=10,
                    step_size=eps, restarts=2)(x)
    assert len(seen) == 10 + 1  # the start (with the first step), 9 more steps, the last iterate
    for batch in seen:
        assert batch.shape == (6, *SHAPE)  # restarts are batched: R * B rows
        assert float(batch.min()) >= 0 and float(batch.max()) <= 1
        d = batch - x.repeat(2, 1, 1, 1)  # restart-major copies of x
        assert torch.all(flat_norm(d, norm) <= eps * (1 + 1e-12))
    # the optimum inside the box is every pixel at 1 (reachable: ||1 - x|| <= eps in both norms here)
    assert torch.all(flat_norm(1 - x, norm) <= eps)
    torch.testing.assert_close(res.x_adv, torch.ones_like(x), rtol=0, atol=1e-6)


def test_prepare_context_report_and_pass_counts():
    # targeted: min ||mu(x + d) - mu(x_t)||^2, reported as the distance (Saseendran (thesis) eq. 5.11's shape)
    class ToTarget(Attack):
        name = "test_to_target"
        config_class = PushConfig
        targeted = True
        maximize = False
        prepare_forward_passes = 1

        def prepare(self, x, y=None, target=None):
            assert not torch.is_grad_enabled()  # the base computes the context without a graph
            return (self.encode_mean(target),)

        def objective(self, x_adv, z_target):
            return (self.encode_mean(x_adv) - z_target).pow(2).sum(1)

        def report(self, objective):
            return objective.sqrt()

    w, x, eps = _w(6), _x(2), 0.2
    # targets whose code is reachable: half a budget along w
    target = x + 0.5 * eps * (w / w.norm()).reshape(SHAPE)
    atk = ToTarget(LinearCode(w), generator=torch.Generator().manual_seed(0), eps=eps, step_size=eps / 4)
    with pytest.raises(ValueError, match="target"):
        atk(x)
    res = atk(x, target=target)
    torch.testing.assert_close(res.objective, (_code(res.x_adv, w) - _code(target, w)).abs(), rtol=1e-9, atol=0)
    assert torch.all(res.objective <= w.norm() * eps / 4)  # within one step of the target code
    assert res.forward_passes == (40 + 1) * 3 + 1 and res.backward_passes == 40 * 3


def test_zero_steps_keeps_the_best_start_and_no_random_start_returns_x():
    w, x, eps = _w(8), _x(5), 0.2
    model = LinearCode(w)
    res = PushCode(model, generator=torch.Generator().manual_seed(3), steps=0, restarts=4)(x)
    g = torch.Generator().manual_seed(3)
    starts = torch.stack([random_start(x, eps, "l2", g) for _ in range(4)])  # (R, B, ...): one draw per restart
    codes = torch.stack([_code(s, w) for s in starts])
    torch.testing.assert_close(res.objective, codes.max(0).values, rtol=0, atol=1e-12)
    # (1e-12: the solver re-projects its starts, x + (start - x) may differ from start in the last bit)
    torch.testing.assert_close(res.x_adv, starts[codes.argmax(0), torch.arange(5)], rtol=0, atol=1e-12)
    plain = PushCode(model, steps=0, restarts=2, random_start=False)(x)
    assert torch.equal(plain.x_adv, x)


def test_default_step_is_2_5_eps_over_steps_and_a_subclass_can_change_it():
    model = LinearCode(_w())
    assert PushCode(model, eps=0.4, steps=10).step_size() == 2.5 * 0.4 / 10
    assert PushCode(model, eps=0.4, steps=10, step_size=0.03).step_size() == 0.03

    class OneStep(PushCode):
        step_factor = 1.25

    assert OneStep(model, eps=0.4, steps=1).step_size() == 1.25 * 0.4


def test_attack_without_objective_or_perturb_says_what_to_define():
    class Empty(Attack):
        name = "test_empty"

    with pytest.raises(NotImplementedError, match="objective"):
        Empty(LinearCode(_w()))(_x())


def test_non_finite_objective_raises_naming_the_attack():
    class Nan(PushCode):
        name = "test_nan"

        def objective(self, x_adv):
            return super().objective(x_adv) * float("nan")

    with pytest.raises(NonFiniteError, match="test_nan"):
        Nan(LinearCode(_w()), steps=2)(_x())


@pytest.mark.parametrize("cls,data,match", [
    (PushConfig, dict(step_size=0.0), "step_size"),
    (PushConfig, dict(norm="l1"), "norm"),
    (PushConfig, dict(eps=-1.0), "eps"),
    (PushConfig, dict(restarts=0), "restarts"),
    (PushSolverConfig, dict(solver="adam"), "solver"),
])
def test_config_validation_is_the_base_classes(cls, data, match):
    with pytest.raises(ValueError, match=match):
        cls(**data).validate()


def test_attack_runs_in_eval_mode_and_restores_training():
    class ModeCheck(PushCode):
        name = "test_mode"

        def objective(self, x_adv):
            assert not self.model.training
            return super().objective(x_adv)

    model = LinearCode(_w()).train()
    ModeCheck(model, steps=2)(_x())
    assert model.training


def test_out_of_budget_result_of_a_perturb_override_is_refused():
    class Cheat(Attack):
        name = "test_cheat"
        config_class = PushConfig

        def perturb(self, x, y=None, target=None):
            x_adv = (x + 2 * self.config.eps).clamp(0, 1)
            return self.make_result(x, x_adv, self.encode_mean(x_adv)[:, 0], 1, 0)

    with pytest.raises(AssertionError, match="budget"):
        Cheat(LinearCode(_w()))(_x())


def test_attacks_run_with_frozen_parameters_and_restore_them(monkeypatch):
    """Attacks need input gradients only: parameters are frozen while the attack runs (no weight
    gradients computed), restored afterwards, and the result is the same as with them trainable."""
    from latentbench.plugins.attacks import MaxDamageAttack
    from latentbench.plugins.models.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 16, 16), latent_dim=4, backbone="conv", conv_channels=[4, 8])).eval()
    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(any(p.requires_grad for p in model.parameters())))
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(1))

    def run():
        return MaxDamageAttack(model, generator=torch.Generator().manual_seed(2), eps=0.5, norm="l2", steps=3, restarts=2)(x)

    frozen_run = run()
    assert seen and not any(seen)  # no forward pass of the attack saw a trainable parameter
    assert all(p.requires_grad for p in model.parameters())
    # the same attack with the freezing undone inside: identical input gradients, identical result
    import contextlib

    import latentbench.attack as attack_module

    monkeypatch.setattr(attack_module, "frozen", lambda *modules: contextlib.nullcontext())
    trainable_run = run()
    assert torch.equal(frozen_run.x_adv, trainable_run.x_adv)
    assert torch.equal(frozen_run.objective, trainable_run.objective)
