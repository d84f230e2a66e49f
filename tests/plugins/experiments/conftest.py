import pytest
import torch

from latentbench.experiment import run_experiment


def smoke_on_one_thread(name, out, seeds=None):
    """Run one experiment at smoke size on one torch thread (tiny models gain nothing from a second
    thread, and on a shared 2-core machine it thrashes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_experiment(name, "smoke", out, seeds=seeds)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_smoke(tmp_path_factory):
    """Run experiments at smoke size once per module. Returns (out_dir, {name: result})."""

    def run(*names):
        out = tmp_path_factory.mktemp("repro")
        return out, {n: smoke_on_one_thread(n, out) for n in names}

    return run


@pytest.fixture(scope="session")
def rerun_smoke():
    """A second smoke run of one experiment into a given folder (for same-seed checks)."""
    return smoke_on_one_thread


@pytest.fixture(scope="session")
def check_artifacts():
    """What every experiment's run must leave behind: registered under its name, each figure a PNG of
    real size in its folder, non-empty tables, findings that carry evidence, notes, and a results.json
    / results.md that match the in-memory result, with per-seed results from which the findings are
    recomputed identically. Returns the parsed results.json."""
    import json
    from pathlib import Path

    from latentbench.experiment import Finding, load_experiments, recompute_findings, refresh_findings

    def check(out, name, res):
        assert name in load_experiments()
        folder = out / name
        assert res.figures, "no figures"
        for f in res.figures:
            assert f.endswith(".png") and (folder / f.split("/")[-1]).stat().st_size > 1000, f
        assert res.tables and all(rows for rows in res.tables.values())
        assert res.findings and all(isinstance(f, Finding) and f.evidence for f in res.findings)
        assert res.notes
        payload = json.loads((folder / "results.json").read_text())
        assert payload["experiment"] == name and len(payload["findings"]) == len(res.findings) and payload["notes"]
        assert "![" in (folder / "results.md").read_text()
        assert [f["verdict"] for f in payload["findings"]] == [f.verdict for f in res.findings]
        assert all(f.verdict in ("holds", "does not hold", "inconclusive") for f in res.findings)
        # compared as JSON text: nan (an inestimable effect) is not equal to itself as a float
        again = [f.to_dict() for f in recompute_findings(folder / "results.json")]
        assert json.dumps(again) == json.dumps(payload["findings"])
        assert json.dumps([Finding.from_dict(f).to_dict() for f in payload["findings"]]) == json.dumps(again)
        # `reproduce --recompute` on an untouched run rewrites results.json and results.md as they were
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for f in ("results.json", "results.md"):
                shutil.copy(folder / f, Path(tmp) / f)
            refresh_findings(Path(tmp) / "results.json")
            for f in ("results.json", "results.md"):
                assert (Path(tmp) / f).read_text() == (folder / f).read_text(), f
        # the tables derived from per_seed are part of the generated write-up
        from latentbench.experiment import verdict_block

        block = verdict_block(payload)
        assert payload.get("derived_tables", []) == res.derived_tables
        assert all(f"**{name}**" in block for name in res.derived_tables)
        return payload

    return check
