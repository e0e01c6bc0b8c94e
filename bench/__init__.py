"""Benchmarks: the shop against the textbook designs, in one harness (``python -m bench``)."""
