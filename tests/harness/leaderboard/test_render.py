"""Rendering: Markdown and HTML agree on every number; the built-in metrics' declarations give the
shipped tables their columns and directions; the committed LEADERBOARD.md and index.html are what
`leaderboard render` writes; the HTML page renders and sorts in headless Chromium (skipped only
when chromium is not installed)."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from tests.harness.leaderboard.conftest import LEADERBOARD

from latentbench.leaderboard import (build_tables, fmt, render_html, render_markdown, render_tree, table_id,
                                     validate_tree)


class _Tables(HTMLParser):
    """Rows of every <table class=lb> as lists of cell texts, keyed by table id."""

    def __init__(self):
        super().__init__()
        self.tables, self._t, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "lb" in (a.get("class") or ""):
            self._t = self.tables.setdefault(a["id"], {"head": [], "rows": []})
        elif self._t is not None and tag == "tr":
            self._row = []
        elif self._row is not None and tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self._t["head"] if not self._t["head"] else self._t["rows"]).append(self._row)
            self._row = None
        elif tag == "table":
            self._t = None


def html_tables(text):
    p = _Tables()
    p.feed(text)
    return {k: {"head": v["head"][0], "rows": v["rows"]} for k, v in p.tables.items()}


def markdown_tables(text):
    """Rows of every GitHub-style table, keyed by the protocol heading above it."""
    out, proto, rows = {}, None, None
    for line in text.splitlines():
        m = re.match(r"## (\S+) \(version", line)
        if m:
            proto = m.group(1)
        elif line.startswith("|") and proto:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(line) <= set("|-: "):
                continue
            rows = out.setdefault(table_id(proto), [])
            rows.append(cells)
    return {k: {"head": v[0], "rows": v[1:]} for k, v in out.items()}


@pytest.fixture(scope="module")
def tables(registry):
    errors, loaded = validate_tree(LEADERBOARD, registry)
    assert errors == []
    return build_tables([le.data for le in loaded], registry)


def test_markdown_and_html_agree(tables):
    page = render_html(tables)
    # self-contained: no scripts or stylesheets from files, images only the rendered ones under pages/
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    assert all(src.startswith("pages/") for src in re.findall(r"<img[^>]+src='([^']*)'", page))
    assert not re.search(r"<img[^>]+src=(?!'pages/)", page)
    md = markdown_tables(render_markdown(tables))
    ht = html_tables(page)
    assert set(md) == set(ht) == {table_id(t.protocol.name) for t in tables}
    for t in tables:
        k = table_id(t.protocol.name)
        assert md[k]["head"] == ht[k]["head"]
        md_rows = [[re.sub(r"\[(.*)\]\(.*\)", r"\1", c) for c in r] for r in md[k]["rows"]]
        assert md_rows == ht[k]["rows"]
        # and both show the entry files' numbers
        mse_col = next(i for i, h in enumerate(ht[k]["head"]) if h.startswith("clean MSE"))
        for row, entry in zip(ht[k]["rows"], t.rows):
            assert row[1].removesuffix(" (unreliable)") == entry["name"]
            assert row[mse_col] == fmt(entry["reported"]["clean"]["mse"])


def test_per_attack_per_budget_columns(tables):
    digits = next(t for t in tables if t.protocol.name == "digits-v1")
    heads = [c.header for c in digits.columns]
    for attack in ("latent_space", "max_damage"):
        for b in ("0.25", "0.5", "1"):
            assert sum(h.startswith(f"{attack} λ={b} ") for h in heads) == 2  # MS-SSIM and L2
    # one FID column per feature extractor; all shipped digits entries use the domain extractor
    assert [h for h in heads if h.startswith("FID [")] == ["FID [latentbench-domain-cnn-digits-8-seed0]"]
    # default order: the headline column, more robust first (higher max-damage MS-SSIM)
    vals = [digits.sort_column.get(e) for e in digits.rows if not e.get("unreliable")]
    assert vals == sorted(vals, reverse=True)


def test_builtin_declarations_give_the_shipped_columns_and_directions(tables):
    """What the built-in metrics declare (Metric.leaderboard) is what the leaderboard showed when it
    hard-coded them: same columns, same order, same more-robust directions."""
    digits = next(t for t in tables if t.protocol.name == "digits-v1")
    got = [(c.header, c.better) for c in digits.columns]
    want = [("clean MSE", "lower")]
    for attack, pair, ms_better in (("latent_space", "(x_t, x~_a)", "lower"), ("max_damage", "(x~_r, x~_a)", "higher")):
        l2_better = "higher" if ms_better == "lower" else "lower"
        for b in ("0.25", "0.5", "1"):
            want += [(f"{attack} λ={b} MS-SSIM{pair}", ms_better), (f"{attack} λ={b} L2{pair}", l2_better)]
    want += [("spectral radius", "lower"), ("VN entropy", "higher"),
             ("FID [latentbench-domain-cnn-digits-8-seed0]", "lower"),
             # KID (the FID metric's unbiased companion, issue 16) since the entries were recomputed with it
             ("KID [latentbench-domain-cnn-digits-8-seed0]", "lower"), ("probe acc.", "higher"),
             ("adv. acc. ε=0.05", "higher"), ("adv. acc. ε=0.1", "higher"), ("adv. acc. ε=0.2", "higher")]
    assert got == want
    # each protocol ranks by its own rank_by: max-damage MS-SSIM(x~_r, x~_a) at its largest budget
    heads = {t.protocol.name: t.sort_column.header for t in tables}
    assert heads["digits-v1"] == "max_damage λ=1 MS-SSIM(x~_r, x~_a)"
    if "fashion-mnist-32-v1" in heads:
        assert heads["fashion-mnist-32-v1"] == "max_damage λ=5 MS-SSIM(x~_r, x~_a)"


def test_committed_pages_are_what_render_writes(tmp_path, registry):
    """LEADERBOARD.md and index.html say "do not edit by hand": they must match a fresh render (re-run
    `latentbench leaderboard render leaderboard` after changing an entry, a protocol or a metric's
    declarations)."""
    md, page = tmp_path / "LEADERBOARD.md", tmp_path / "index.html"
    render_tree(LEADERBOARD, str(md), str(page), registry)
    assert md.read_text() == (LEADERBOARD / "LEADERBOARD.md").read_text()
    assert page.read_text() == (LEADERBOARD / "index.html").read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(url, tmp_path, *extra):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_renders_and_sorts_in_headless_chromium(tables, tmp_path):
    page = tmp_path / "index.html"
    page.write_text(render_html(tables))
    t = next(t for t in tables if t.protocol.name == "digits-v1")
    tid = table_id(t.protocol.name)
    col = 4 + next(i for i, c in enumerate(t.columns) if c.key == "spectral_radius/spectral_radius_mean")
    url = f"{page.as_uri()}#sort={tid}:{col}:asc"
    dom = _chromium(url, tmp_path, "--dump-dom").stdout
    ht = html_tables(dom)[tid]
    # the script ran: the table records the sort and the rows are in ascending spectral radius
    assert re.search(rf"id=\"{tid}\"[^>]*data-sort-col=\"{col}\"", dom) or f'data-sort-col="{col}"' in dom
    shown = [float(r[col]) for r in ht["rows"]]
    assert shown == sorted(shown) and len(shown) == len(t.rows)
    expected = sorted(fmt(c.get(e)) for e in t.rows for c in t.columns if c.key == "spectral_radius/spectral_radius_mean")
    assert sorted(r[col] for r in ht["rows"]) == expected
    # descending through the same hash mechanism
    dom = _chromium(f"{page.as_uri()}#sort={tid}:{col}:desc", tmp_path, "--dump-dom").stdout
    shown = [float(r[col]) for r in html_tables(dom)[tid]["rows"]]
    assert shown == sorted(shown, reverse=True)
    shot = tmp_path / "screenshot.png"
    _chromium(page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1600,1000")
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
