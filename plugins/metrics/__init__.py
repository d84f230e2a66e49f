"""Built-in metrics (SPEC §3)."""

from harness import hookimpl
from plugins.metrics.attack_loss import AttackLoss
from plugins.metrics.class_radius import ClassRadius
from plugins.metrics.downstream import DownstreamAdvAccuracy
from plugins.metrics.fid import FID
from plugins.metrics.pair_metrics import L2Distance, MSSSIM
from plugins.metrics.spectral_scores import SpectralRadius, VNEntropy

BUILTIN_METRICS = [SpectralRadius, VNEntropy, ClassRadius, MSSSIM, L2Distance, FID, DownstreamAdvAccuracy, AttackLoss]


@hookimpl
def latentbench_metrics():
    return list(BUILTIN_METRICS)
