"""se_downstream (Cemgil et al. Fig. 4 / 7a): smoke run, the ColorMNIST construction, the smooth encoder's
random-selection control, and the findings' verdicts on hand-made tables."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from latentbench.data import Split
from latentbench.plugins.experiments.smooth_encoder import CUBE_COLOURS, SIZES, colourise, findings
from latentbench.plugins.models.smooth_encoder import SmoothEncoder, SmoothEncoderConfig


@pytest.fixture(scope="module")
def smoke_run(run_smoke):
    out, runs = run_smoke("se_downstream")
    return out, runs["se_downstream"]


def test_smoke_run_writes_figure_tables_and_findings(smoke_run, check_artifacts):
    out, res = smoke_run
    check_artifacts(out, "se_downstream", res)
    assert len(res.figures) == 1 and res.figures[0].endswith("se_downstream_adv_accuracy.png")
    rows = res.tables["downstream accuracy (Cemgil et al. Fig. 4 / 7a)"]
    size = SIZES["smoke"]
    # VAE + 2 PGD-selection SEs + 2 random-selection SEs, each on the colour and the class task
    assert len(rows) == (1 + 2 * len(size.radii)) * 2
    for r in rows:
        vals = [r["nominal"]] + [r[f"adv@{b:g}"] for b in size.budgets]
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in vals)
    for t in res.tables["training"]:
        assert math.isfinite(t["train_seconds"]) and 0 <= t["active_units"] <= size.latent_dim


def test_colourise_uses_the_seven_non_black_cube_corners():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 1, 4, 4)
    out = colourise(Split(x, torch.arange(500) % 10), g)
    corners = {tuple(c) for c in CUBE_COLOURS.int().tolist()}
    assert corners == {(r, gg, b) for r in (0, 1) for gg in (0, 1) for b in (0, 1)} - {(0, 0, 0)}
    for i in range(500):
        c = CUBE_COLOURS[out.y["colour"][i]]
        # every channel is the grey image itself (colour 1) or zero (colour 0)
        for ch in range(3):
            assert torch.equal(out.x[i, ch], x[i, 0] * c[ch])
    # all seven colours are drawn, roughly uniformly (chi-square against 1/7 each)
    counts = np.bincount(out.y["colour"].numpy(), minlength=7)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert torch.equal(out.y["class"], torch.arange(500) % 10)
    with pytest.raises(ValueError, match="grey images"):
        colourise(Split(torch.rand(2, 3, 4, 4), torch.zeros(2)), g)


def _se(selection, eps, norm, shape=(1, 2, 2)):
    return SmoothEncoder(SmoothEncoderConfig(input_shape=shape, latent_dim=2, hidden=[8], selection=selection,
                                             selection_eps=eps, selection_norm=norm))


def test_random_selection_is_uniform_in_the_linf_ball_and_never_runs_the_attack(monkeypatch):
    model = _se("random", 0.1, "linf")
    monkeypatch.setattr(model, "selection_attack", lambda *a, **k: pytest.fail("random selection ran the attack"))
    x = torch.full((4000, 1, 2, 2), 0.5)  # far from the box, so the ball is not clipped
    g = torch.Generator().manual_seed(1)
    d = (model.select(x, g) - x).flatten().numpy()
    assert np.abs(d).max() <= 0.1 + 1e-7
    # each coordinate uniform on [-0.1, 0.1]
    assert stats.kstest(d, stats.uniform(loc=-0.1, scale=0.2).cdf).pvalue > 1e-3


def test_random_selection_is_uniform_in_the_l2_ball():
    model = _se("random", 0.2, "l2")
    x = torch.full((4000, 1, 2, 2), 0.5)
    r = (model.select(x, torch.Generator().manual_seed(2)) - x).reshape(4000, -1).norm(dim=1).double()
    assert float(r.max()) <= 0.2 + 1e-6
    # uniform in the 4-dimensional ball: P(||d|| <= t) = (t / eps)^4, so (||d|| / eps)^4 ~ U(0, 1)
    assert stats.kstest(((r / 0.2) ** 4).numpy(), "uniform").pvalue > 1e-3


def test_random_selection_stays_in_the_box_and_pgd_selection_is_different():
    x = torch.rand(64, 1, 2, 2)
    xr = _se("random", 0.3, "linf").select(x, torch.Generator().manual_seed(3))
    assert float(xr.min()) >= 0 and float(xr.max()) <= 1
    torch.manual_seed(0)
    pgd_model = _se("pgd", 0.3, "linf")
    xp = pgd_model.select(x)
    # PGD's point maximises W2, so on average it moves the code more than a random point of the same ball
    w = lambda xs: (pgd_model.encode(xs).mean - pgd_model.encode(x).mean).pow(2).sum(1).mean()
    with torch.no_grad():
        xr_same = _se("random", 0.3, "linf").select(x, torch.Generator().manual_seed(3))
        assert float(w(xp)) > float(w(xr_same))


def test_unknown_selection_is_rejected_by_name():
    with pytest.raises(ValueError, match="selection 'nearest' unknown: use one of pgd, random"):
        SmoothEncoderConfig(selection="nearest").validate()


def _per_seed(adv, nominal, budgets=(0.1, 0.3)):
    """adv / nominal: {model: [accuracy per budget]} / {model: accuracy}, the same for both tasks ->
    stored per-seed correctness: the first round(acc * 40) of 40 images correct, in every seed."""
    def correct(acc):
        row = (np.arange(40) < round(acc * 40)).astype(float)
        return np.tile(row, (3, 1)).tolist()

    models = {m: {t: {"nominal": correct(nominal[m]), **{f"adv@{b:g}": correct(a) for b, a in zip(budgets, adv[m])}}
                  for t in ("class", "colour")} for m in adv}
    return {"meta": {"seeds": [0, 1, 2], "budgets": list(budgets), "radii": [0.1, 0.2], "near_zero": 0.1,
                     "same_nominal": 0.02, "near_perfect": 0.95}, "models": models}


MODELS = ["VAE", "SE eps=0.1", "SE eps=0.2", "SE random eps=0.1", "SE random eps=0.2"]


def test_findings_are_recomputed_from_stored_results():
    good = {"VAE": [0.3, 0.0], "SE eps=0.1": [0.8, 0.5], "SE eps=0.2": [0.85, 0.6],
            "SE random eps=0.1": [0.35, 0.05], "SE random eps=0.2": [0.4, 0.05]}
    nominal = {m: 1.0 for m in MODELS}  # 39 of 40 correct could not show ">= 0.95" at 95%
    assert [f.verdict for f in findings(_per_seed(good, nominal))] == ["holds"] * 7
    # the VAE keeps its accuracy and beats the SEs; the SE radii differ by 0.2 in nominal accuracy
    bad = {**good, "VAE": [0.9, 0.9]}
    f2 = {f.claim.split(" (")[0]: f for f in findings(_per_seed(bad, {**nominal, "SE eps=0.2": 0.8}))}
    assert f2["VAE adversarial accuracy quickly drops towards zero as the attack radius grows"].verdict == "does not hold"
    assert f2["SE keeps a higher adversarial accuracy than the VAE"].verdict == "does not hold"
    assert f2["SE nominal accuracy is virtually identical for the two selection radii"].verdict == "does not hold"
    # identical curves (ties) neither prove nor refute the SE claim
    tie = {**good, "SE eps=0.1": [0.3, 0.0], "SE eps=0.2": [0.3, 0.0]}
    f3 = [f for f in findings(_per_seed(tie, nominal)) if f.claim.startswith("SE keeps")]
    assert [f.verdict for f in f3] == ["inconclusive", "inconclusive"]
    # the VAE's drop: effect = its accuracy at the largest radius, against the 0.1 threshold
    first = findings(_per_seed(good, nominal))[0]
    assert first.effect == pytest.approx(0.0) and first.threshold == 0.1


def test_same_seed_gives_the_same_tables_whatever_the_global_rng_state(smoke_run, rerun_smoke, tmp_path):
    """docs/methods.md §0: same config and seed -> same numbers, even after other code drew from the global RNG."""
    _, first = smoke_run
    torch.rand(1000)  # what an import or an earlier experiment might do
    again = rerun_smoke("se_downstream", tmp_path, seeds=1)
    # the first seed's per-image results do not depend on how many seeds run after it
    for model, tasks in again.per_seed["models"].items():
        for task, cols in tasks.items():
            for k, v in cols.items():
                assert v == first.per_seed["models"][model][task][k][:1], (model, task, k)
    first_seed = [t["final_loss"] for t in first.tables["training"] if t["seed"] == 0]
    assert [t["final_loss"] for t in again.tables["training"]] == first_seed
