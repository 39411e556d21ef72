"""Reproduction studies built on the trainer (``python -m wgan_kernels.train``).

* :mod:`wgan_kernels.experiments.lambda_sweep` runs the WGAN-LP toy study (GP, LP, quotient and
  transport penalties across penalty weights, data sets and seeds), one trainer process per run.
* :mod:`wgan_kernels.experiments.report` turns a results directory into a markdown report with
  tables, critic level-set grids and W1 curves.

How to run and what was found: docs/STUDY.md.
"""
