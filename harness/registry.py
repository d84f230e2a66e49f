"""Plugin loading and the component registry.

Entry points of the ``latentbench`` group are loaded one at a time, so one broken third-party
plugin is reported and skipped instead of stopping the rest (pluggy's
``load_setuptools_entrypoints`` stops at the first failure, docs/methods.md §5). Set
``LATENTBENCH_STRICT_PLUGINS=1`` (or pass ``--strict-plugins``) to make any failure an error, and
``LATENTBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the built-in plugins. One plugin is kept from
loading by its name (as ``latentbench plugins`` lists it), as pytest's ``-p no:NAME``: ``latentbench -p
no:NAME ...`` (repeatable) or ``LATENTBENCH_DISABLE_PLUGINS=name1,name2``.

:meth:`Registry.plugin_identity` says which code provides a component (distribution, version and a
digest of the defining module's source); result keys include it, so upgraded or edited plugins
recompute their cells instead of reusing old ones.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import inspect
import os
import sys
import warnings
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import pluggy

from latentbench import PROJECT, hookspecs
from latentbench.errors import PluginError, UnknownComponentError

ENTRY_POINT_GROUP = "latentbench"
BUILTIN_DISTRIBUTION = "latentbench"
ENV_STRICT = "LATENTBENCH_STRICT_PLUGINS"
ENV_DISABLE_AUTOLOAD = "LATENTBENCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_DISABLE = "LATENTBENCH_DISABLE_PLUGINS"
#: used when the package runs from a source tree without being installed (no entry points)
BUILTIN_MODULES = ("latentbench.plugins.datasets", "latentbench.plugins.models", "latentbench.plugins.attacks",
                   "latentbench.plugins.metrics", "latentbench.plugins.protocols", "latentbench.plugins.experiments")

KINDS = {
    "model": "latentbench_models",
    "attack": "latentbench_attacks",
    "metric": "latentbench_metrics",
    "dataset": "latentbench_datasets",
    "protocol": "latentbench_protocols",
    "experiment": "latentbench_experiments",
}


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "module": self.module, "provides": self.provides, "error": self.error}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(ENV_DISABLE, "").split(",") if n.strip()}


@lru_cache(maxsize=None)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    # keyed by modification time and size too: an edited file gets a new digest in the same process
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def source_digest(obj: Any) -> Optional[str]:
    """sha256 of the source file of the module that defines ``obj`` (a class or a function, or an
    instance's class); None when there is no such file (code built at run time, a notebook cell, a
    frozen module)."""
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    module = sys.modules.get(getattr(target, "__module__", ""), None)
    path = getattr(module, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    st = os.stat(path)
    return _file_digest(os.path.realpath(path), st.st_mtime_ns, st.st_size)


def _check_hooks(plugin: Any, name: str) -> None:
    """A function named like a hook must match a spec: reject unknown hooks and unknown arguments."""
    spec_names = {n for n in dir(hookspecs) if n.startswith("latentbench_")}
    for attr in dir(plugin):
        if not attr.startswith("latentbench_"):
            continue
        fn = getattr(plugin, attr)
        if not callable(fn):
            continue
        if attr not in spec_names:
            raise PluginError(f"plugin '{name}' defines unknown hook '{attr}'. Known hooks: {', '.join(sorted(spec_names))}")
        spec_args = set(inspect.signature(getattr(hookspecs, attr)).parameters)
        impl_args = set(inspect.signature(fn).parameters)
        extra = impl_args - spec_args
        if extra:
            raise PluginError(
                f"plugin '{name}' hook '{attr}' has arguments {sorted(extra)} that the spec does not provide "
                f"(spec arguments: {sorted(spec_args) or 'none'}). Fix the hook signature.")


class Registry:
    """Every installed model, attack, metric, dataset and protocol, by name, with its provider."""

    def __init__(self, pm: pluggy.PluginManager, infos: list[PluginInfo], strict: bool,
                 disabled: Iterable[str] = ()):
        self.pm = pm
        self.plugins = infos
        self.strict = strict
        #: plugin names asked not to load (-p no:NAME, LATENTBENCH_DISABLE_PLUGINS)
        self.disabled = sorted(disabled)
        self.components: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
        self.provider: dict[tuple[str, str], str] = {}
        by_name = {i.name: i for i in infos}
        for kind, hook in KINDS.items():
            for impl in getattr(pm.hook, hook).get_hookimpls():
                info = by_name.get(impl.plugin_name)
                try:
                    items = impl.function() or []
                except Exception as e:  # a plugin whose hook raises is reported like one that fails to import
                    self._fail(info, impl.plugin_name, f"hook {hook} raised {type(e).__name__}: {e}")
                    continue
                names = []
                for item in items:
                    cname = getattr(item, "name", None)
                    if not cname:
                        self._fail(info, impl.plugin_name, f"{kind} {item!r} has no 'name'")
                        continue
                    if cname in self.components[kind]:
                        other = self.provider[(kind, cname)]
                        raise PluginError(
                            f"{kind} name '{cname}' is provided by two plugins: '{other}' and '{impl.plugin_name}'. "
                            f"Uninstall one of them or rename the component in one plugin.")
                    self.components[kind][cname] = item
                    self.provider[(kind, cname)] = impl.plugin_name
                    names.append(cname)
                if info is not None:
                    info.provides.setdefault(kind + "s", []).extend(sorted(names))

    def _fail(self, info: Optional[PluginInfo], name: str, msg: str) -> None:
        if self.strict:
            raise PluginError(f"plugin '{name}': {msg}")
        warnings.warn(f"latentbench: skipping plugin '{name}': {msg}", RuntimeWarning, stacklevel=3)
        if info is not None:
            info.error = msg

    def get(self, kind: str, name: str, path: str | None = None) -> Any:
        table = self.components[kind]
        if name not in table:
            raise UnknownComponentError(kind, name, table.keys(), path)
        return table[name]

    def plugin_identity(self, kind: str, name: str) -> dict[str, Any]:
        """Which code provides component ``name`` of ``kind``: the registering plugin, its
        distribution and version, and the sha256 of the source of the module defining the component
        (catches edits to built-ins and editable installs, whose version does not change)."""
        component = self.get(kind, name)
        provider = self.provider[(kind, name)]
        info = next((i for i in self.plugins if i.name == provider), None)
        return {"plugin": name, "provider": provider,
                "distribution": info.distribution if info else None, "version": info.version if info else None,
                "source_sha256": source_digest(component)}

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def model(self, name: str, path: str | None = None):
        return self.get("model", name, path)

    def attack(self, name: str, path: str | None = None):
        return self.get("attack", name, path)

    def metric(self, name: str, path: str | None = None):
        return self.get("metric", name, path)

    def dataset(self, name: str, path: str | None = None):
        return self.get("dataset", name, path)

    def protocol(self, name: str, path: str | None = None):
        return self.get("protocol", name, path)

    def experiment(self, name: str, path: str | None = None):
        return self.get("experiment", name, path)

    def call_hook(self, hook: str, **kwargs) -> list[Any]:
        """Call a notification hook; one plugin failing is reported and does not stop the others."""
        out = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                out.append(impl.function(**{k: kwargs[k] for k in impl.argnames}))
            except Exception as e:
                if self.strict:
                    raise
                warnings.warn(f"latentbench: plugin '{impl.plugin_name}' hook {hook} raised {type(e).__name__}: {e}",
                              RuntimeWarning, stacklevel=2)
        return out


def _entry_points() -> Iterable[md.EntryPoint]:
    return md.entry_points(group=ENTRY_POINT_GROUP)


def load_registry(strict: bool | None = None, autoload: bool | None = None,
                  extra_plugins: Iterable[Any] = (), disabled: Iterable[str] = ()) -> Registry:
    """Build a plugin manager and registry from the ``latentbench`` entry points.

    :param strict: raise on any plugin failure (default: ``LATENTBENCH_STRICT_PLUGINS``).
    :param autoload: load third-party entry points (default: not ``LATENTBENCH_DISABLE_PLUGIN_AUTOLOAD``).
    :param extra_plugins: plugin objects/modules to register directly (tests, notebooks).
    :param disabled: plugin names not to load, on top of ``LATENTBENCH_DISABLE_PLUGINS``.
    """
    strict = _env_true(ENV_STRICT) if strict is None else strict
    autoload = (not _env_true(ENV_DISABLE_AUTOLOAD)) if autoload is None else autoload
    disabled = set(disabled) | disabled_from_env()
    candidates: set[str] = set()

    def skip(name: str) -> bool:
        candidates.add(name)
        return name in disabled
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []

    def register(obj: Any, name: str, dist: str, version: str, module: str) -> None:
        info = PluginInfo(name=name, distribution=dist, version=version, module=module)
        infos.append(info)
        try:
            _check_hooks(obj, name)
            pm.register(obj, name=name)
        except Exception as e:
            info.error = f"{type(e).__name__}: {e}"
            if strict:
                raise PluginError(f"plugin '{name}' from distribution '{dist}' failed to register: {e}") from e
            warnings.warn(f"latentbench: skipping plugin '{name}' ({dist}): {info.error}", RuntimeWarning, stacklevel=3)

    seen_builtin = False
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        is_builtin = dist.lower() == BUILTIN_DISTRIBUTION
        seen_builtin |= is_builtin
        if skip(ep.name) or (not is_builtin and not autoload):
            continue
        if pm.has_plugin(ep.name) or any(i.name == ep.name for i in infos):
            continue
        try:
            obj = ep.load()
        except Exception as e:
            msg = f"failed to import {ep.value}: {type(e).__name__}: {e}"
            infos.append(PluginInfo(name=ep.name, distribution=dist, version=version, module=ep.value, error=msg))
            if strict:
                raise PluginError(f"plugin '{ep.name}' from distribution '{dist}' {msg}") from e
            warnings.warn(f"latentbench: skipping plugin '{ep.name}' ({dist}): {msg}", RuntimeWarning, stacklevel=2)
            continue
        register(obj, ep.name, dist, version, ep.value)
    if not seen_builtin:  # running from a source checkout that was never pip-installed
        from latentbench import __version__
        for mod in BUILTIN_MODULES:
            try:
                obj = importlib.import_module(mod)
            except ModuleNotFoundError:
                continue
            if not skip("builtin_" + mod.split(".")[-1]):
                register(obj, "builtin_" + mod.split(".")[-1], BUILTIN_DISTRIBUTION, __version__, mod)
    for i, obj in enumerate(extra_plugins):
        name = getattr(obj, "__name__", None) or f"extra_{i}"
        if not skip(name):
            register(obj, name, "(registered directly)", "", name)
    unknown = sorted(disabled - candidates)
    if unknown:  # a misspelt name would otherwise disable nothing without a word
        msg = (f"plugins to disable {unknown} (-p no:NAME / {ENV_DISABLE}) are not installed; "
               f"installed plugins: {', '.join(sorted(candidates))}")
        if strict:
            raise PluginError(msg)
        warnings.warn(f"latentbench: {msg}", RuntimeWarning, stacklevel=2)
    return Registry(pm, infos, strict, disabled)


_REGISTRY: Optional[Registry] = None


def get_registry(**kwargs) -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None or kwargs:
        _REGISTRY = load_registry(**kwargs)
    return _REGISTRY


def reset_registry() -> None:
    global _REGISTRY
    _REGISTRY = None
