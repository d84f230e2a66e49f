"""Built-in protocols."""

from harness import hookimpl


@hookimpl
def latentbench_protocols():
    return []
