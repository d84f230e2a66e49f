"""Leaderboard v2 (Protocol.main_columns): the short main table with 95% intervals and flags, the
per-entry detail pages with every other column, the curve and image-grid PNGs; v1 tables unchanged.

Entries are synthetic: digits-v1 entries moved to digits-v2 with a made-up robust_accuracy record
(no evaluation runs)."""

import dataclasses
import hashlib
import html
import math
import re
import shutil

import numpy as np
import pytest
from tests.harness.leaderboard.conftest import LEADERBOARD, read, write
from tests.harness.leaderboard.test_render import html_tables, markdown_tables

from latentbench.errors import LatentBenchError
from latentbench.leaderboard import build_tables, render_html, render_markdown, render_tree, table_id, validate_tree
from latentbench.leaderboard.pages import other_columns
from latentbench.leaderboard.render import Z95, flags_of
from latentbench.plugins.metrics.robust_accuracy import FLAGS
from latentbench.protocol import Protocol

PNG = b"\x89PNG\r\n\x1a\n"
N = 899
BUDGETS = ("0.25", "0.5", "1")

#: entry name -> (robust accuracy per budget, clean accuracy, raised flags)
V2 = {"vae": ((0.62, 0.41, 0.12), 0.93, ()),
      "robust_dae": ((0.80, 0.66, 0.35), 0.90, ()),
      "beta_vae": ((0.30, 0.25, 0.20), 0.31, ("collapsed", "gradient_masking"))}


def _se(p):
    return math.sqrt(p * (1 - p) / N)


def v2_entry(name, version):
    accs, clean, raised = V2[name]
    e = read(LEADERBOARD / "digits-v1" / f"{name}.json")
    e["protocol"] = {"name": "digits-v2", "version": version}
    # no checkpoint on disk (nothing to checksum) and a checkpoint hash of its own
    e["checkpoint"] = {**e["checkpoint"], "path": None, "sha256": hashlib.sha256(name.encode()).hexdigest()}
    e["reproduced"], e["unreliable"] = None, False
    # a bare FID (the shipped digits-v1 entries now carry its interval and KID): the interval test adds
    # them to one entry, and the column counts below are those of a bare FID
    for r in e["reported"]["results"]:
        if r["metric"] == "fid":
            r["values"] = {k: v for k, v in r["values"].items() if k == "fid"}
    values = {"n_images": float(N), "clean_accuracy": clean, "clean_accuracy_se": _se(clean),
              "robust_accuracy_mean": sum(accs) / 3, "robust_accuracy_mean_se": 0.008}
    for b, a in zip(BUDGETS, accs):
        values[f"robust_accuracy@{b}"], values[f"robust_accuracy@{b}_se"] = a, _se(a)
        values[f"robust_fidelity@{b}"] = 0.9 - a / 10
    values.update({f"flag_{f}": float(f in raised) for f in FLAGS})
    rng = np.random.default_rng(len(name))
    imgs = {k: rng.random((8, 1, 8, 8)).round(4).tolist() for k in ("x", "r_x", "x_adv", "r_x_adv")}
    examples = {"eps": 0.5, "index": list(range(8)), "label": [i % 10 for i in range(8)],
                "pred_clean": [i % 10 for i in range(8)], "pred_adv": [(i + 1) % 10 for i in range(8)], **imgs}
    e["reported"]["results"].append({
        "metric": "robust_accuracy", "attack": None, "budget": None, "values": values,
        "metric_config": {"classifier": "digits-v2-advl2"}, "attack_config": None,
        "info": {"classifier": {"name": "digits-v2-advl2", "sha256": "0" * 64}, "flags": list(raised),
                 "flag_messages": {f: FLAGS[f] for f in raised}, "examples": examples}})
    return e


@pytest.fixture
def v2_entries(registry):
    version = registry.protocol("digits-v2").version
    return [v2_entry(n, version) for n in V2]


@pytest.fixture
def v2_table(registry, v2_entries):
    (t,) = build_tables(v2_entries, registry)
    return t


HEADLINE = "robust rec. acc. (mean over ε) ↑"


# -- Protocol.main_columns --------------------------------------------------------------------------

def _proto(**kw):
    return Protocol(name="p-v2", version="2", description="", dataset={"name": "digits"}, **kw)


