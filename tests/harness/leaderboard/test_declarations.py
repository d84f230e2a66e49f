"""Columns, directions, ranges and the default ranking come from what metrics and protocols declare
(``Metric.leaderboard``, ``Protocol.rank_by``), not from names in the leaderboard code."""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass

import pytest

from latentbench import LeaderboardValue, Metric, MetricConfig, hookimpl
from latentbench.errors import LatentBenchError, PluginError
from latentbench.leaderboard import build_tables, columns_for, range_errors, render_html, render_markdown
from latentbench.protocol import Protocol
from latentbench.registry import load_registry
from tests import REPO_ROOT


@dataclass
class GapConfig(MetricConfig):
    scale: str = "share"


class ToyGap(Metric):
    """An attack-based metric: a share (or percentage) and hit rates whose keys follow the config."""

    name = "toy_gap"
    config_class = GapConfig
    needs = frozenset({"model", "data", "attack"})
    leaderboard = (
        LeaderboardValue("gap_mean", "gap", better="lower", range=(0, 1), when={"scale": "share"}),
        LeaderboardValue("gap_mean", "gap (%)", better="lower", range=(0, 100), when={"scale": "percent"}),
        LeaderboardValue("hit@*", "hits k={}", better="higher", range=(0, 1)),
        LeaderboardValue("*_std", range=(0, math.inf)),
    )


class ToyScore(Metric):
    """No attack; numbers from different extractors must never share a column."""

    name = "toy_score"
    leaderboard = (LeaderboardValue("score", "score", better="higher", range=(-1, 1), split_by="extractor"),)


class ToyQuiet(Metric):
    """Declares nothing: no column, generic checks only."""

    name = "toy_quiet"


def _protocol(rank_by=None, gap_config=None, name="toy-v1"):
    return Protocol(name=name, version="1", description="toy", dataset={"name": "digits"},
                    attacks=({"name": "a1", "plugin": "toy_latent", "budgets": [0.5, 2.0]},
                             {"name": "a2", "plugin": "toy_latent", "budgets": [1.0]}),
                    metrics=({"plugin": "toy_score"}, {"plugin": "toy_quiet"},
                             {"plugin": "toy_gap", "config": gap_config or {}}),
                    rank_by=rank_by)


def _registry(*protocols):
    mod = types.ModuleType("toy_declarations")
    mod.latentbench_metrics = hookimpl(lambda: [ToyGap, ToyScore, ToyQuiet])
    mod.latentbench_protocols = hookimpl(lambda: list(protocols))
    return load_registry(extra_plugins=[mod])


def _entry(name, mse, gaps, score, extractor="x", unreliable=False):
    results = [{"metric": "toy_score", "attack": None, "budget": None, "values": {"score": score},
                "metric_config": {}, "extractor": extractor},
               {"metric": "toy_quiet", "attack": None, "budget": None, "values": {"q": 1.0}, "metric_config": {}}]
    for (attack, budget), (gap, hits) in gaps.items():
        values = {"gap_mean": gap, "gap_std": 0.01, **{f"hit@{k}": v for k, v in hits.items()}}
        results.append({"metric": "toy_gap", "attack": attack, "budget": budget, "values": values,
                        "metric_config": {}})
    return {"name": name, "protocol": {"name": "toy-v1", "version": "1"}, "model": {"plugin": "toy_ae"},
            "reported": {"clean": {"mse": mse}, "results": results}, "reproduced": None, "unreliable": unreliable}


def _entries():
    cells = [("a1", 0.5), ("a1", 2.0), ("a2", 1.0)]
    return [
        _entry("low", 0.02, {c: (0.2, {2: 0.9, 10: 0.3}) for c in cells}, 0.1, "x"),
        _entry("high", 0.01, {c: (0.1, {2: 0.8, 10: 0.7}) for c in cells}, 0.5, "y"),
        _entry("mid", 0.03, {c: (0.3, {2: 0.7, 10: 0.5}) for c in cells}, 0.9, "x"),
        _entry("broken", 0.001, {c: (0.0, {2: 1.0, 10: 1.0}) for c in cells}, 1.0, "x", unreliable=True),
    ]


RANK = {"metric": "toy_gap", "value": "hit@10", "attack": "a2", "budget": 1}


