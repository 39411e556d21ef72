"""`wgan-train` / `python -m wgan_kernels.train`."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
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
