"""Built-in evaluation protocols (docs/methods.md §4). Results of different protocols are never ranked together."""

from latentbench import hookimpl
from latentbench.plugins.protocols.colour_fashion import COLOUR_FASHION_64_V1
from latentbench.plugins.protocols.digits import DIGITS_V1, DIGITS_V2
from latentbench.plugins.protocols.fashion_mnist import FASHION_MNIST_32_V1, FASHION_MNIST_32_V2

PROTOCOLS = [DIGITS_V1, FASHION_MNIST_32_V1, DIGITS_V2, FASHION_MNIST_32_V2, COLOUR_FASHION_64_V1]


@hookimpl
def latentbench_protocols():
    return list(PROTOCOLS)
