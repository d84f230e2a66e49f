"""Reproduction smoke tests; a package so their basenames may repeat those in tests/models and tests/metrics."""
