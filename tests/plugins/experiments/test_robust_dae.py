"""robust_dae_tables (Saseendran (thesis) Tables 5.1/5.4/5.7, Robust-DAE appendix Table 1): smoke run, the quoted document values
against the seed text, and the findings' verdicts on hand-made tables."""

import math
import re

import pytest
import torch

from latentbench.plugins.experiments.robust_dae import (DOC_ABLATIONS_MNIST, DOC_TABLE_51_FMNIST, DOC_TABLE_57_FMNIST, LAMBDAS,
                                          SIZES, findings, model_specs)
from tests import REPO_ROOT

# a maintainers' check of the transcribed numbers against the papers' texts, run where those texts lie
# beside the repository (as in CI); skipped elsewhere
SEEDS = REPO_ROOT.parent / "shared" / "seeds"
SEED_003 = next(iter(SEEDS.glob("003_*.txt")), None)
SEED_004 = next(iter(SEEDS.glob("004_*.txt")), None)


@pytest.fixture(scope="module")
def smoke_run(run_smoke):
    out, runs = run_smoke("robust_dae_tables")
    return out, runs["robust_dae_tables"]


def test_smoke_run_writes_figures_tables_and_findings(smoke_run, check_artifacts):
    out, res = smoke_run
    payload = check_artifacts(out, "robust_dae_tables", res)
    assert len(res.figures) == 2
    labels = [m for m, _, _ in model_specs(SIZES["smoke"])]
    rows = res.tables["MS-SSIM and FID (Saseendran (thesis) Table 5.1 / 5.4, Robust-DAE appendix Table 1)"]
    assert [r["model"] for r in rows] == labels
    for r in rows:
        for lam in LAMBDAS:
            for key in ("LS x_t~xa", "LS x~xa", "MD xr~xa", "MD x~xa"):
                assert -1e-6 <= r[f"{key} @{lam:g}"] <= 1 + 1e-6  # MS-SSIM of images in [0, 1], ReLU'd cs terms
        assert math.isfinite(r["FID"]) and r["FID"] >= -1e-6
    for r in res.tables["L2 distances (Saseendran (thesis) Fig. 5.7)"]:
        assert all(math.isfinite(v) and v >= 0 for k, v in r.items() if k != "model")
    for r in res.tables["downstream MLP probe (Saseendran (thesis) Table 5.7, %)"]:
        assert all(0 <= r[k] <= 100 for k in ("clean_acc", "latent_attack_acc@1", "downstream_pgd_acc@1"))
    assert any("MS-SSIM configuration" in n for n in payload["notes"])


def _numbers(line):
    return [float(v) for v in re.findall(r"\d+\.\d+", re.sub(r"</?b>", "", line))]


@pytest.mark.skipif(SEED_003 is None, reason="seed documents not present")
def test_quoted_table_51_fashion_mnist_rows_match_the_thesis_text():
    text = SEED_003.read_text()
    block = text[text.index("FASHIONMNIST\tLatent space attack"):text.index("SVHN\tLatent space attack")]
    names = {"VAE": "VAE\t", "beta-VAE": "$\\beta$ -VAE", "beta-TCVAE": "$\\beta$ -TCVAE", "SE": "SE\t", "Ours": "Ours\t"}
    for label, (ls, md, fid) in DOC_TABLE_51_FMNIST.items():
        line = next(ln for ln in block.splitlines() if ln.startswith(names[label]))
        nums = _numbers(line.split("\t", 1)[1])
        # columns: LS(x_r, x~_a) x3, LS(x_r, x_a) x3, MD(x~_r, x~_a) x3, MD(x_r, x_a) x3, FID
        assert nums[0:3] == ls and nums[6:9] == md and nums[12] == fid, label


