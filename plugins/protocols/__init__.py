"""Built-in evaluation protocols (SPEC §4). Results of different protocols are never ranked together."""

from harness import hookimpl
from plugins.protocols.digits import DIGITS_V1
from plugins.protocols.fashion_mnist import FASHION_MNIST_32_V1

BUILTIN_PROTOCOLS = [DIGITS_V1, FASHION_MNIST_32_V1]


@hookimpl
def latentbench_protocols():
    return list(BUILTIN_PROTOCOLS)
