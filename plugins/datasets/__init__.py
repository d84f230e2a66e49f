"""Built-in datasets: digits (embedded default), fashion-mnist, mnist, grid2d."""

from latentbench import hookimpl
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.datasets.grid2d import Grid2D
from latentbench.plugins.datasets.mnist import MNIST, FashionMNIST

DATASETS = [Digits, FashionMNIST, MNIST, Grid2D]


@hookimpl
def latentbench_datasets():
    return list(DATASETS)
