"""pytest-benchmark setup: `pytest benchmarks --benchmark-only`. Not collected by `pytest tests`
(pyproject's testpaths is tests)."""

import pytest

pytest.importorskip("pytest_benchmark")
