"""``python -m latentbench``: the command line."""

import sys

from latentbench.cli import main

sys.exit(main())
