"""Errors the harness raises for bad input: each names the problem and how to fix it."""

from __future__ import annotations

import difflib
from typing import Iterable


class LatentBenchError(Exception):
    """Base class: a user-facing error whose message says what is wrong and what to do."""


class ConfigError(LatentBenchError):
    """A run, model, attack or metric configuration is invalid."""

    def __init__(self, path: str, problem: str, fix: str | None = None):
        self.path = path
        msg = f"config error at '{path}': {problem}"
        if fix:
            msg += f" -- {fix}"
        super().__init__(msg)


class PluginError(LatentBenchError):
    """A plugin failed to load, has a bad hook, or clashes with another plugin."""


class UnknownComponentError(LatentBenchError):
    """A model, attack, metric, dataset or protocol name that no installed plugin provides."""

    def __init__(self, kind: str, name: str, known: Iterable[str], path: str | None = None):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        where = f" at '{path}'" if path else ""
        msg = f"unknown {kind} '{name}'{where}."
        if close:
            msg += f" Did you mean: {', '.join(close)}?"
        msg += f" Installed {kind}s: {', '.join(known) or '(none)'}. Run `latentbench plugins` to list plugins."
        self.kind, self.name, self.suggestions = kind, name, close
        super().__init__(msg)


class CheckpointError(LatentBenchError):
    """A checkpoint folder is missing files, unsafe, or does not match its model's config."""


class StoreError(LatentBenchError):
    """The results store cannot be read or written (a corrupted or truncated SQLite file, ...)."""


class NonFiniteError(LatentBenchError):
    """A model, attack or metric produced NaN or infinite values."""


def suggest(name: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
