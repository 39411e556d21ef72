"""Benchmarks of wgan_kernels: op level, step level, memory and bandwidth.

Run `python -m benchmarks.report --quick` (see docs/BENCHMARKS.md). The baselines every
benchmark compares against live once, in benchmarks/baselines.py.
"""