@pytest.mark.parametrize("main_columns, message", [
    ({"metric": "m", "value": "v"}, "non-empty list"),
    ("m/v", "non-empty list"),
    ([], "non-empty list"),
    ([{"metric": "m", "value": "v"}, {"metric": "m"}], r"main_columns\[1\] must be a mapping with 'metric' and 'value'"),
    ([{"metric": "m", "value": 3}], r"main_columns\[0\] must be a mapping"),
    (["m"], r"main_columns\[0\] must be a mapping"),
    ([{"metric": "m", "value": "v", "budgt": 1}], r"main_columns\[0\] has unknown keys \['budgt'\]"),
])
def test_bad_main_columns_fail_where_they_are_written(main_columns, message):
    with pytest.raises(ValueError, match=message):
        _proto(main_columns=main_columns)


def test_main_columns_are_kept_as_a_tuple_and_left_out_of_to_dict():
    p = _proto(main_columns=[{"metric": "clean", "value": "mse"}])
    assert p.main_columns == ({"metric": "clean", "value": "mse"},)
    assert "main_columns" not in p.to_dict() and "rank_by" not in p.to_dict()
    with pytest.raises(ValueError, match="rank_by has unknown keys"):
        _proto(rank_by={"metric": "m", "value": "v", "x": 1})


def test_a_main_column_that_names_no_column_is_an_error(registry, v2_entries, monkeypatch):
    proto = registry.protocol("digits-v2")
    bad = dataclasses.replace(proto, main_columns=(*proto.main_columns, {"metric": "robust_accuracy", "value": "nope"}))
    monkeypatch.setattr(registry, "protocol", lambda name, **kw: bad)
    with pytest.raises(LatentBenchError, match=r"main_columns\[\d+\] .*names no column"):
        build_tables(v2_entries, registry)


# -- the main table ---------------------------------------------------------------------------------

def test_main_table_shows_the_chosen_columns_and_flags_sorted_by_the_headline(v2_table):
    t = v2_table
    page = render_html([t])
    ht = html_tables(page)[table_id("digits-v2")]
    assert ht["head"] == ["#", "model", HEADLINE, "clean rec. acc. ↑", "robust rec. acc. ε=0.25 ↑",
                          "robust rec. acc. ε=0.5 ↑", "robust rec. acc. ε=1 ↑", "robust fidelity ε=0.5 ↑",
                          "clean MSE ↓", "FID [latentbench-domain-cnn-digits-8-seed0] ↓", "flags"]
    # best headline first
    assert [r[1] for r in ht["rows"]] == ["robust_dae", "vae", "beta_vae"]
    rd = next(e for e in t.rows if e["name"] == "robust_dae")
    row = ht["rows"][0]
    mean = (0.80 + 0.66 + 0.35) / 3
    assert row[2] == f"{mean:.3f} ± {Z95 * 0.008:.3f}"
    assert row[3] == f"0.900 ± {Z95 * math.sqrt(0.9 * 0.1 / N):.3f}"
    assert row[4] == f"0.800 ± {Z95 * math.sqrt(0.8 * 0.2 / N):.3f}"
    assert row[7] == f"{0.9 - 0.066:.4f}"  # no _se sibling: no interval
    assert row[8] == f"{rd['reported']['clean']['mse']:.4f}"
    assert ht["rows"][2][-1] == "collapsed, gradient_masking" and ht["rows"][0][-1] == ""
    # the messages are the hover text and the legend; models link to their pages
    assert f"title='{html.escape(FLAGS['collapsed'])}'" in page
    assert "href='pages/digits-v2/robust_dae.html'" in page and "pages/digits-v2/curves.png" in page
    assert flags_of(t.sort_column, t.rows[-1]) == [(f, FLAGS[f]) for f in ("collapsed", "gradient_masking")]
    # Markdown shows the same cells
    md = markdown_tables(render_markdown([t]))[table_id("digits-v2")]
    assert md["head"] == ht["head"]
    assert [[re.sub(r"\[(.*)\]\(.*\)", r"\1", c) for c in r] for r in md["rows"]] == ht["rows"]
    assert "(pages/digits-v2/vae.html)" in render_markdown([t])


