"""`leaderboard verify`: re-running the protocol reproduces a shipped entry; a changed number is
reported as a mismatch with exit code 1. Comparison rules against hand-computed tolerances."""

import math

import pytest
from tests.harness.leaderboard.conftest import CHEAP_ENTRY, ROOT, read, write

from latentbench.cli import main
from latentbench.errors import LatentBenchError
from latentbench.leaderboard import compare_numbers, verify_entry, within

TOL = {"rel": 0.05, "abs": 0.02}


def test_within_is_abs_plus_rel_times_reported():
    # allowed = 0.02 + 0.05 * 2 = 0.12
    assert within(2.0, 2.119, TOL) == (True, pytest.approx(0.12))
    assert within(2.0, 1.881, TOL)[0]
    assert not within(2.0, 2.121, TOL)[0]
    assert not within(-2.0, -1.879, TOL)[0]


def _numbers(v=0.5, mse=0.03, extra=None):
    vals = {"fid": v, **(extra or {})}
    return {"clean": {"mse": mse, "n_images": 300},
            "results": [{"metric": "fid", "attack": None, "budget": None, "values": vals, "feature_extractor": "d"}]}


def test_compare_numbers_reports_each_difference():
    diffs = compare_numbers(_numbers(), _numbers(), TOL)
    assert [d.field for d in diffs] == ["clean.mse", "clean.n_images", "fid: fid"] and all(d.ok for d in diffs)
    diffs = compare_numbers(_numbers(), _numbers(v=0.6, extra={"new": 1.0}), TOL)
    bad = {d.field: d for d in diffs if not d.ok}
    assert set(bad) == {"fid: fid"}
    assert bad["fid: fid"].allowed == pytest.approx(0.02 + 0.05 * 0.5)
    # a number the re-run has and the entry does not claim is listed as added, not compared
    added = [d for d in diffs if d.added]
    assert [d.field for d in added] == ["fid: new"] and added[0].reported is None and added[0].ok
    # a number the entry claims and the re-run does not produce is a mismatch
    lost = [d.field for d in compare_numbers(_numbers(extra={"old": 1.0}), _numbers(), TOL) if not d.ok]
    assert lost == ["fid: old"]
    other = _numbers()
    other["results"][0]["feature_extractor"] = "inception"
    assert [d.field for d in compare_numbers(_numbers(), other, TOL) if not d.ok] == ["fid: feature_extractor"]
    other = _numbers()
    other["clean"]["n_images"] = 299
    assert [d.field for d in compare_numbers(_numbers(), other, TOL) if not d.ok] == ["clean.n_images"]


def test_metric_config_settings_of_the_entry_must_match_and_new_ones_are_listed():
    entry, rerun = _numbers(), _numbers()
    entry["results"][0]["metric_config"] = {"n_samples": 1000}
    rerun["results"][0]["metric_config"] = {"n_samples": 1000, "bootstrap": 200}
    diffs = compare_numbers(entry, rerun, TOL)
    assert all(d.ok for d in diffs)
    assert [d.field for d in diffs if d.added] == ["fid: metric_config.bootstrap"]
    rerun["results"][0]["metric_config"] = {"n_samples": 500, "bootstrap": 200}
    assert [d.field for d in compare_numbers(entry, rerun, TOL) if not d.ok] == ["fid: metric_config"]
    del rerun["results"][0]["metric_config"]["n_samples"]  # a setting the entry records, gone: a mismatch
    assert [d.field for d in compare_numbers(entry, rerun, TOL) if not d.ok] == ["fid: metric_config"]


@pytest.fixture
def one_thread():
    """The shipped entries were computed with one torch thread; re-run the same way. (On a loaded
    2-core machine two OpenMP threads per process spin-wait and run ~10x slower.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_verify_reproduces_shipped_entry_and_flags_a_changed_number(tmp_path, capsys, registry, one_thread):
    work = tmp_path / "work"
    report = verify_entry(CHEAP_ENTRY, work_dir=str(work), registry=registry)
    assert report.ok, report.text()
    entry = read(CHEAP_ENTRY)
    n_values = sum(len(r["values"]) for r in entry["reported"]["results"])
    # every number the entry claims was compared (numbers and settings added to the metrics since
    # the entry was made, e.g. FID's interval, are listed apart)
    # (and the evaluation data's digest, for entries of schema 2)
    assert len(report.compared) - len(report.added) == (n_values + len(entry["reported"]["clean"])
                                                        + ("data_digest" in entry))
    assert [d.field for d in report.compared].count("data_digest") == ("data_digest" in entry)

    # a copy with one number changed well beyond the tolerance; the re-run reuses the cells stored
    # in `work` (same checkpoint hash and protocol), so only the comparison differs
    changed = tmp_path / "vae.json"
    i = next(i for i, r in enumerate(entry["reported"]["results"]) if r["metric"] == "spectral_radius")
    old = entry["reported"]["results"][i]["values"]["spectral_radius_mean"]
    entry["reported"]["results"][i]["values"]["spectral_radius_mean"] = old * 1.5 + 1.0
    write(changed, entry)
    ck = str(ROOT / entry["checkpoint"]["path"])
    rc = main(["leaderboard", "verify", str(changed), "--checkpoint", ck, "--work-dir", str(work), "--write"])
    assert rc == 1
    out = capsys.readouterr().out
    assert f"MISMATCH spectral_radius: spectral_radius_mean: reported {old * 1.5 + 1.0}" in out
    n = len(report.compared) - len(report.added)
    assert f"{n - 1}/{n} numbers reproduced; 1 mismatch(es)" in out
    written = read(changed)
    assert written["unreliable"] is True and written["reproduced"]["status"] == "mismatch"
    assert [d["field"] for d in written["reproduced"]["differences"]] == ["spectral_radius: spectral_radius_mean"]


def test_verify_refuses_other_weights(tmp_path, registry):
    entry = read(CHEAP_ENTRY)
    entry["checkpoint"]["sha256"] = "f" * 64
    p = tmp_path / "vae.json"
    write(p, entry)
    with pytest.raises(LatentBenchError, match="these are different weights"):
        verify_entry(p, checkpoint=str(ROOT / read(CHEAP_ENTRY)["checkpoint"]["path"]), registry=registry)
