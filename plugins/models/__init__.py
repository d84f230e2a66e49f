"""Built-in models."""

from harness import hookimpl


@hookimpl
def latentbench_models():
    return []
