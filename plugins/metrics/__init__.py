"""Built-in metrics (docs/methods.md §3)."""

from latentbench import hookimpl
from latentbench.plugins.metrics.attack_loss import AttackLoss
from latentbench.plugins.metrics.class_radius import ClassRadius
from latentbench.plugins.metrics.downstream import DownstreamAdvAccuracy
from latentbench.plugins.metrics.fid import FID
from latentbench.plugins.metrics.pair_metrics import L2Distance, MSSSIM
from latentbench.plugins.metrics.robust_accuracy import RobustAccuracy
from latentbench.plugins.metrics.spectral_scores import SpectralRadius, VNEntropy

METRICS = [SpectralRadius, VNEntropy, ClassRadius, MSSSIM, L2Distance, FID, DownstreamAdvAccuracy, AttackLoss,
           RobustAccuracy]


@hookimpl
def latentbench_metrics():
    return list(METRICS)
