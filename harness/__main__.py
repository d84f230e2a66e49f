"""``python -m latentbench``: the command line."""

import sys

from latentbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
