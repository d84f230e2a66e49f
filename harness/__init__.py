"""LatentBench core: plugin system, interfaces, data, training, runner and results store."""

import pluggy

__version__ = "0.1.0"

PROJECT = "latentbench"

#: Marker for hook implementations in built-in and third-party plugins.
hookimpl = pluggy.HookimplMarker(PROJECT)

from latentbench.model import Autoencoder, LatentGaussian, ModelConfig  # noqa: E402
from latentbench.attack import Attack, AttackConfig, AttackResult, SolverAttackConfig  # noqa: E402
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult  # noqa: E402
from latentbench.data import DatasetPlugin  # noqa: E402
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
    "DatasetPlugin",
    "LatentBenchError",
]
