"""LatentBench: the contract (hook specs, component interfaces) and the engine (registry, runner,
results store, leaderboard). Everything a plugin author needs is importable from here; the built-in
plugins live in :mod:`latentbench.plugins` and are registered exactly like a third party's."""

import pluggy

#: the one place the version is written (pyproject.toml reads it)
__version__ = "0.1.0"

PROJECT = "latentbench"

#: Marker for hook implementations in built-in and third-party plugins.
hookimpl = pluggy.HookimplMarker(PROJECT)

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig  # noqa: E402
from latentbench.attack import Attack, AttackConfig, AttackResult, SolverAttackConfig  # noqa: E402
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult  # noqa: E402
from latentbench.data import Dataset, DatasetConfig, Split  # noqa: E402
from latentbench.protocol import Protocol  # noqa: E402
from latentbench.experiment import Experiment, Finding, ReproContext, ReproResult, experiment  # noqa: E402
from latentbench.errors import LatentBenchError  # noqa: E402

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
]
