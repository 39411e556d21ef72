"""The package's dependency split: the ops import and run without the trainer's extra, and the
trainer names the extra to install when a package of it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wgan_kernels.train.extras import TRAIN_EXTRA, MissingExtra, require_train_extra

BLOCK_TRAIN_EXTRA = f"""
import sys
for name in {sorted(TRAIN_EXTRA) + ["tensorboard"]!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
"""


def test_ops_and_trainer_import_without_the_train_extra():
    code = BLOCK_TRAIN_EXTRA + """
import torch
import wgan_kernels as wk
import wgan_kernels.penalties
import wgan_kernels.train  # importing the trainer needs no extra; running it does
critic = torch.nn.Linear(3, 1)
real, fake = torch.randn(4, 3), torch.randn(4, 3)
penalty = wk.gradient_penalty(critic, real, fake, method="gp", seed=1)
penalty.backward()
assert penalty.isfinite() and critic.weight.grad is not None
from wgan_kernels.train.__main__ import main
try:
    main(["--iterations", "1", "--out", "/nonexistent/never-written"])
except SystemExit as error:
    sys.exit(error.code)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "wgan_kernels[train]" in result.stderr and "scikit-learn" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", sorted(TRAIN_EXTRA))
def test_missing_package_names_the_extra(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtra, match=r"needs " + TRAIN_EXTRA[name] + r", which the 'train' extra installs"):
        require_train_extra()


def test_trainer_run_checks_the_extra_first(monkeypatch, tmp_path):
    from wgan_kernels.train import run

    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(MissingExtra, match="tqdm"):
        run({"iterations": 1, "out": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()  # nothing started


def test_setup_reads_the_same_list():
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "setup.py")) as handle:
        setup = handle.read()
    assert re.search(r'"train": TRAIN_REQUIRES', setup) and "extras.py" in setup
