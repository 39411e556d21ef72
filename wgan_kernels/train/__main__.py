"""`python -m wgan_kernels.train` (the `wgan-train` command is scripts/wgan-train, which also sets
GOMP_SPINCOUNT=3000 before torch loads; set it, or OMP_WAIT_POLICY=PASSIVE on a CPU shared with
other jobs, yourself here: docs/TRAINING.md)."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    """Exit status: 0 finished, 1 diverged, 2 bad arguments, data or checkpoint, 128 + signal
    number when SIGINT / SIGTERM stopped the run (after checkpointing the iteration in progress)."""
    from .config import build_parser, parse_given
    from .extras import MissingExtra
    from .trainer import run

    given = parse_given(argv)
    try:
        summary = run(given)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, MissingExtra) as error:
        # configuration, data, checkpoint and installation problems: one clear line, no traceback
        build_parser().exit(2, f"wgan-train: error: {error}\n")
    except KeyboardInterrupt:
        print("\ninterrupted; the last checkpoint is kept: continue with --out DIR --resume", file=sys.stderr)
        return 130
    if summary.get("status") == "interrupted":
        return 128 + summary["signal"]
    return 0 if summary.get("status") in ("finished", "killed") else 1


if __name__ == "__main__":
    sys.exit(main())
