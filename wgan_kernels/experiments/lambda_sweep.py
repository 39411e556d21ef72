"""The WGAN-LP toy study (issue 6): GP vs LP (and the double-backward-free quotient, eq. 7, and
transport, eq. 9, penalties) across penalty weights, on 8gaussians, 25gaussians and swissroll.

Every run (data set x method x lambda x seed) is an independent trainer process
(``python -m wgan_kernels.train ...``) writing its own run directory, so runs can go in parallel
(``--jobs``) and a sweep can be interrupted and restarted: a run whose summary.json has a final
status (``finished`` or ``diverged``) is skipped; an unfinished one is restarted with ``--resume``.
When all runs are done the report (``wgan_kernels.experiments.report``) is written.

    python -m wgan_kernels.experiments.lambda_sweep --quick --jobs 2     # < 10 min on 2 cores
    python -m wgan_kernels.experiments.lambda_sweep --jobs 2             # the full protocol

Layout of the output directory (default wgan_kernels/experiments/results/{quick,full}):
    runs/{data}/{method}/lam{lambda}_seed{seed}/   one trainer run dir each (not committed)
    sweep.json                                     configuration, command, machine, timings
    report.md, *.png, runs.csv                     the report (report.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .layout import (
    DATASETS, DEFAULT_RESULTS, LAMBDAS, LEVEL_ITERATIONS, METHODS, TERMINAL_STATUSES, Cell, format_lambda,
    is_done, read_summary, run_dir,
)

TRAINER = (sys.executable, "-m", "wgan_kernels.train")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings shared by all runs of a sweep (the WGAN-LP toy protocol by default)."""

    iterations: int = 1000  # generator iterations (figure 3 goes to 1000, figure 5 to 500)
    seeds: tuple[int, ...] = (0, 1, 2)  # the paper uses 10
    n_critic: int = 10
    lp_schedule: bool = True  # 100 critic steps for the first 25 generator iterations
    batch_size: int = 256
    optimizer: str = "rmsprop"
    lr: float = 5e-5
    hidden: int = 512
    pair_p: float = 1.0  # exponent of d = ||x - y||^p in the pair penalties (2: WGAN-LP appendix D.5)
    init: str = "torch"  # MLP initialisation (the trainer's --init)
    eval_every: int = 10
    eval_samples: int = 500
    checkpoint_every: int = 100
    plot_all: bool = True  # level sets at plot_at for every run, or only for the figure's runs
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    lambdas: tuple[float, ...] = LAMBDAS

    @property
    def plot_at(self) -> tuple[int, ...]:
        return tuple(i for i in LEVEL_ITERATIONS if i <= self.iterations)


FULL = Config()
# Quick mode: all 4 methods, 3 data sets and 5 lambdas, one seed, cut down to fit the 60 runs in
# under ten minutes on two cores (calibration in docs/STUDY.md): each trainer process costs about
# 9 CPU-seconds before it trains (imports, evaluation, plots), so the training itself gets ~7:
# networks 128 wide, 50 generator iterations, and no 100-critic-step warm-up (which alone costs
# 2500 critic steps, about a minute per run here).
QUICK = dataclasses.replace(
    FULL, iterations=50, seeds=(0,), hidden=128, lp_schedule=False, checkpoint_every=50, plot_all=False
)
# the runs whose level sets make the figure (WGAN-LP figure 3)
FIGURE_DATA, FIGURE_LAMBDA = "swissroll", 10.0
MODES = {"full": FULL, "quick": QUICK}
# what makes a run follow the paper's protocol (the grid, iterations and seeds may differ)
PROTOCOL_FIELDS = ("n_critic", "lp_schedule", "batch_size", "optimizer", "lr", "hidden", "eval_every",
                   "eval_samples")


def mode_label(config: Config) -> str:
    """What a results folder really holds, e.g. 'quick, 50 iterations, 1 seed' or 'protocol, 100
    iterations, 1 seed' (the settings of quick mode or of the paper's protocol, whatever the grid,
    iterations and seeds; 'custom' for any other settings)."""
    kind = "custom"
    for name, preset in (("quick", QUICK), ("protocol", FULL)):
        if all(getattr(config, f) == getattr(preset, f) for f in PROTOCOL_FIELDS):
            kind = name
    seeds = len(config.seeds)
    return f"{kind}, {config.iterations} iterations, {seeds} seed{'s' if seeds != 1 else ''}"


