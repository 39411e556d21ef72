"""A thin WGAN trainer on top of wgan_kernels: toy 2-D sets with the WGAN-LP MLPs, images with
the WGAN-GP ResNet. CLI: `wgan-train` / `python -m wgan_kernels.train` (docs/TRAINING.md).
Needs the `train` extra (pip install 'wgan_kernels[train]'); importing this package does not."""

from .config import TrainConfig, build_parser, parse_args, resolve
from .trainer import METRIC_COLUMNS, run, run_from_args

__all__ = ["METRIC_COLUMNS", "TrainConfig", "build_parser", "parse_args", "resolve", "run", "run_from_args"]
