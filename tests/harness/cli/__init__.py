"""Tests of ``latentbench.cli``: the commands (test_commands.py) and the options they share (test_options.py)."""