def test_clean_mse_is_selectable_as_rank_by_too(registry, v2_entries, monkeypatch):
    proto = dataclasses.replace(registry.protocol("digits-v2"), rank_by={"metric": "clean", "value": "mse"})
    monkeypatch.setattr(registry, "protocol", lambda name, **kw: proto)
    (t,) = build_tables(v2_entries, registry)
    assert t.sort_column.header == "clean MSE"
    mses = [e["reported"]["clean"]["mse"] for e in t.rows]
    assert mses == sorted(mses)


# -- detail pages and plots -------------------------------------------------------------------------

@pytest.fixture
def rendered(lb_copy, v2_entries, registry, tmp_path):
    # the synthetic entries replace the shipped digits-v2 ones
    shutil.rmtree(lb_copy / "digits-v2", ignore_errors=True)
    (lb_copy / "digits-v2").mkdir()
    for e in v2_entries:
        write(lb_copy / "digits-v2" / f"{e['name']}.json", e)
    errors, _ = validate_tree(lb_copy, registry)
    assert errors == []
    out = tmp_path / "site"
    out.mkdir()
    paths = render_tree(lb_copy, str(out / "LEADERBOARD.md"), str(out / "index.html"), registry)
    return out, paths


def test_detail_pages_have_every_other_column_and_the_flag_messages(rendered, v2_table):
    out, paths = rendered
    d = out / "pages" / "digits-v2"
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["curves.png"] + [f"{n}{s}" for n in V2 for s in (".html", "-curve.png", "-grid.png")])
    assert {p for p in paths if p.parent == d} == set(d.iterdir())
    others = other_columns(v2_table)
    assert len(others) == 20 and not any(c.value.endswith("_se") for c in others if c.metric == "robust_accuracy")
    assert not [c for c in others if c in v2_table.main]
    for e in v2_table.rows:
        page = (d / f"{e['name']}.html").read_text()
        for c in others + v2_table.main:
            assert html.escape(c.header) in page
        assert "href='../../index.html'" in page
        assert f"src='{e['name']}-curve.png'" in page and f"src='{e['name']}-grid.png'" in page
        for f in FLAGS:
            assert f"<code>{f}</code>" in page
    beta = (d / "beta_vae.html").read_text()
    assert html.escape(FLAGS["collapsed"]) in beta and html.escape(FLAGS["gradient_masking"]) in beta
    assert html.escape(FLAGS["collapsed"]) not in (d / "vae.html").read_text()
    # the index page links every model and shows the overlay
    index = (out / "index.html").read_text()
    assert all(f"href='pages/digits-v2/{n}.html'" in index for n in V2)


def test_pngs_are_written_and_readable(rendered):
    import matplotlib.image

    d = rendered[0] / "pages" / "digits-v2"
    for f in ["curves.png"] + [f"{n}{s}" for n in V2 for s in ("-curve.png", "-grid.png")]:
        data = (d / f).read_bytes()
        assert data[:8] == PNG and len(data) > 5_000, f
        img = matplotlib.image.imread(d / f)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 0.01, f


def test_rendering_is_deterministic(rendered, lb_copy, registry, tmp_path):
    out, paths = rendered
    again = tmp_path / "again"
    again.mkdir()
    paths2 = render_tree(lb_copy, str(again / "LEADERBOARD.md"), str(again / "index.html"), registry)
    assert [p.relative_to(again) for p in paths2] == [p.relative_to(out) for p in paths]
    for p, q in zip(paths, paths2):
        assert p.read_bytes() == q.read_bytes(), p.name


def test_stale_pages_are_removed(rendered, lb_copy, registry):
    out, _ = rendered
    (lb_copy / "digits-v2" / "vae.json").unlink()
    render_tree(lb_copy, str(out / "LEADERBOARD.md"), str(out / "index.html"), registry)
    names = {p.name for p in (out / "pages" / "digits-v2").iterdir()}
    assert "vae.html" not in names and "vae-curve.png" not in names and "robust_dae.html" in names


def _blocks(text, heading, flags=0):
    """Each protocol's section of a rendered page, keyed by protocol name."""
    pat = heading + r"(\S+) \(version.*?(?=" + heading + r"|</body>|\Z)"
    return {m.group(1): m.group(0).rstrip() for m in re.finditer(pat, text, re.S | flags)}


