"""downstream_adv_accuracy with the registered downstream_pgd attack on data a probe separates perfectly."""

import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.metric import MetricContext
from latentbench.model import Autoencoder, LatentGaussian, ModelConfig
from latentbench.plugins.metrics.downstream import DownstreamAdvAccuracy


class MeanPixelEncoder(Autoencoder):
    """mu(x) = 4 * mean pixel - 2: images of mean 0.1 vs 0.9 map to -1.6 vs +1.6."""

    name = "test_mean_pixel"

    def __init__(self):
        super().__init__(ModelConfig(input_shape=(1, 4, 4), latent_dim=1))

    def encode(self, x):
        return LatentGaussian(4 * x.reshape(x.shape[0], -1).mean(1, keepdim=True) - 2, None)


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (0.1 + 0.8 * y.float())[:, None, None, None] + 0.05 * (torch.rand(n, 1, 4, 4, generator=g) - 0.5)
    return x.clamp(0, 1), y


def ctx(train, test):
    return MetricContext(model=MeanPixelEncoder(), x=test[0], y=test[1], dataset="toy", device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0), seed=0, train_x=train[0], train_y=train[1],
                         num_classes=2)


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_zero_budget_equals_nominal_and_budgets_lower_accuracy(probe):
    res = DownstreamAdvAccuracy(probe=probe, budgets=[0.0, 0.05, 0.6], steps=10, restarts=2, probe_epochs=40)(
        ctx(data(64, 0), data(32, 1)))
    v = res.values
    assert v["nominal_accuracy"] == 1.0  # perfectly separable codes
    # no budget, no change: every image stays correct (known from the data, not from nominal_accuracy)
    assert v["adv_accuracy@0"] == 1.0 and res.per_sample["adv_correct@0"].shape == (32,)
    assert bool((res.per_sample["adv_correct@0"] == 1).all())
    # an L-inf shift of 0.05 moves the mean pixel by <= 0.05: codes cannot cross the midpoint
    assert v["adv_accuracy@0.05"] == 1.0
    # a shift of 0.6 takes every mean pixel across 0.5: the attack fools the probe everywhere
    assert v["adv_accuracy@0.6"] == 0.0
    assert bool((res.per_sample["adv_correct@0.6"] == 0).all()) and bool((res.per_sample["adv_correct@0.05"] == 1).all())
    assert res.info["probe"] == probe and res.info["attack"] == "downstream_pgd"


def test_missing_labels_and_unknown_attack():
    c = ctx(data(8, 0), data(8, 1))
    c.train_y = None
    with pytest.raises(LatentBenchError, match="labelled"):
        DownstreamAdvAccuracy(budgets=[0.0])(c)
    c = ctx(data(8, 0), data(8, 1))
    with pytest.raises(LatentBenchError, match="no_such_attack"):
        DownstreamAdvAccuracy(budgets=[0.0], attack="no_such_attack", probe_epochs=1)(c)
    with pytest.raises(ValueError, match="probe"):
        DownstreamAdvAccuracy(probe="svm")
