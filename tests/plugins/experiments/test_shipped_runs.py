"""The shipped reproduction runs (docs/reproduction/<experiment>/results.json): every stored verdict,
effect and interval is what the experiment's findings function gives on the stored per-seed results,
and each write-up's generated block is the one those results give (no verdict typed or left stale)."""

import json
from pathlib import Path

import pytest

from latentbench.experiment import recompute_findings, refresh_doc

DOCS = Path(__file__).resolve().parents[3] / "docs" / "reproduction"
RUNS = sorted(p for p in DOCS.glob("*/results.json"))


def test_every_experiment_write_up_has_a_stored_run():
    assert {p.parent.name for p in RUNS} == {p.stem for p in DOCS.glob("*.md") if p.stem != "verdict_changes"}


@pytest.mark.parametrize("results", RUNS, ids=[p.parent.name for p in RUNS])
def test_stored_verdicts_are_recomputed_from_the_stored_per_seed_results(results):
    stored = json.loads(results.read_text())
    again = [f.to_dict() for f in recompute_findings(results)]
    assert [f["claim"] for f in again] == [f["claim"] for f in stored["findings"]]
    for new, old in zip(again, stored["findings"]):
        assert new["verdict"] == old["verdict"], new["claim"]
        # through JSON, as stored (floats round-trip exactly; tuples become lists)
        assert json.loads(json.dumps(new)) == old, new["claim"]
    counts = {v: sum(f["verdict"] == v for f in again) for v in stored["verdict_counts"]}
    assert counts == stored["verdict_counts"]


@pytest.mark.parametrize("results", RUNS, ids=[p.parent.name for p in RUNS])
def test_the_write_up_shows_the_stored_run(results):
    md = DOCS / f"{results.parent.name}.md"
    text = md.read_text()
    assert refresh_doc(text, json.loads(results.read_text())) == text, (
        f"{md.name} is stale: run `python scripts/assemble_reproduction.py`")
