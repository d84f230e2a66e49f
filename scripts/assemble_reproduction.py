"""Assemble REPRODUCTION.md from docs/reproduction/<experiment>.md and each run's results.json.

Run from the repository root after `latentbench reproduce NAME --size full`:
    python scripts/assemble_reproduction.py

Each docs/reproduction/<experiment>.md gets its generated verdict block refreshed from results.json
(latentbench.experiment.refresh_doc); REPRODUCTION.md gets the summary table of every finding with its
test, effect, 95% interval, p-value, seeds x images and computed verdict, and the counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from latentbench.experiment import refresh_doc, reproduction_summary

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "reproduction"
ORDER = [("beta_sweep", "1"), ("mixup", "2"), ("eigen_attack_grid", "3"), ("se_downstream", "4"),
         ("grid_gans", "5"), ("lc_vae", "5"), ("robust_dae_tables", "6")]
#: experiments that test our explanations of a difference from a document, not a document's claims:
#: their sections follow the experiment they explain, their findings stay out of the summary's counts
EXPLANATORY = {"table51_factors": "robust_dae_tables"}

HEADER = """# Reproduction of the source documents' experiments

Every number here was produced by `latentbench reproduce NAME --size SIZE` on a 2-core CPU (the
commands, sizes, seeds and CPU times are in each section). The documents trained larger models for longer
on MNIST, ColorMNIST, CelebA or full Fashion-MNIST; we use Fashion-MNIST (Debian's
`dataset-fashion-mnist`, resized to 32x32 where the thesis protocol does), a colour version built as
Cemgil et al. §4 describes, digits, and Manoj's synthetic 2D grid, with fewer epochs and attack steps.
MS-SSIM uses LatentBench's small-image configuration (`plugins/metrics/_msssim.py`, `setup_for_size`), and FID
uses the harness's domain feature extractor because Inception weights cannot be downloaded here, so
FID values are not comparable with the documents'. No run was tuned to agree with a document.

Every model is trained from at least 3 independent seeds, and every finding is a hypothesis about an
effect tested by `latentbench.stats`: a paired bootstrap over images and seeds (pigeonhole bootstrap,
t-calibrated for few seeds) with a permutation test over seeds for model comparisons, Spearman's rho with
a Fisher-z interval for trends, Welch's t over seeds for one-number-per-model metrics (FID). The verdict
is computed from the effect's 95% interval: **holds** when the interval lies on the predicted side of the
threshold, **does not hold** when it lies on the other side, **inconclusive** when it contains the
threshold. A claim over several comparisons ("at every lambda") holds only if every comparison holds
and does not hold if any does not. Verdicts are recomputed from the stored per-seed results by
`latentbench.experiment.recompute_findings(<results.json>)`, without training. The smoke size of every
experiment runs in the default test suite (`tests/plugins/experiments/`).

## Summary of findings

"""


def main() -> None:
    parts, payloads = [], []
    order = []
    for name, number in ORDER:
        order.append((name, number, True))
        order += [(e, number, False) for e, after in EXPLANATORY.items() if after == name]
    for name, number, counted in order:
        md = DOCS / f"{name}.md"
        res = DOCS / name / "results.json"
        if not md.exists():
            continue
        data = json.loads(res.read_text()) if res.exists() else {"experiment": name, "findings": []}
        text = refresh_doc(md.read_text(), data)
        md.write_text(text)
        if counted:
            payloads.append((number, name, data))
        text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)  # one level down
        text = re.sub(r"\]\((?!https?:|#|/)([^)]+)\)", lambda m: f"](docs/reproduction/{m.group(1)})", text)
        text = text.replace("`" + name + "/results.json`", f"`docs/reproduction/{name}/results.json`")
        parts.append(f'<a id="{name}"></a>\n\n' + text.strip() + "\n")
    changes = DOCS / "verdict_changes.md"
    extra = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", changes.read_text(), flags=re.M) if changes.exists() else ""
    out = HEADER + reproduction_summary(payloads) + "\n\n" + extra + "\n" + "\n".join(parts)
    (ROOT / "REPRODUCTION.md").write_text(out)
    print(f"wrote REPRODUCTION.md: {len(parts)} experiments, {sum(len(d['findings']) for _, _, d in payloads)} findings")


if __name__ == "__main__":
    main()
