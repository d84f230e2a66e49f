import os

import pytest
import torch

# Tests run on the CPU with a fixed thread count so timings and numbers are repeatable: at most 2,
# or OMP_NUM_THREADS when it is set (scripts/bench.sh sets 1: benchmark ratios are one-thread ratios,
# and two threads per process spin-wait whenever the machine is shared)
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 0) or min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def registry():
    """The installed registry: built-in plugins plus whatever the environment has installed."""
    from latentbench.registry import get_registry

    return get_registry()


@pytest.fixture
def toy_registry():
    """The registry with the toy model, attack and metric of ``tests/harness/toy_plugin.py``."""
    from latentbench.registry import load_registry
    from tests.harness import toy_plugin

    return load_registry(extra_plugins=[toy_plugin])
