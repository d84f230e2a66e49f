"""Typed dataclass configs built from plain YAML/JSON dicts with errors that name the key path."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import yaml

from latentbench.errors import ConfigError, suggest


#: metadata key of a dataclass field that validation fills (a typed config built from the user's
#: mapping): not a key a user can write, and left out of :func:`to_plain`, which records what the
#: user wrote (run_config.json) and what cell keys hash
DERIVED = "latentbench_derived"


def derived_field(default_factory=None):
    """A field filled once by validation and carried from then on (e.g. an attack's typed config per
    budget), so later stages never rebuild it from the user's dict."""
    kw = {"default_factory": default_factory} if default_factory is not None else {"default": None}
    return dataclasses.field(init=False, repr=False, compare=False, metadata={DERIVED: True}, **kw)


#: example configs shipped inside the package (``latentbench run quickstart``)
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def resolve_config_path(path: str | Path) -> Path:
    """A path to a YAML file, or the name of a config shipped with LatentBench (``quickstart``,
    ``train_vae_digits``, ...), so the examples work outside a source checkout."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and len(p.parts) == 1 and (SHIPPED_CONFIGS / f"{p}.yaml").exists():
        return SHIPPED_CONFIGS / f"{p}.yaml"
    return p


def read_yaml_file(path: str | Path, missing_hint: str | None = None, mapping_hint: str | None = None) -> Any:
    """Parse a user's YAML file (or a shipped config by name); every failure names the file and the
    fix. With ``mapping_hint`` the top level must be a mapping (an empty file reads as ``{}``) and
    the hint says what it holds."""
    p = resolve_config_path(path)
    hint = missing_hint or "pass the path of a YAML file"
    if not p.exists():
        shipped = f"; or the name of a shipped config: {', '.join(shipped_configs())}"
        raise ConfigError(str(p), "file not found", hint + shipped)
    if p.is_dir():
        raise ConfigError(str(p), "is a folder, not a YAML file", hint)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        # PyYAML's message spans lines (context, marks); the CLI prints errors as one line
        raise ConfigError(str(p), f"not valid YAML: {' '.join(str(e).split())}", "fix the YAML syntax at the line shown") from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), "is not UTF-8 text", hint) from None
    except OSError as e:
        raise ConfigError(str(p), f"cannot be read ({e.strerror or e})", "check the file's permissions") from None
    if mapping_hint is not None:
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(str(p), mapping_hint)
    return data


def check_type(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if value is None and len(non_none) < len(args):
            return None
        if len(non_none) == 1:  # Optional[X]: report X's own error, which names the inner key
            return check_type(value, non_none[0], path)
        errors = []
        for a in args:
            if a is type(None):
                if value is None:
                    return None
                continue
            try:
                return check_type(value, a, path)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(path, f"expected {tp}, got {type(value).__name__} {value!r}")
    if tp in (tuple, list):  # unparametrised: any items
        tp, origin, args = tp[Any], tp, (Any, ...) if tp is tuple else (Any,)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(path, f"expected {len(args)} items, got {len(value)}")
            return tuple(check_type(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [check_type(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {type(value).__name__} {value!r}",
                              "write a mapping such as {key: value}, or {} for none")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(path, f"expected one of {list(args)}, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {type(value).__name__} {value!r}")
        # no config field means anything by NaN or infinity (YAML .nan, .inf): refuse them here, once
        if not math.isfinite(value):
            raise ConfigError(path, f"expected a finite number, got {value}", "write a finite number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(path, f"expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {type(value).__name__} {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {type(value).__name__} {value!r}")
        return build_dataclass(tp, value, path)
    return value


def build_dataclass(cls: type, data: dict[str, Any] | None, path: str = "config"):
    """Instantiate dataclass ``cls`` from ``data``; unknown keys and bad types raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = suggest(key, fields)
            fix = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"{path}.{key}", f"unknown key for {cls.__name__}", fix)
        kwargs[key] = check_type(value, hints.get(key, Any), f"{path}.{key}")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:  # missing required fields, or a __post_init__ check
        raise ConfigError(path, str(e)) from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, AssertionError) as e:
            raise ConfigError(path, str(e)) from None
    return obj


def to_plain(obj: Any) -> Any:
    """Dataclass/tuple tree -> JSON-serialisable plain data (derived fields left out)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get(DERIVED)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj
