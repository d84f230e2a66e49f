"""table51_factors: the smoke run, the findings on hand-made stored results, and the two other
MS-SSIM scorings against pytorch-msssim itself."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentbench.plugins.experiments.robust_dae import COLUMNS, LAMBDAS
from latentbench.plugins.experiments.table51_factors import FACTORS, MODELS, SIZES, UPSAMPLED, _rescored, findings
from tests.plugins.experiments.stored import noisy


@pytest.fixture(scope="module")
def smoke_run(run_smoke):
    out, runs = run_smoke("table51_factors")
    return out, runs["table51_factors"]


def test_smoke_run_writes_figures_tables_and_findings(smoke_run, check_artifacts):
    out, res = smoke_run
    payload = check_artifacts(out, "table51_factors", res)
    assert [f["claim"].split(":")[0] for f in payload["findings"]] == [f for f in FACTORS for _ in ("VAE", "SE")]
    # every factor scored every model on the same pairs per seed: all trials, the first for the protocol attack
    n = {f: {len(v[0]) for m in MODELS for v in res.per_seed["factors"][f][m].values()} for f in FACTORS}
    per_trial = SIZES["smoke"].images_per_trial
    assert n["protocol attack"] == {per_trial}
    assert all(v == {per_trial * SIZES["smoke"].trials} for f, v in n.items() if f != "protocol attack")


def _stored(better_under):
    """Ours clearly more robust than VAE and SE under the factors in ``better_under``, clearly less
    robust under the others (0.1 MS-SSIM apart in every column)."""
    factors = {}
    for f in FACTORS:
        k = 1 if f in better_under else -1
        by_model = {}
        for j, m in enumerate(MODELS):
            gap = 0.0 if m == "Ours" else 0.1 * k
            by_model[m] = {f"{col}@{lam:g}": noisy(0.5 + (-sign) * gap, scale=1e-3, seed=j * 7 + i)
                           for name, col, sign in COLUMNS for i, lam in enumerate(LAMBDAS)}
        factors[f] = by_model
    return {"meta": {"seeds": [0, 1, 2], "lambdas": list(LAMBDAS), "factors": list(FACTORS)}, "factors": factors}


def test_findings_follow_the_stored_orderings_per_factor():
    res = findings(_stored({"3x training"}))
    verdicts = {f.claim.split(":")[0] + " / " + f.claim.split("than ")[1].split(" ")[0]: f.verdict for f in res}
    for f in FACTORS:
        want = "holds" if f == "3x training" else "does not hold"
        assert verdicts[f"{f} / VAE"] == want and verdicts[f"{f} / SE"] == want, f


def test_the_other_scorings_match_pytorch_msssim_and_ssim():
    """5 scales at 176 px: pytorch-msssim's own ms_ssim with its defaults on the upsampled pair; 1 scale:
    its ssim with the small-image window (7 taps, sigma 1.0), per image."""
    import pytorch_msssim

    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 32, 32, generator=g)
    b = (a + 0.2 * torch.randn(3, 1, 32, 32, generator=g)).clamp(0, 1)
    five, one = _rescored({"p": (a, b)})["p"]
    up = [F.interpolate(t, size=(UPSAMPLED, UPSAMPLED), mode="bilinear", align_corners=False).clamp(0, 1) for t in (a, b)]
    want5 = pytorch_msssim.ms_ssim(*up, data_range=1.0, size_average=False)
    want1 = pytorch_msssim.ssim(a, b, data_range=1.0, size_average=False, win_size=7, win_sigma=1.0)
    np.testing.assert_allclose(five, want5.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one, want1.numpy(), rtol=1e-5, atol=1e-6)
    # identical images score 1 under both
    same5, same1 = _rescored({"p": (a, a)})["p"]
    np.testing.assert_allclose(same5, 1.0, atol=1e-6)
    np.testing.assert_allclose(same1, 1.0, atol=1e-6)