def test_columns_come_from_declarations_in_protocol_order():
    proto = _protocol(RANK)
    reg = _registry(proto)
    cols = columns_for(proto, _entries(), reg)
    per_cell = ["gap ↓", "hits k=2 ↑", "hits k=10 ↑"]  # pattern keys in numeric order, not "10" < "2"
    assert [c.header + {"higher": " ↑", "lower": " ↓", "": ""}[c.better] for c in cols] == (
        ["clean MSE ↓"] + [f"a1 λ=0.5 {h}" for h in per_cell] + [f"a1 λ=2 {h}" for h in per_cell]
        + [f"a2 λ=1 {h}" for h in per_cell] + ["score [x] ↑", "score [y] ↑"])
    # toy_quiet declares nothing and gets no column; range-only declarations (gap_std) get none either
    assert not any("q" == c.value or "gap_std" == c.value for c in cols)


def test_split_columns_never_mix_their_numbers():
    proto = _protocol(RANK)
    cols = {c.header: c for c in columns_for(proto, _entries(), _registry(proto))}
    by_name = {e["name"]: e for e in _entries()}
    assert cols["score [x]"].get(by_name["low"]) == 0.1 and cols["score [x]"].get(by_name["high"]) is None
    assert cols["score [y]"].get(by_name["high"]) == 0.5 and cols["score [y]"].get(by_name["low"]) is None


def test_protocol_rank_by_orders_the_table_and_unreliable_entries_sort_last():
    proto = _protocol(RANK)
    reg = _registry(proto)
    (table,) = build_tables(_entries(), reg)
    assert table.sort_column.header == "a2 λ=1 hits k=10"
    assert [e["name"] for e in table.rows] == ["high", "mid", "low", "broken"]  # higher hit rate first
    md = render_markdown([table])
    assert "Sorted by a2 λ=1 hits k=10 ↑." in md
    assert "| a2 λ=1 hits k=10 ↑ |" in re.sub(r" +", " ", md)
    page = render_html([table])
    assert "<th class='num' data-better='higher'>a2 λ=1 hits k=10 ↑</th>" in page
    assert "<th class='num' data-better='lower'>a1 λ=0.5 gap ↓</th>" in page


def test_without_rank_by_the_first_column_ranks():
    proto = _protocol(None)
    (table,) = build_tables(_entries(), _registry(proto))
    assert table.sort_column.header == "clean MSE"
    assert [e["name"] for e in table.rows] == ["high", "low", "mid", "broken"]  # lower MSE first


def test_rank_by_naming_no_column_is_an_error():
    proto = _protocol({"metric": "toy_gap", "value": "hit@10", "attack": "a2", "budget": 3})
    with pytest.raises(LatentBenchError, match=r"protocol toy-v1: rank_by .* names no column.*a2@1/toy_gap/hit@10"):
        build_tables(_entries(), _registry(proto))


def test_rank_by_is_checked_and_stays_out_of_the_protocol_dict():
    with pytest.raises(ValueError, match="rank_by must be a mapping with 'metric' and 'value'"):
        _protocol({"metric": "toy_gap"})
    with pytest.raises(ValueError, match=r"unknown keys \['eps'\]"):
        _protocol({**RANK, "eps": 1})
    # ordering a table changes no number: rank_by is not part of what the protocol computes
    assert _protocol(RANK).to_dict() == _protocol(None).to_dict()


def test_when_picks_the_declaration_for_the_protocols_config():
    proto = _protocol(None, gap_config={"scale": "percent"})
    cols = columns_for(proto, _entries(), _registry(proto))
    assert "a1 λ=0.5 gap (%)" in [c.header for c in cols] and "a1 λ=0.5 gap" not in [c.header for c in cols]


def _one(metric, key, value, config=None, attack=None, budget=None):
    return {"protocol": {"name": "toy-v1"}, "reported": {"results": [
        {"metric": metric, "attack": attack, "budget": budget, "values": {key: value}, "metric_config": config or {}}]}}


