import json
import shutil
from pathlib import Path

import pytest
from tests import REPO_ROOT

ROOT = REPO_ROOT
LEADERBOARD = ROOT / "leaderboard"
#: the entry used where a test re-runs a protocol: the plain VAE (MLP 128-128, no training-time
#: attacks), the cheapest digits-v1 entry to evaluate
CHEAP_ENTRY = LEADERBOARD / "digits-v1" / "vae.json"


@pytest.fixture
def lb_copy(tmp_path):
    """A copy of the shipped leaderboard (entries, schema, the cheap entry's checkpoint) to break."""
    dest = tmp_path / "leaderboard"
    shutil.copytree(LEADERBOARD, dest, ignore=shutil.ignore_patterns("checkpoints", "*.html", "*.md", "*.png"))
    entry = json.loads(CHEAP_ENTRY.read_text())
    ck = entry["checkpoint"]["path"]
    shutil.copytree(ROOT / ck, tmp_path / ck)
    return dest


def read(p):
    return json.loads(Path(p).read_text())


def write(p, data):
    Path(p).write_text(json.dumps(data, indent=1))
