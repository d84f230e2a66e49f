"""Built-in datasets: digits (embedded default), fashion-mnist, mnist, grid2d."""

from harness import hookimpl
from plugins.datasets.digits import Digits
from plugins.datasets.grid2d import Grid2D
from plugins.datasets.idx import MNIST, FashionMNIST


@hookimpl
def latentbench_datasets():
    return [Digits, FashionMNIST, MNIST, Grid2D]
