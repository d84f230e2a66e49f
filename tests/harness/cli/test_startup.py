"""`latentbench --help` and `--version` start without importing torch or loading plugins (issue: start-up
time); a command's own help still loads plugins, since plugins may add options to it."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from latentbench.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def _torch_imported(argv: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    last = out.stderr.strip().splitlines()[-1]
    assert last in ("TORCH", "NO-TORCH"), out.stderr
    return last == "TORCH"


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["-h"]])
def test_top_level_help_and_version_do_not_import_torch(argv):
    assert not _torch_imported(argv)


def test_a_command_loads_the_plugins():
    assert _torch_imported(["run", "--help"])


def test_package_names_resolve_lazily():
    import latentbench

    assert latentbench.Autoencoder.__name__ == "Autoencoder"
    assert "Protocol" in dir(latentbench)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        latentbench.nope  # noqa: B018
