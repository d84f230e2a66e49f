"""Built-in metrics."""

from harness import hookimpl


@hookimpl
def latentbench_metrics():
    return []
