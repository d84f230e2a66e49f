"""LatentBench: the contract (hook specs, component interfaces) and the engine (registry, runner,
results store, leaderboard). Everything a plugin author needs is importable from here; the built-in
plugins live in :mod:`latentbench.plugins` and are registered exactly like a third party's."""

import pluggy

#: the one place the version is written (pyproject.toml reads it)
__version__ = "0.1.0"

PROJECT = "latentbench"

#: Marker for hook implementations in built-in and third-party plugins.
hookimpl = pluggy.HookimplMarker(PROJECT)

# The public names are imported on first use (PEP 562): `latentbench --help` and `--version` need none
# of them and so start without importing torch.
_EXPORTS = {
    "latentbench.model": ("Autoencoder", "LatentGaussian", "ModelConfig"),
    "latentbench.attack": ("Attack", "AttackConfig", "AttackResult", "SolverAttackConfig"),
    "latentbench.metric": ("LeaderboardValue", "Metric", "MetricConfig", "MetricContext", "MetricResult"),
    "latentbench.data": ("Dataset", "DatasetConfig", "Split"),
    "latentbench.protocol": ("Protocol",),
    "latentbench.experiment": ("Experiment", "Finding", "ReproContext", "ReproResult", "experiment"),
    "latentbench.errors": ("LatentBenchError",),
    # one call for any autoencoder (docs/api.md)
    "latentbench.api": ("evaluate", "wrap", "EvaluationResult"),
    "latentbench.zoo": ("load_model",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'latentbench' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "__version__",
    "hookimpl",
    "Autoencoder",
    "LatentGaussian",
    "ModelConfig",
    "Attack",
    "AttackConfig",
    "AttackResult",
    "SolverAttackConfig",
    "LeaderboardValue",
    "Metric",
    "MetricConfig",
    "MetricContext",
    "MetricResult",
    "Dataset",
    "DatasetConfig",
    "Split",
    "Protocol",
    "Experiment",
    "experiment",
    "ReproContext",
    "ReproResult",
    "Finding",
    "LatentBenchError",
    "evaluate",
    "wrap",
    "EvaluationResult",
    "load_model",
]
