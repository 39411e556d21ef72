"""Every test starts from its own fixed random state, so a failure can be reproduced alone.

The seed is a function of a base (WGAN_KERNELS_TEST_SEED, default below) and the test's id; a
failing test's report prints it. Rerun with another base to shake out seed-dependent tests.
"""

from __future__ import annotations

import os
import random
import zlib

import numpy as np
import pytest
import torch

BASE_SEED = int(os.environ.get("WGAN_KERNELS_TEST_SEED", "20261202"))


def seed_of(nodeid: str) -> int:
    return (BASE_SEED + zlib.crc32(nodeid.encode())) % 2**32


@pytest.fixture(autouse=True)
def seeded(request):
    """Seeds torch (all devices), numpy and random for the test; yields the seed."""
    seed = seed_of(request.node.nodeid)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return seed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.failed:
        report.sections.append((
            "random seed",
            f"torch, numpy and random were seeded with {seed_of(item.nodeid)} "
            f"(WGAN_KERNELS_TEST_SEED={BASE_SEED}, test id {item.nodeid})",
        ))
