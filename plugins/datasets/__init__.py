"""Built-in datasets: digits (embedded default), fashion-mnist, mnist, grid2d, colour-fashion-mnist; users' own
images (image_folder) and torchvision's CIFAR-10, SVHN and CelebA from local files (docs/datasets.md)."""

from latentbench import hookimpl
from latentbench.plugins.datasets.colour import ColourFashionMNIST
from latentbench.plugins.datasets.digits import Digits
from latentbench.plugins.datasets.grid2d import Grid2D
from latentbench.plugins.datasets.image_folder import ImageFolder
from latentbench.plugins.datasets.mnist import MNIST, FashionMNIST
from latentbench.plugins.datasets.torchvision_local import SVHN, CelebA, CIFAR10

DATASETS = [Digits, FashionMNIST, MNIST, Grid2D, ColourFashionMNIST, ImageFolder, CIFAR10, SVHN, CelebA]


@hookimpl
def latentbench_datasets():
    return list(DATASETS)
