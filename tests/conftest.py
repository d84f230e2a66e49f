import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))
# Tests run on the CPU with a fixed thread count so timings and numbers are repeatable.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def toy_registry():
    import toy

    from harness.plugins import load_registry

    return load_registry(extra_plugins=[toy])
