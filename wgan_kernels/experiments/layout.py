"""What the study's sweep and its reports share: the grid's names and a results folder's layout.

    ROOT/runs/{data}/{method}/lam{lambda}_seed{seed}/   one trainer run dir (metrics.csv, summary.json, plots/)
    ROOT/sweep.json                                     configuration, commands, machine, timings
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..functional import METHODS as PENALTY_METHODS, PAIR_KINDS
from ..train.data import TOY_SETS

DATASETS = TOY_SETS
# the study compares the two interpolate penalties with the pair penalties
METHODS = tuple(m for m in PENALTY_METHODS if PENALTY_METHODS[m].sampling == "interpolate") + PAIR_KINDS
LAMBDAS = (0.1, 1.0, 5.0, 10.0, 100.0)
LEVEL_ITERATIONS = (10, 50, 100, 500, 1000)  # WGAN-LP figure 3
TERMINAL_STATUSES = ("finished", "diverged")
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the sweep."""

    data: str
    method: str
    lam: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.data}/{self.method}/lam{format_lambda(self.lam)}_seed{self.seed}"


def format_lambda(lam: float) -> str:
    """0.1 -> '0.1', 10.0 -> '10' (used in run-dir names and tables)."""
    return f"{lam:g}"


def run_dir(root: Path, cell: Cell) -> Path:
    return Path(root) / "runs" / cell.name


def read_summary(path: Path) -> dict | None:
    """summary.json of a run dir, or None when absent or unreadable (a run killed mid-write)."""
    try:
        with open(Path(path) / "summary.json") as fh:
            summary = json.load(fh)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def is_done(path: Path) -> bool:
    """A run is done (and skipped on rerun) when its summary.json has a final status."""
    summary = read_summary(path)
    return summary is not None and summary.get("status") in TERMINAL_STATUSES
