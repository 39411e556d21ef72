"""The WGAN-LP toy study with the paper's own protocol (section 6, appendix D), in stages.

Each stage is one lambda_sweep (512-wide LeakyReLU MLPs, RMSprop 5e-5, batch 256, 100 critic
steps for the first 25 generator iterations and then 10, W1 on 500 vs 500 samples every 10
iterations) into its own folder under results/protocol/. Stages run in order; like the sweep,
a rerun skips finished runs and resumes unfinished ones, so the whole study can be stopped and
restarted at any time:

    python -m wgan_kernels.experiments.protocol_study                 # every stage
    python -m wgan_kernels.experiments.protocol_study --stage fig45   # one stage
"""

from __future__ import annotations

import argparse
import sys

from . import lambda_sweep
from .layout import DEFAULT_RESULTS

PROTOCOL_RESULTS = DEFAULT_RESULTS / "protocol"
ALL_DATA = "swissroll,8gaussians,25gaussians"

# stage -> lambda_sweep arguments (cells run seed-major, so a partial stage holds whole seeds)
STAGES = {
    # figures 4 and 5: GP vs LP at lambda 5, W1 and critic loss over 500 iterations
    "fig45": ["--datasets", ALL_DATA, "--methods", "gp,lp", "--lambdas", "5", "--seeds", "0,1,2,3,4",
              "--iterations", "500"],
    # figures 3, 8 and 9: level sets on swissroll after 10, 50, 100, 500 and 1000 iterations
    "levels": ["--datasets", "swissroll", "--methods", "gp,lp", "--lambdas", "1,10,100", "--seeds", "0",
               "--iterations", "1000"],
    # appendix D.7: the pair penalties of eq. (7) and eq. (9) at lambda 10
    "pairs": ["--datasets", ALL_DATA, "--methods", "quotient,transport", "--lambdas", "10",
              "--seeds", "0,1,2", "--iterations", "500"],
    # is GP's failure on swissroll at lambda 10 an artefact of PyTorch's initialisation? the same runs
    # with the Glorot-uniform weights and zero biases of the authors' TensorFlow code
    "init_torch": ["--datasets", "swissroll", "--methods", "gp,lp", "--lambdas", "10", "--seeds", "0,1,2",
                   "--iterations", "200", "--init", "torch"],
    "init_glorot": ["--datasets", "swissroll", "--methods", "gp,lp", "--lambdas", "10", "--seeds", "0,1,2",
                    "--iterations", "200", "--init", "glorot"],
    # appendix D.5: the Wasserstein-2 variant, d = ||x - y||^2 in the quotient penalty
    "w2": ["--datasets", ALL_DATA, "--methods", "quotient", "--lambdas", "10", "--seeds", "0,1,2",
           "--iterations", "500", "--pair-p", "2"],
    # two more seeds for the central contrast of figure 3 (GP fails at lambda 10, LP does not)
    "levels_more": ["--datasets", "swissroll", "--methods", "gp,lp", "--lambdas", "10", "--seeds", "1,2",
                    "--iterations", "1000", "--out-name", "levels"],
    # more seeds for figures 4 and 5 (10, as the paper), when there is time
    "fig45_more": ["--datasets", ALL_DATA, "--methods", "gp,lp", "--lambdas", "5", "--seeds", "5,6,7,8,9",
                   "--iterations", "500", "--out-name", "fig45"],
}


def stage_folder(stage: str) -> str:
    """The results folder a stage writes to: its own, or an earlier stage's that it adds seeds to."""
    args = STAGES[stage]
    return args[args.index("--out-name") + 1] if "--out-name" in args else stage


# the results folders, in stage order (a stage adding seeds to another's folder has none of its own)
FOLDERS = tuple(dict.fromkeys(stage_folder(s) for s in STAGES))


def stage_args(stage: str, jobs: int) -> list[str]:
    args = list(STAGES[stage])
    if "--out-name" in args:
        i = args.index("--out-name")
        del args[i : i + 2]
    return [*args, "--jobs", str(jobs), "--out", str(PROTOCOL_RESULTS / stage_folder(stage)), "--no-report"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wgan_kernels.experiments.protocol_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=tuple(STAGES), action="append",
                        help="run only this stage (repeatable); default: all, in order")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each)")
    args = parser.parse_args(argv)
    failed = 0
    for stage in args.stage or STAGES:
        print(f"== stage {stage}", flush=True)
        failed |= lambda_sweep.main(stage_args(stage, args.jobs))
    return failed


if __name__ == "__main__":
    sys.exit(main())