def cells(config: Config) -> list[Cell]:
    """Seed-major, methods innermost: a partial sweep has whole seeds, and the methods compared
    run side by side in time, so neither gets a busier machine than the other."""
    return [
        Cell(d, m, float(lam), s)
        for s in config.seeds
        for d in config.datasets
        for lam in config.lambdas
        for m in config.methods
    ]


def trainer_args(
    cell: Cell, config: Config, out: Path, resume: bool = False, threads: int | None = None,
    supported: frozenset[str] | None = None,
) -> list[str]:
    """The trainer's CLI arguments for one run. `supported` is the set of flags the trainer's
    --help lists: the optional extras (--no-tensorboard, --threads) are passed only when it has
    them (None: pass none of them)."""
    args = [
        "--data", cell.data,
        "--model", "mlp",
        "--penalty", cell.method,
        "--lambda", repr(cell.lam),
        "--iterations", str(config.iterations),
        "--n-critic", str(config.n_critic),
        "--lp-schedule" if config.lp_schedule else "--no-lp-schedule",
        "--batch-size", str(config.batch_size),
        "--optimizer", config.optimizer,
        "--lr", repr(config.lr),
        "--hidden", str(config.hidden),
        "--pair-p", repr(config.pair_p),
        "--init", config.init,
        "--seed", str(cell.seed),
        "--out", str(out),
        "--eval-every", str(config.eval_every),
        "--eval-samples", str(config.eval_samples),
        "--checkpoint-every", str(config.checkpoint_every),
        "--no-progress",
    ]
    figure = cell.data == FIGURE_DATA and cell.lam == FIGURE_LAMBDA
    plot_at = config.plot_at if (config.plot_all or figure) else ()
    args += ["--plot-at", ",".join(str(i) for i in plot_at)]  # the last iteration is always plotted
    supported = supported or frozenset()
    if "--no-tensorboard" in supported:
        args.append("--no-tensorboard")
    if threads is not None and "--threads" in supported:
        args += ["--threads", str(threads)]
    if resume:
        args.append("--resume")
    return args


