"""The ``latentbench`` command line.

One module per command family, each with ``add_commands(sub)``: :mod:`.plugins`, :mod:`.run` (run,
report), :mod:`.train`, :mod:`.benchmark`, :mod:`.leaderboard` (validate, render, verify) and
:mod:`.reproduce`. Options several commands take (--device, --data-root, --set, --work-dir,
--no-progress) are defined once, with their defaults, in :mod:`.options`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from latentbench import __version__
from latentbench.cli import benchmark, leaderboard, options, plugins, reproduce, run, train, zoo
from latentbench.errors import LatentBenchError

DESCRIPTION = """LatentBench: measure how robust the latent spaces of generative autoencoders are.

Typical use:
  latentbench plugins                      # what is installed
  latentbench train train_vae_digits       # train a model (a shipped config), save a safetensors checkpoint
  latentbench run quickstart               # train/evaluate models x attacks x metrics, print a table
  latentbench report runs/quickstart       # re-render the stored results
"""

#: the command families, in the order `latentbench --help` lists them
COMMAND_MODULES = (plugins, run, train, benchmark, leaderboard, reproduce, zoo)

__all__ = ["build_parser", "main", "options"]


def build_parser(registry=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentbench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"latentbench {__version__}")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail when any plugin cannot be loaded (also: LATENTBENCH_STRICT_PLUGINS=1)")
    options.add_disable_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    if registry is not None:
        for name, sp in sub.choices.items():
            registry.call_hook("latentbench_add_cli_arguments", subcommand=name, parser=sp)
    return parser


#: top-level arguments that end the program before any command runs
_NO_COMMAND = {"-h", "--help", "--version"}


def _needs_plugins(argv: list[str]) -> bool:
    """False for `latentbench`, `latentbench --help` and `latentbench --version`: the top-level help
    lists the commands, which plugins do not change, so loading plugins (and torch, ~2-5 s) is
    skipped. A command's own help (`latentbench run --help`) loads them: plugins may add options."""
    if not argv:
        return False
    commands = set(_command_names())
    if any(a in commands for a in argv):
        return True
    return not (_NO_COMMAND & set(argv))


def _command_names() -> list[str]:
    sub = argparse.ArgumentParser(add_help=False).add_subparsers()
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return list(sub.choices)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--strict-plugins" in argv:
        os.environ["LATENTBENCH_STRICT_PLUGINS"] = "1"
    try:
        registry = None
        if _needs_plugins(argv):
            from latentbench.registry import get_registry

            disabled = options.disabled_from_argv(argv)
            registry = get_registry(disabled=disabled) if disabled else get_registry()
        parser = build_parser(registry)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except LatentBenchError as e:
        print(f"latentbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentbench: interrupted; finished cells are kept in the results store, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
