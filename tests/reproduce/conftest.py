import pytest
import torch

from harness.reproduce import run_experiment


@pytest.fixture(scope="module")
def run_smoke(tmp_path_factory):
    """Run experiments at smoke size once per module, on one torch thread (tiny models gain nothing
    from a second thread, and on a shared 2-core machine it thrashes). Returns (out_dir, {name: result})."""

    def run(*names):
        out = tmp_path_factory.mktemp("repro")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return out, {n: run_experiment(n, "smoke", out) for n in names}
        finally:
            torch.set_num_threads(threads)

    return run