def test_v1_tables_render_as_committed(rendered):
    """A protocol without main_columns renders exactly as before, next to a v2 table."""
    out, _ = rendered
    for name, heading, flags in (("LEADERBOARD.md", "^## ", re.M), ("index.html", "<h2>", 0)):
        new = _blocks((out / name).read_text(), heading, flags)
        old = _blocks((LEADERBOARD / name).read_text(), heading, flags)
        assert "digits-v2" in new
        for proto in ("digits-v1", "fashion-mnist-32-v1"):
            assert new[proto] == old[proto], (name, proto)
    assert (out / "pages" / "digits-v2").is_dir() and not (out / "pages" / "digits-v1").exists()


# -- entries carry the result's info ---------------------------------------------------------------

def test_result_records_keep_info_and_entries_stay_valid(v2_entries):
    from latentbench.benchmark import _result_records
    from latentbench.leaderboard import load_schema, schema_errors

    rec = v2_entries[0]["reported"]["results"][-1]
    info = {**rec["info"], "feature_extractor": "fx"}
    rows = [{"metric": "robust_accuracy", "attack": None, "budget": None, "values": rec["values"],
             "config": {"cell": {"metric_config": {"classifier": "digits-v2-advl2"}, "attack_config": None}},
             "result": {"config": {}, "info": info}},
            {"metric": "vn_entropy", "attack": None, "budget": None, "values": {"vn_entropy_mean": 1.0},
             "config": {"cell": {}}, "result": {"config": {}, "info": {}}}]
    out = _result_records(rows)
    got = next(r for r in out if r["metric"] == "robust_accuracy")
    assert got["feature_extractor"] == "fx" and got["info"] == rec["info"]  # promoted, not repeated
    assert "info" not in next(r for r in out if r["metric"] == "vn_entropy")
    entry = {**v2_entries[0], "reported": {**v2_entries[0]["reported"], "results": out}}
    assert schema_errors(entry, load_schema()) == []
    # info is an object, its flags a list of names
    rec_bad = {**got, "info": {**got["info"], "flags": "collapsed"}}
    bad = {**entry, "reported": {**entry["reported"], "results": [rec_bad]}}
    assert any("info.flags" in err for err in schema_errors(bad, load_schema()))
    bad["reported"]["results"] = [{**got, "info": []}]
    assert any("info" in err and "expected object" in err for err in schema_errors(bad, load_schema()))


def test_an_unreliable_entry_sorts_last_and_says_so(registry, v2_entries):
    v2_entries[1]["unreliable"] = True  # robust_dae, the best headline
    (t,) = build_tables(v2_entries, registry)
    ht = html_tables(render_html([t]))[table_id("digits-v2")]
    assert [r[1] for r in ht["rows"]] == ["vae", "beta_vae", "robust_dae (unreliable)"]
    md = markdown_tables(render_markdown([t]))[table_id("digits-v2")]
    assert [re.sub(r"\[(.*?)\]\([^)]*\)", r"\1", r[1]) for r in md["rows"]] == [r[1] for r in ht["rows"]]


def test_an_fid_with_a_bootstrap_interval_is_shown_with_its_ends(registry, v2_entries):
    """FID states its (asymmetric) bias-corrected bootstrap interval by its ends: the cell shows both
    ends; an entry without them keeps the bare number."""
    from latentbench.leaderboard.render import cell_text
    fid_rec = next(r for r in v2_entries[0]["reported"]["results"] if r["metric"] == "fid")
    fid = fid_rec["values"]["fid"]
    fid_rec["values"].update({"fid_ci_low": fid - 0.5, "fid_ci_high": fid + 1.25, "kid": 0.01})
    (t,) = build_tables(v2_entries, registry)
    col = next(c for c in t.columns if c.metric == "fid" and c.value == "fid")
    with_ci = next(e for e in t.rows if e["name"] == v2_entries[0]["name"])
    lo, hi = fid - 0.5, fid + 1.25
    assert col.interval(with_ci) == (lo, hi)
    fmt2 = (lambda v: f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}")
    assert cell_text(col, with_ci) == f"{fmt2(fid)} [{fmt2(lo)}, {fmt2(hi)}]"
    other = next(e for e in t.rows if e["name"] != v2_entries[0]["name"])
    assert col.interval(other) is None and "[" not in cell_text(col, other)