@pytest.mark.parametrize("metric,key,value,config,problem", [
    ("toy_gap", "gap_mean", 0.5, None, None),
    ("toy_gap", "gap_mean", 1.5, None, "1.5 is outside [0, 1]"),
    ("toy_gap", "gap_mean", 1.5, {"scale": "percent"}, None),  # the range of the entry's own config
    ("toy_gap", "gap_mean", 150.0, {"scale": "percent"}, "150.0 is outside [0, 100]"),
    ("toy_gap", "hit@0.25", 1.01, None, "1.01 is outside [0, 1]"),  # pattern key
    ("toy_gap", "gap_std", -0.1, None, "-0.1 is outside [0, inf]"),
    ("toy_score", "score", -0.5, None, None),  # a declared range may allow negative numbers
    ("toy_score", "score", 2.0, None, "2.0 is outside [-1, 1]"),
    ("toy_quiet", "q", -5.0, None, None),  # nothing declared: any finite number
    ("toy_quiet", "q_std", -5.0, None, "-5.0 is outside [0, inf]"),  # generic: a spread is never negative
    ("toy_quiet", "q", math.inf, None, "inf is not finite"),
])
def test_ranges_come_from_declarations(metric, key, value, config, problem):
    reg = _registry(_protocol())
    attack = "a1" if metric == "toy_gap" else None
    errs = range_errors(_one(metric, key, value, config, attack, 0.5 if attack else None), reg)
    if problem is None:
        assert errs == []
    else:
        cell = f"{metric} x a1@0.5" if attack else metric
        assert errs == [f"reported.results[0].values.{key} ({cell}): {problem}"]


def test_a_protocol_name_maps_results_to_their_plugin():
    """A protocol may run a plugin under another name; its results are checked against that plugin."""
    proto = Protocol(name="toy-v1", version="1", description="toy", dataset={"name": "digits"},
                     metrics=({"plugin": "toy_score", "name": "score_b"},))
    errs = range_errors(_one("score_b", "score", 3.0), _registry(proto))
    assert errs == ["reported.results[0].values.score (score_b): 3.0 is outside [-1, 1]"]


@pytest.mark.parametrize("kwargs,message", [
    ({"key": ""}, "non-empty"),
    ({"key": "v", "better": "up"}, "'higher', 'lower' or None"),
    ({"key": "v", "range": (1, 0)}, "low <= high"),
    ({"key": "v", "range": (0, math.nan)}, "low <= high"),
    ({"key": "v", "range": "0-1"}, r"\(low, high\)"),
    ({"key": "v@*", "label": "v {} {}"}, r"at most one '\{\}' per '\*'"),
    ({"key": "v", "when": ["scale"]}, "mapping"),
])
def test_bad_declarations_fail_where_they_are_written(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LeaderboardValue(**kwargs)


def test_declaration_matching():
    d = LeaderboardValue("adv@*/k*", "adv {} k {}")
    assert d.match("adv@0.1/k3") == ("0.1", "3") and d.header("adv@0.1/k3") == "adv 0.1 k 3"
    assert d.match("adv@0.1") is None and d.match("xadv@0.1/k3") is None
    assert LeaderboardValue("a.b").match("axb") is None  # the key is literal apart from '*'
    assert LeaderboardValue("fid{}", "FID {}").header("fid{}") == "FID {}"  # a plain key's label as written


def test_a_when_naming_no_config_field_is_a_plugin_error():
    class Typo(Metric):
        name = "typo"
        config_class = GapConfig
        leaderboard = (LeaderboardValue("v", "v", when={"scael": "share"}),)

    with pytest.raises(PluginError, match=r"metric 'typo': LeaderboardValue.when names \['scael'\]"):
        Typo.leaderboard_values()


def test_the_leaderboard_code_names_no_builtin_metric():
    """harness/leaderboard/ is core: it must work from declarations alone, so neither the built-in
    metrics' names nor their column labels may appear in it."""
    from latentbench.plugins.metrics import METRICS

    labels = {d.label.split("{")[0].strip() for m in METRICS for d in m.leaderboard if d.label}
    words = {m.name for m in METRICS} | labels
    assert {"ms_ssim", "fid", "MS-SSIM(x~_r, x~_a)", "VN entropy"} <= words
    found = []
    for path in sorted((REPO_ROOT / "harness" / "leaderboard").iterdir()):
        if path.suffix not in (".py", ".json", ".html"):
            continue
        text = path.read_text()
        found += [f"{path.name}: {w}" for w in sorted(words) if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]
    assert found == []
