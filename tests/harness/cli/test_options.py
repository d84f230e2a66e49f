"""The shared options (--device, --data-root, --set, --work-dir/--output-dir, --no-progress): one
definition, the same defaults on every command that takes them, one fallback rule."""

from __future__ import annotations

import argparse

import pytest

from latentbench.cli import build_parser
from latentbench.cli.options import DEFAULT_DEVICE, SHARED, WORK_DIR_DEFAULTS, device_from, parse_set
from latentbench.errors import ConfigError

#: which command takes which shared option (every one it took before, plus those that now apply)
EXPECTED = {
    "run": {"device", "data_root", "work_dir", "no_progress", "executor", "ray_address"},
    "train": {"device", "data_root", "set", "work_dir", "no_progress"},
    "benchmark": set(SHARED),
    "leaderboard verify": {"device", "data_root", "work_dir", "executor", "ray_address"},
    "reproduce": {"device", "data_root", "work_dir"},
}


def _commands(parser, prefix=""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                full = f"{prefix}{name}"
                yield full, sp
                yield from _commands(sp, full + " ")


def _shared_actions():
    out = {}
    for name, sp in _commands(build_parser()):
        acts = {a.dest: a for a in sp._actions if a.dest in SHARED}
        if acts:
            out[name] = acts
    return out


def test_every_command_takes_the_shared_options_it_should():
    found = {name: set(acts) for name, acts in _shared_actions().items()}
    assert found == EXPECTED
    assert set(WORK_DIR_DEFAULTS) == {n for n, s in EXPECTED.items() if "work_dir" in s}


def test_shared_options_have_the_same_defaults_and_help_everywhere():
    by_dest: dict[str, dict] = {}
    for name, acts in _shared_actions().items():
        for dest, a in acts.items():
            by_dest.setdefault(dest, {})[name] = a
    for dest, acts in by_dest.items():
        defaults = {repr(a.default) for a in acts.values()}
        assert len(defaults) == 1, (dest, {n: a.default for n, a in acts.items()})
        # "not given" on every command: the fallback is the config's, then the documented one
        assert acts[next(iter(acts))].default in (None, False)
        if dest == "work_dir":
            for name, a in acts.items():
                assert {"--work-dir", "--output-dir"} <= set(a.option_strings)
                assert WORK_DIR_DEFAULTS[name] in a.help
        else:
            assert len({a.help for a in acts.values()}) == 1, dest
            assert len({tuple(a.option_strings) for a in acts.values()}) == 1, dest


@pytest.mark.parametrize("argv", [["run", "c.yaml"], ["train"], ["benchmark", "--protocol", "p", "--model", "m"],
                                  ["leaderboard", "verify", "e.json"], ["reproduce", "list"]])
def test_parsed_defaults_are_identical(argv):
    args = build_parser().parse_args(argv)
    for dest in SHARED:
        if hasattr(args, dest):
            assert getattr(args, dest) in (None, False), (argv, dest)
    # device: the flag, else the config's, else cpu, whatever the command
    assert device_from(args) == DEFAULT_DEVICE == "cpu"
    assert device_from(args, "cuda:1") == "cuda:1"
    assert device_from(build_parser().parse_args(argv + ["--device", "cuda:0"]), "cuda:1") == "cuda:0"


@pytest.mark.parametrize("argv", [["run", "c.yaml", "--output-dir", "D"], ["run", "c.yaml", "--work-dir", "D"],
                                  ["train", "-o", "D"], ["train", "--output", "D"],
                                  ["benchmark", "--protocol", "p", "--model", "m", "--work-dir", "D"],
                                  ["leaderboard", "verify", "e.json", "--work-dir", "D"], ["reproduce", "all", "--out", "D"]])
def test_every_earlier_spelling_of_the_output_folder_still_works(argv):
    assert build_parser().parse_args(argv).work_dir == "D"


def test_parse_set_reads_yaml_values():
    assert parse_set(["latent_dim=10", "hidden=[64, 64]", "backbone=mlp", "beta= 0.5"]) == \
        {"latent_dim": 10, "hidden": [64, 64], "backbone": "mlp", "beta": 0.5}
    assert parse_set(None) == {}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set(["latent_dim"])
