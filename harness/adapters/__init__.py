"""Adapters: other libraries' autoencoders as models :func:`latentbench.evaluate` accepts (docs/api.md).

Each adapter is a module here (listed in :data:`ADAPTERS`) defining

- ``LIBRARY``: the library's import name, and ``EXTRA``: the optional extra that installs it
  (``pip install "latentbench[diffusers]"``);
- ``matches(model) -> bool``: whether ``model`` is one of the library's models, judged from the
  modules its classes come from, so the check never imports a library that is not installed;
- ``adapt(model, **options) -> latentbench.api.Wrapped``: the model as two functions in the shapes
  :func:`latentbench.wrap` takes (the encoder mean, decoded images, the input range, and a buffer
  hashing the adapter's settings and the library's version, so other settings or another version
  of the library key other stored results).

:func:`latentbench.evaluate` calls :func:`auto_adapt`, so ``evaluate(vae, protocol)`` works on a
diffusers ``AutoencoderKL`` or a pythae model with the adapter's defaults; call the adapter's
``adapt`` yourself for its options (CONTRIBUTING.md, "How to add an adapter").
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Optional

from latentbench.errors import LatentBenchError

#: the adapter modules, tried in this order
ADAPTERS = ("latentbench.adapters.diffusers", "latentbench.adapters.pythae")


class AdapterError(LatentBenchError):
    """A model an adapter cannot present to LatentBench, or a library that is not installed."""


def from_library(model: Any, library: str) -> bool:
    """Whether the class of ``model`` (or a base class) is defined in ``library``'s package."""
    return any((getattr(c, "__module__", "") or "").split(".")[0] == library for c in type(model).__mro__)


def require(library: str, extra: str):
    """Import ``library``, or say how to install it."""
    try:
        return importlib.import_module(library)
    except ImportError as e:
        raise AdapterError(f"the {library} adapter needs the {library} package, which is not importable ({e}) -- "
                           f"pip install \"latentbench[{extra}]\"") from None


def find_adapter(model: Any) -> Optional[ModuleType]:
    """The adapter module whose ``matches`` accepts ``model``, or None."""
    for name in ADAPTERS:
        mod = importlib.import_module(name)
        if mod.matches(model):
            return mod
    return None


def auto_adapt(model: Any) -> Any:
    """``model`` adapted with its library's adapter (default options), or ``model`` itself when no
    adapter recognises it."""
    mod = find_adapter(model)
    return model if mod is None else mod.adapt(model)
