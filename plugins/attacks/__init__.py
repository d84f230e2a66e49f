"""Built-in attacks."""

from harness import hookimpl


@hookimpl
def latentbench_attacks():
    return []