def trainer_flags(trainer=TRAINER) -> frozenset[str]:
    """The long flags the trainer's --help lists (empty when --help fails)."""
    try:
        proc = subprocess.run([*trainer, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", proc.stdout))


@dataclasses.dataclass
class Outcome:
    cell: Cell
    status: str  # finished | diverged | skipped | failed
    seconds: float
    returncode: int | None = None


def run_cell(
    cell: Cell, config: Config, root: Path, trainer=TRAINER, threads: int = 1, timeout: float | None = None,
    supported: frozenset[str] | None = None,
) -> Outcome:
    """Runs one cell in a subprocess (skipping it when already done); never raises for a failed
    run: the failure is returned (and the trainer's output is kept in the run dir's train.log)."""
    out = run_dir(root, cell)
    if is_done(out):
        return Outcome(cell, "skipped", 0.0)
    resume = out.exists() and any(out.iterdir())
    out.mkdir(parents=True, exist_ok=True)
    cmd = [*trainer, *trainer_args(cell, config, out, resume=resume, threads=threads, supported=supported)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # runs share the cores: spinning OpenMP threads slow the others
    start = time.perf_counter()
    with open(out / "train.log", "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            log.write(f"\n[lambda_sweep] killed after {timeout} s\n")
            rc = None
    seconds = time.perf_counter() - start
    summary = read_summary(out)
    if summary is not None and summary.get("status") in TERMINAL_STATUSES:
        return Outcome(cell, summary["status"], seconds, rc)
    return Outcome(cell, "failed", seconds, rc)


def run_sweep(
    config: Config,
    root: Path,
    jobs: int = 1,
    trainer=TRAINER,
    timeout: float | None = None,
    log=print,
) -> list[Outcome]:
    """Runs every cell of the sweep not yet done, `jobs` at a time. Returns one Outcome per cell."""
    todo = cells(config)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    outcomes: list[Outcome] = []
    supported = trainer_flags(trainer) if not all(is_done(run_dir(root, c)) for c in todo) else frozenset()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_cell, c, config, root, trainer, threads, timeout, supported) for c in todo]
        for i, fut in enumerate(as_completed(futures), 1):
            res = fut.result()
            outcomes.append(res)
            rc = "" if res.returncode in (0, None) else f" (exit code {res.returncode})"
            log(f"[{i}/{len(todo)}] {res.cell.name}: {res.status}{rc} {res.seconds:.1f} s")
    order = {c: i for i, c in enumerate(todo)}
    return sorted(outcomes, key=lambda o: order[o.cell])


def machine_info() -> dict:
    """What the report states about where it ran."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:  # without importing torch (seconds on a busy machine)
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # pragma: no cover
        torch_version = "unknown"
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": load,  # 1, 5, 15 min: other work on the machine slows the sweep down
        "torch": torch_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wgan_kernels.experiments.lambda_sweep",
        description="WGAN-LP toy study: GP / LP / quotient / transport penalties across lambdas.",
    )
    p.add_argument("--quick", action="store_true", help="the quick configuration (< 10 min on 2 cores)")
    p.add_argument("--out", type=Path, default=None, help="results dir (default results/{quick,full})")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each)")
    p.add_argument("--datasets", type=_names, default=None, help="comma-separated subset")
    p.add_argument("--methods", type=_names, default=None, help="comma-separated subset")
    p.add_argument("--lambdas", type=_floats, default=None, help="comma-separated subset")
    p.add_argument("--seeds", type=_ints, default=None, help="comma-separated seeds")
    p.add_argument("--iterations", type=int, default=None, help="generator iterations per run")
    p.add_argument("--hidden", type=int, default=None, help="MLP width")
    p.add_argument("--pair-p", type=float, default=None, help="exponent p of d = ||x - y||^p (quotient, transport)")
    p.add_argument("--init", choices=("torch", "glorot"), default=None, help="MLP initialisation (trainer's --init)")
    p.add_argument("--n-critic", type=int, default=None)
    p.add_argument("--lp-schedule", action=argparse.BooleanOptionalAction, default=None,
                   help="100 critic steps for the first 25 generator iterations")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--eval-samples", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--timeout", type=float, default=None, help="seconds per run before it is killed")
    p.add_argument("--no-report", action="store_true", help="only run, do not write the report")
    p.add_argument("--trainer", default=None, help=argparse.SUPPRESS)  # tests: a stand-in trainer
    return p


def config_from_args(args) -> Config:
    config = QUICK if args.quick else FULL
    overrides = {
        "datasets": args.datasets, "methods": args.methods, "lambdas": args.lambdas,
        "seeds": args.seeds, "iterations": args.iterations, "hidden": args.hidden, "pair_p": args.pair_p, "init": args.init,
        "n_critic": args.n_critic, "lp_schedule": args.lp_schedule, "eval_every": args.eval_every,
        "eval_samples": args.eval_samples, "checkpoint_every": args.checkpoint_every,
    }
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    mode = mode_label(config)
    root = args.out if args.out is not None else DEFAULT_RESULTS / ("quick" if args.quick else "full")
    root.mkdir(parents=True, exist_ok=True)
    trainer = tuple(shlex.split(args.trainer)) if args.trainer else TRAINER
    n = len(cells(config))
    print(f"{n} runs ({mode} mode) -> {root}, {args.jobs} at a time")

    machine_start = machine_info()
    start = time.perf_counter()
    cpu_start = _children_cpu()
    outcomes = run_sweep(config, root, jobs=args.jobs, trainer=trainer, timeout=args.timeout)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    print(f"sweep done in {wall:.0f} s: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))

    # sweep.json keeps the invocation that produced (the last part of) these results.
    meta_path = root / "sweep.json"
    previous = {}
    if meta_path.exists():
        try:
            previous = json.loads(meta_path.read_text())
        except ValueError:
            previous = {}
    invocations = previous.get("invocations", [])
    invocations.append({
        "command": "python -m wgan_kernels.experiments.lambda_sweep " + shlex.join(argv),
        "jobs": args.jobs,
        "wall_time": wall,
        "cpu_time": cpu,  # CPU seconds of all trainer processes: the cost, independent of other load
        "counts": counts,
        "machine": machine_start,
        "load_average_end": machine_info()["load_average"],
    })
    meta = {
        "mode": mode,
        "config": dataclasses.asdict(config) | {"plot_at": list(config.plot_at)},
        "invocations": invocations,
        "failed": [o.cell.name for o in outcomes if o.status == "failed"],
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")

    if not args.no_report:
        from . import report

        path = report.write_report(root)
        print(f"report: {path}")
    return 0 if counts.get("failed", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
