"""Entry schema: a small JSON-Schema subset interpreter driven by leaderboard/schema.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from latentbench.errors import LatentBenchError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # JSON has no bool/int overlap; Python's bool is an int subclass, so exclude it explicitly
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else SCHEMA_PATH
    if not p.exists():
        raise LatentBenchError(f"leaderboard schema {p} not found; it ships with the repository as leaderboard/schema.json")
    return json.loads(p.read_text())


def _type_name(v: Any) -> str:
    for name, test in _TYPES.items():
        if test(v):
            return name
    return type(v).__name__


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise LatentBenchError(f"schema $ref '{ref}' is not supported: only local '#/...' references")
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k not in ("$ref", "description")}}
    return schema


def schema_errors(value: Any, schema: dict, root: dict | None = None, path: str = "") -> list[str]:
    """Errors of ``value`` against ``schema`` as '<field path>: <problem>' strings (empty when valid).

    Supports the keywords the entry schema uses: $ref, oneOf, type, enum, required, properties,
    additionalProperties, items, minimum, maximum, minLength, pattern."""
    root = root or schema
    schema = _resolve(schema, root)
    where = path or "(entry)"
    if "oneOf" in schema:
        branches = [schema_errors(value, s, root, path) for s in schema["oneOf"]]
        if sum(not b for b in branches) == 1:
            return []
        # report the branch whose type fits, which is what the writer most likely meant
        fitting = [b for s, b in zip(schema["oneOf"], branches) if "type" not in _resolve(s, root)
                   or _TYPES[_resolve(s, root)["type"]](value)]
        return fitting[0] if fitting else [f"{where}: matches none of the allowed forms"]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: expected {' or '.join(types)}, got {_type_name(value)} {json.dumps(value)[:60]}"]
    errs: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {json.dumps(value)} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errs.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{where}: '{value[:60]}' does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errs.append(f"{path + '.' if path else ''}{key}: missing required field")
        props = schema.get("properties", {})
        for key, v in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                errs += schema_errors(v, props[key], root, sub)
            elif schema.get("additionalProperties") is False:
                errs.append(f"{sub}: unknown field (allowed: {', '.join(sorted(props))})")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += schema_errors(v, schema["additionalProperties"], root, sub)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errs += schema_errors(item, schema["items"], root, f"{path}[{i}]")
    return errs
