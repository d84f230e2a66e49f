"""LatentBench's tests: ``tests/harness`` mirrors ``harness/`` (the ``latentbench`` package),
``tests/plugins/<family>`` mirrors ``plugins/<family>``; ``tests/benchmarks`` holds the
pytest-benchmark suite (skipped by the default test command)."""

from pathlib import Path

#: the repository root (the folder holding harness/, plugins/, leaderboard/)
REPO_ROOT = Path(__file__).resolve().parents[1]