@pytest.mark.skipif(SEED_003 is None or SEED_004 is None, reason="seed documents not present")
def test_quoted_ablation_and_downstream_values_match_the_documents():
    t003, t004 = SEED_003.read_text(), SEED_004.read_text()
    abl = t003[t003.index("Method\tLatent space attack\t\t\tMaximum"):t003.index("Table 5.4 Ablation")]
    for label, key in (("GMM-DAE", "GMM-DAE [161]"), ("Augmented", "Augmented"), ("Ours", "Ours")):
        line = next(ln for ln in abl.splitlines() if ln.startswith(key))
        ls, md, fid = DOC_ABLATIONS_MNIST[label]
        assert _numbers(line.replace("[161]", "")) == ls + md + [fid], label
    for label in ("Unimodal-Ours", "PGD-Ours"):
        line = next(ln for ln in t004.splitlines() if ln.startswith(label + " "))
        ls, md, fid = DOC_ABLATIONS_MNIST[label]
        assert _numbers(line) == ls + md + [fid], label
    t57 = t003[t003.index("Method\tMNIST\t\tFASHIONMNIST"):t003.index("Table 5.7 Robustness")]
    for label, key in (("VAE", "VAE\t"), ("beta-TCVAE", "$\\beta$ -TCVAE"), ("SE", "SE\t"), ("Ours", "Ours\t")):
        line = next(ln for ln in t57.splitlines() if ln.startswith(key))
        assert tuple(_numbers(line)[2:4]) == DOC_TABLE_57_FMNIST[label], label


def _row(model, ls, md, fid=50.0):
    return {"model": model, **{f"LS x_t~xa @{l:g}": v for l, v in zip(LAMBDAS, ls)},
            **{f"MD xr~xa @{l:g}": v for l, v in zip(LAMBDAS, md)}, "FID": fid, "train_s": 1.0}


def _table(robust_order):
    """Rows where robustness follows ``robust_order`` (most robust first), monotone in lambda."""
    rows = []
    for k, m in enumerate(robust_order):
        # neighbours in the order differ by 0.08 MS-SSIM, more than the 0.05 "comparable" tolerance
        rows.append(_row(m, [0.1 + 0.08 * k + 0.05 * i for i in range(3)], [0.95 - 0.08 * k - 0.05 * i for i in range(3)],
                         fid=40.0 + 5 * k))
    return rows


def _down(best):
    return [{"model": m, "clean_acc": 90.0 if m == best else 80.0, "latent_attack_acc@1": 70.0 if m == best else 50.0}
            for m in ("VAE", "beta-VAE", "beta-TCVAE", "SE", "GMM-DAE", "Augmented", "Ours", "Unimodal-Ours",
                      "PGD-Ours")]


def test_findings_hold_on_a_table_ordered_as_the_documents_claim():
    order = ["PGD-Ours", "Ours", "Augmented", "Unimodal-Ours", "SE", "GMM-DAE", "beta-TCVAE", "beta-VAE", "VAE"]
    res = findings(_table(order), _down("Ours"))
    verdicts = {f.claim: f.holds for f in res}
    assert all(verdicts.values()), [c for c, v in verdicts.items() if not v]


def test_findings_fail_when_the_order_is_reversed():
    order = ["VAE", "beta-VAE", "beta-TCVAE", "GMM-DAE", "SE", "Unimodal-Ours", "Augmented", "Ours", "PGD-Ours"]
    verdicts = {f.claim: f.holds for f in findings(_table(order), _down("VAE"))}
    failing = [c for c, v in verdicts.items() if v is False]
    # every robustness/fidelity/accuracy ranking claim fails; monotonicity in lambda still holds
    assert len(failing) == len(verdicts) - 1
    assert verdicts["Saseendran (thesis) Table 5.1: both attacks succeed more as lambda grows (LS MS-SSIM rises, MD MS-SSIM falls) "
                    "for every model"]


def test_same_seed_gives_the_same_tables_whatever_the_global_rng_state(smoke_run, rerun_smoke, tmp_path):
    """docs/methods.md §0: same config and seed -> same numbers, even after other code drew from the global RNG."""
    _, first = smoke_run
    torch.rand(1000)  # what an import or an earlier experiment might do
    again = rerun_smoke("robust_dae_tables", tmp_path)
    for key in ("MS-SSIM and FID (Saseendran (thesis) Table 5.1 / 5.4, Robust-DAE appendix Table 1)", "downstream MLP probe (Saseendran (thesis) Table 5.7, %)"):
        strip = [{k: v for k, v in r.items() if k != "train_s"} for r in first.tables[key]]
        assert [{k: v for k, v in r.items() if k != "train_s"} for r in again.tables[key]] == strip
