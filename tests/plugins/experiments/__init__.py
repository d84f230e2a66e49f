"""Reproduction smoke tests; a package so their basenames may repeat those in tests/plugins/models and tests/plugins/metrics."""
