"""Options shared by several commands, defined once with one set of defaults.

=====================  =========================================================================
option                 when not given
=====================  =========================================================================
``--device DEV``       the config's device (run config ``device``, ``model.train.device``), else
                       ``cpu`` (:data:`DEFAULT_DEVICE`)
``--data-root DIR``    the config's ``dataset.data_root``, else the dataset plugin's own search
                       (e.g. ``/usr/share/datasets/<name>/``)
``--set KEY=VALUE``    nothing: the model config is the config's (repeatable; VALUE in YAML syntax)
``--work-dir DIR``     also spelled ``--output-dir``: the config's output folder, else the
                       command's folder in :data:`WORK_DIR_DEFAULTS`
``--no-progress``      progress bars on (unless the config says ``progress: false``)
``--executor NAME``    ``local`` (:data:`~latentbench.executors.DEFAULT_EXECUTOR`): cells one after
                       another in this process; ``ray``: Ray tasks (``pip install 'latentbench[ray]'``)
``--ray-address ADDR`` a local Ray instance started for the run (all cores); implies
                       ``--executor ray`` when that is not given
=====================  =========================================================================

Every shared option's argparse default is "not given" (None, or False for ``--no-progress``), so a
command can tell a flag from a fallback; the fallbacks above are applied by :func:`device_from`,
:func:`executor_from` and the commands, never by argparse.
"""

from __future__ import annotations

import argparse
from typing import Any, Optional

import yaml

from latentbench.errors import ConfigError

DEFAULT_DEVICE = "cpu"
#: where ``latentbench reproduce`` writes (one folder per experiment)
REPRODUCTION_DIR = "docs/reproduction"

#: the folder each command writes to when neither --work-dir nor its config names one
WORK_DIR_DEFAULTS = {
    "run": "the config's output_dir (runs/run when it has none)",
    "train": "the config's output, else checkpoints/<model name>-<dataset>",
    "benchmark": "runs/benchmark/<protocol>/<name>",
    "leaderboard verify": "a fresh temporary folder, removed afterwards",
    "reproduce": REPRODUCTION_DIR,
}

SHARED = ("device", "data_root", "set", "work_dir", "no_progress", "executor", "ray_address")

_HELP = {
    "device": f"cpu, cuda, cuda:1, ... (default: the config's device, else {DEFAULT_DEVICE})",
    "data_root": "folder holding dataset files, e.g. the Fashion-MNIST IDX files (default: the config's "
                 "dataset.data_root, else the dataset's own search path)",
    "set": "model config field on top of the config's, repeatable (VALUE in YAML syntax: latent_dim=10, hidden=[64,64])",
    "no_progress": "no progress bars",
    "executor": "where cells and trainings run: local (this process, the default) or ray (Ray tasks on this "
                "machine's cores and GPUs, or on a cluster with --ray-address; pip install 'latentbench[ray]')",
    "ray_address": "join the Ray cluster at ADDR (e.g. auto, or ray://head:10001) instead of starting a local "
                   "Ray instance; implies --executor ray",
}


def add_shared_options(parser: argparse.ArgumentParser, command: str, *names: str,
                       work_dir_aliases: tuple[str, ...] = ()) -> None:
    """Add the shared options ``names`` (from :data:`SHARED`) to ``command``'s parser.
    ``work_dir_aliases`` keeps a command's older spelling of --work-dir (train's -o/--output)."""
    unknown = set(names) - set(SHARED)
    assert not unknown, f"not shared options: {unknown}"
    if "device" in names:
        parser.add_argument("--device", default=None, help=_HELP["device"])
    if "data_root" in names:
        parser.add_argument("--data-root", dest="data_root", default=None, metavar="DIR", help=_HELP["data_root"])
    if "set" in names:
        parser.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE", help=_HELP["set"])
    if "work_dir" in names:
        parser.add_argument("--work-dir", "--output-dir", *work_dir_aliases, dest="work_dir", default=None, metavar="DIR",
                            help=f"folder the command writes to (default: {WORK_DIR_DEFAULTS[command]})")
    if "no_progress" in names:
        parser.add_argument("--no-progress", dest="no_progress", action="store_true", default=False, help=_HELP["no_progress"])
    if "executor" in names:
        from latentbench.executors import EXECUTORS

        parser.add_argument("--executor", default=None, choices=EXECUTORS, help=_HELP["executor"])
    if "ray_address" in names:
        parser.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDR", help=_HELP["ray_address"])


def device_from(args: argparse.Namespace, config_device: Optional[str] = None) -> str:
    """--device, else the config's device, else :data:`DEFAULT_DEVICE`."""
    return getattr(args, "device", None) or config_device or DEFAULT_DEVICE


def executor_from(args: argparse.Namespace) -> dict[str, Any]:
    """The Runner's executor arguments: --executor, else ``ray`` when --ray-address was given, else
    ``local``. An unknown name or a missing Ray is reported by the Runner, before any work."""
    from latentbench.executors import DEFAULT_EXECUTOR

    address = getattr(args, "ray_address", None)
    executor = getattr(args, "executor", None) or ("ray" if address else DEFAULT_EXECUTOR)
    return {"executor": executor, "ray_address": address}


def parse_set(items: Optional[list[str]]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a mapping, each VALUE read as YAML."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(item, "expected KEY=VALUE (VALUE in YAML syntax, e.g. latent_dim=10 or hidden=[64,64])")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def merged(mapping: dict[str, Any], key: str, extra: dict[str, Any]) -> Any:
    """``mapping[key]`` updated with ``extra`` (a command-line override of a config section). A value
    that is not a mapping is returned as it is, for the config builder to report with its key path."""
    base = mapping.get(key)
    if base is None:
        base = {}
    if not isinstance(base, dict):
        return base
    return {**base, **extra}


DISABLE_HELP = ("keep plugin NAME (as `latentbench plugins` lists it) from loading, as pytest's -p no:NAME; "
                "repeatable (also: LATENTBENCH_DISABLE_PLUGINS=name1,name2)")


def add_disable_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", dest="disable_plugins", action="append", default=None, metavar="no:NAME", help=DISABLE_HELP)


def disabled_plugins(values: Optional[list[str]]) -> list[str]:
    """The NAMEs of ``-p no:NAME`` values."""
    names = []
    for v in values or []:
        name = v[3:].strip() if v.startswith("no:") else ""
        if not name:
            raise ConfigError("-p", f"'{v}' is not no:NAME",
                              "write -p no:NAME to keep plugin NAME from loading (`latentbench plugins` lists the names)")
        names.append(name)
    return names


def disabled_from_argv(argv: list[str]) -> list[str]:
    """``-p no:NAME`` values read before argparse runs: the registry (whose plugins may add command
    line options) is loaded before the command line is parsed. Only the global options, before the
    command's name, are looked at (argparse takes -p only there)."""
    values, it = [], iter(argv)
    for tok in it:
        if not tok.startswith("-"):
            break
        if tok == "-p":
            values.append(next(it, ""))
        elif tok.startswith("-p") and not tok.startswith("--"):
            values.append(tok[2:].lstrip("="))
    return disabled_plugins(values)


def registry_for(args: argparse.Namespace):
    """The plugin registry, strict when --strict-plugins was given, without the -p no:NAME plugins."""
    from latentbench.registry import get_registry

    disabled = disabled_plugins(getattr(args, "disable_plugins", None))
    if getattr(args, "strict_plugins", False):
        return get_registry(strict=True, disabled=disabled)
    current = get_registry()  # main() loaded it already, without the -p no:NAME plugins
    return current if set(disabled) <= set(current.disabled) else get_registry(disabled=disabled)
