"""`wgan-train` / `python -m wgan_kernels.train`."""

from __future__ import annotations

import os
import sys


def _reexec_with_passive_openmp() -> None:
    """OpenMP worker threads spin while waiting by default; on a CPU shared with other jobs that
    makes every parallel op wait for descheduled spinners (measured: 10x slower training steps
    on 2 busy cores). libgomp reads OMP_WAIT_POLICY only when torch loads, which has already
    happened here, so start the interpreter again with it set. Set OMP_WAIT_POLICY yourself
    (any value) to skip this."""
    if "OMP_WAIT_POLICY" in os.environ or not sys.argv or not sys.executable:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        os.execv(sys.executable, [sys.executable, "-m", "wgan_kernels.train", *sys.argv[1:]])
    except OSError:
        pass  # cannot re-exec: train with the default policy


def main(argv=None) -> int:
    if argv is None:
        _reexec_with_passive_openmp()
    from .config import build_parser, parse_args
    from .trainer import run

    config = parse_args(argv)
    try:
        summary = run(config)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        # configuration, data and checkpoint problems: one clear line, no traceback
        build_parser().exit(2, f"wgan-train: error: {error}\n")
    except KeyboardInterrupt:
        print("\ninterrupted; continue with --resume and the same --out", file=sys.stderr)
        return 130
    return 0 if summary.get("status") in ("finished", "killed") else 1


if __name__ == "__main__":
    sys.exit(main())
