"""The `train` extra: what the trainer, the experiments and their plots import beyond torch and
numpy. setup.py reads TRAIN_EXTRA from this file (so keep it free of imports beyond the standard
library), which makes this the one list of them."""

from __future__ import annotations

import importlib.util

# import name -> distribution name
TRAIN_EXTRA = {"scipy": "scipy", "matplotlib": "matplotlib", "sklearn": "scikit-learn", "tqdm": "tqdm"}


class MissingExtra(ImportError):
    """A package of an optional extra is not installed; the message says how to install it."""


def require_train_extra(what: str = "wgan-train") -> None:
    """Raises MissingExtra naming the missing packages and the extra that installs them."""
    missing = [dist for name, dist in TRAIN_EXTRA.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(
            f"{what} needs {', '.join(missing)}, which the 'train' extra installs: "
            f"pip install 'wgan_kernels[train]' (from a checkout: pip install --no-build-isolation -e '.[train]')"
        )
