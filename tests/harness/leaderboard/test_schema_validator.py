"""Schema validation (jsonschema, Draft 2020-12) against hand-written cases: each keyword's error is
one line that starts with the field path."""

import pytest

from latentbench.errors import LatentBenchError
from latentbench.leaderboard import load_schema, schema_errors

SCHEMA = {
    "type": "object", "required": ["a", "b"], "additionalProperties": False,
    "properties": {
        "a": {"type": "integer", "minimum": 1},
        "b": {"$ref": "#/$defs/b"},
        "c": {"type": ["string", "null"], "pattern": "^x+$"},
        "d": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["s"],
                                            "properties": {"s": {"enum": ["ok", "bad"]}}}]},
        "e": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "$defs": {"b": {"type": "array", "items": {"type": "number", "maximum": 1}}},
}


def test_valid_document_has_no_errors():
    assert schema_errors({"a": 2, "b": [0.5, 1], "c": "xx", "d": None, "e": {"k": 1.5}}, SCHEMA) == []
    assert schema_errors({"a": 1, "b": [], "c": None, "d": {"s": "ok"}}, SCHEMA) == []


def test_each_keyword_reports_its_field():
    cases = {
        "b: missing required field": {"a": 1},
        "a: expected integer, got boolean": {"a": True, "b": []},  # JSON booleans are not integers
        "a: expected integer, got number": {"a": 1.5, "b": []},
        "a: 0 is below the minimum 1": {"a": 0, "b": []},
        "b[1]: 2 is above the maximum 1": {"a": 1, "b": [0, 2]},
        "b[0]: expected number, got string": {"a": 1, "b": ["0.1"]},
        "c: 'y' does not match ^x+$": {"a": 1, "b": [], "c": "y"},
        "z: unknown field": {"a": 1, "b": [], "z": 0},
        'd.s: "maybe" is not one of': {"a": 1, "b": [], "d": {"s": "maybe"}},
        "d.s: missing required field": {"a": 1, "b": [], "d": {}},  # the oneOf branch whose type fits
        "d: matches none of the allowed forms": {"a": 1, "b": [], "d": 5},
        "e.k: expected number, got string": {"a": 1, "b": [], "e": {"k": "1"}},
        "(entry): expected object, got array": [],
    }
    for expected, doc in cases.items():
        errs = schema_errors(doc, SCHEMA)
        assert any(e.startswith(expected) for e in errs), (expected, errs)


def test_every_problem_is_reported_once():
    errs = schema_errors({"a": 0, "z": 1, "y": 2}, SCHEMA)
    assert sorted(errs) == ["a: 0 is below the minimum 1", "b: missing required field",
                            "y: unknown field (allowed: a, b, c, d, e)", "z: unknown field (allowed: a, b, c, d, e)"]


def test_shipped_schema_rejects_a_null_reported_section():
    errs = schema_errors({"reported": None}, load_schema())
    assert any(e.startswith("reported: expected object, got null") for e in errs), errs
    assert any(e.startswith("name: missing required field") for e in errs)


def test_shipped_schema_names_the_value_inside_results():
    numbers = {"clean": {"mse": 0.1, "n_images": 3}, "results": [
        {"metric": "m", "attack": None, "budget": None, "values": {"v": 1.0}, "metric_config": {}},
        {"metric": "m", "attack": "a", "budget": -1, "values": {"v": "high"}, "metric_config": {}}]}
    errs = schema_errors({"reported": numbers}, load_schema())
    assert 'reported.results[1].values.v: expected number, got string "high"' in errs
    assert "reported.results[1].budget: -1 is below the minimum 0" in errs


def test_a_broken_schema_is_reported_as_such():
    with pytest.raises(LatentBenchError, match="not a valid Draft 2020-12 schema"):
        schema_errors({}, {"type": "objekt"})
