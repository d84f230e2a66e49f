"""Entry schema: ``schema.json`` (shipped next to this module) checked with the ``jsonschema``
library's Draft 2020-12 validator.

``jsonschema`` decides what is valid; this module only words its errors as one line each,
``<field path>: <problem>`` (``reported.results[3].values.<key>: expected number, got string "x"``), so
that ``latentbench leaderboard validate`` names the field a submitter has to fix.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from latentbench.errors import LatentBenchError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else SCHEMA_PATH
    if not p.exists():
        raise LatentBenchError(f"leaderboard schema {p} not found; it ships with the package as "
                               f"latentbench/leaderboard/schema.json")
    return json.loads(p.read_text())


@lru_cache(maxsize=8)
def _validator(schema_json: str) -> Draft202012Validator:
    # keyed on the schema's text: validate_tree checks every entry against the same schema, and
    # check_schema (the meta-schema pass) need not run once per entry
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        raise LatentBenchError(f"the leaderboard schema is not a valid Draft 2020-12 schema: {e.message}") from None
    return Draft202012Validator(schema)


def schema_errors(value: Any, schema: dict) -> list[str]:
    """Errors of ``value`` against ``schema`` as '<field path>: <problem>' strings (empty when valid)."""
    v = _validator(json.dumps(schema))
    out: list[str] = []
    for e in v.iter_errors(value):
        out += _describe(e)
    return list(dict.fromkeys(out))  # one line per problem, in the order jsonschema found them


def _field(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_name(v: Any) -> str:
    # JSON's names; Python's bool is an int subclass, so test it first
    for name, t in (("boolean", bool), ("integer", int), ("number", float), ("string", str), ("array", list),
                    ("object", dict)):
        if isinstance(v, t):
            return name
    return "null" if v is None else type(v).__name__


def _describe(e: ValidationError) -> list[str]:
    path = _field(e.absolute_path)
    where = path or "(entry)"
    inst, kw, want = e.instance, e.validator, e.validator_value
    if kw == "required":
        # jsonschema raises one error per missing key; list each under its own field path
        return [f"{path + '.' if path else ''}{k}: missing required field" for k in want
                if isinstance(inst, dict) and k not in inst]
    if kw == "additionalProperties":
        props = e.schema.get("properties", {})
        return [f"{path + '.' if path else ''}{k}: unknown field (allowed: {', '.join(sorted(props))})"
                for k in inst if k not in props]
    if kw == "type":
        types = want if isinstance(want, list) else [want]
        return [f"{where}: expected {' or '.join(types)}, got {_type_name(inst)} {json.dumps(inst)[:60]}"]
    if kw == "enum":
        return [f"{where}: {json.dumps(inst)} is not one of {want}"]
    if kw == "minLength":
        return [f"{where}: must not be empty" if want == 1 else f"{where}: is shorter than {want} characters"]
    if kw == "pattern":
        return [f"{where}: '{inst[:60]}' does not match {want}"]
    if kw == "minimum":
        return [f"{where}: {inst} is below the minimum {want}"]
    if kw == "maximum":
        return [f"{where}: {inst} is above the maximum {want}"]
    if kw == "oneOf":
        return _one_of(e, where)
    return [f"{where}: {e.message}"]


def _one_of(e: ValidationError, where: str) -> list[str]:
    by_branch: dict[int, list[ValidationError]] = {i: [] for i in range(len(e.validator_value))}
    for sub in e.context or ():
        by_branch[sub.relative_schema_path[0]].append(sub)
    if sum(not errs for errs in by_branch.values()) > 1:
        return [f"{where}: matches more than one of the allowed forms"]
    # report the branch whose type fits, which is what the writer most likely meant (a null
    # `reproduced` is fine; a `reproduced` object with a missing field names that field)
    fitting = [errs for errs in by_branch.values()
               if not any(s.validator == "type" and not s.relative_path for s in errs)]
    if fitting:
        return [line for s in fitting[0] for line in _describe(s)]
    return [f"{where}: matches none of the allowed forms"]
