"""Benchmarks: scripts and modules that measure phn (``python -m benchmarks.speed``); not part of the library."""
