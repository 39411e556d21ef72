"""Report of the protocol study (protocol_study.py): results/protocol/report.md and its figures.

    python -m wgan_kernels.experiments.protocol_report [ROOT]      # default results/protocol

Reads the stage folders that exist (a stage still running is reported with the runs it has) and
writes, next to report.md:

* the W1 estimator's noise floor per data set: W1 between two independent 500-sample draws of the
  data itself, the level below which no difference means anything;
* figures 4 and 5 (GP vs LP at lambda 5): W1 and critic-loss curves, median over seeds with a
  25-75% quantile band, the noise floor drawn on every W1 panel; a table with medians and
  quartiles, the paired per-seed comparison (LP minus GP on the same seed, called a win only
  beyond the noise floor) and the stability measure (below);
* the level sets of figures 3, 8 and 9 (swissroll, 10 to 1000 iterations);
* appendix D.7 (pair penalties) and D.5 (W2 variant) tables and level sets;
* the initialisation check of GP's failure, when its runs exist.

Stability ("wobble") of a curve is the standard deviation of its residual around a centred
moving average spanning 100 generator iterations, over the whole run after the 100-critic-step
warm-up (generator iterations > 25; the residual is taken where the whole window fits): the
trend, however it bends, is removed, and what remains is the oscillation around it. A loss that
falls smoothly scores near 0 (a straight line exactly 0), one that swings around 0 scores about
the swing's amplitude.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from . import report
from .layout import DATASETS, format_lambda
from .protocol_study import FOLDERS, PROTOCOL_RESULTS

WARMUP_ITERATIONS = 25  # the LP schedule's 100-critic-step iterations
NOISE_FLOOR_SAMPLES = 500  # the W1 estimate's sample size (WGAN-LP appendix D)
NOISE_FLOOR_REPEATS = 50
WOBBLE_SPAN = 100  # generator iterations of the moving average that is the trend
LAST_ITERATIONS = 100  # "final" W1: mean of the evaluations in the last 100 iterations (10 of them)
QUANTILES = (0.25, 0.75)
LEVEL_RUNS = (("gp", 10.0), ("gp", 1.0), ("lp", 10.0), ("lp", 100.0))  # WGAN-LP figures 3, 8, 9


def noise_floor(data: str, repeats: int = NOISE_FLOOR_REPEATS, samples: int = NOISE_FLOOR_SAMPLES) -> np.ndarray:
    """W1 estimates between two independent draws of the data set itself (seeded, reproducible)."""
    from ..train.data import ToySampler
    from ..train.evaluate import w1_assignment

    a, b = ToySampler(data, seed=10_000), ToySampler(data, seed=20_000)
    return np.array([w1_assignment(a.sample(samples).numpy(), b.sample(samples).numpy()) for _ in range(repeats)])


def noise_floors(datasets, repeats: int = NOISE_FLOOR_REPEATS) -> dict[str, dict[str, float]]:
    floors = {}
    for d in datasets:
        values = noise_floor(d, repeats)
        floors[d] = {"median": float(np.median(values)), "q05": float(np.quantile(values, 0.05)),
                     "q95": float(np.quantile(values, 0.95)), "repeats": repeats}
    return floors


def wobble(x: np.ndarray, y: np.ndarray, after: int = WARMUP_ITERATIONS, span: int = WOBBLE_SPAN) -> float:
    """sd of y around its centred moving average over `span` iterations, for x > after (module doc)."""
    keep = (x > after) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return math.nan
    step = float(np.median(np.diff(x)))
    window = int(round(span / step)) | 1  # odd, so the average is centred
    if len(y) < window + 2:
        return math.nan
    trend = np.convolve(y, np.ones(window) / window, mode="valid")
    half = window // 2
    return float(np.std(y[half : len(y) - half] - trend))


def _column(run: report.Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    values = run.column(name)
    keep = np.isfinite(values)
    return run.iterations[keep], values[keep]


def final_w1(run: report.Run) -> float:
    """Mean W1 estimate over the evaluations of the last LAST_ITERATIONS iterations."""
    x, y = run.w1_curve()
    if not len(x):
        return math.nan
    return float(np.mean(y[x > x.max() - LAST_ITERATIONS]))


def critic_wobble(run: report.Run) -> float:
    return wobble(*_column(run, "critic_loss"))


def w1_wobble(run: report.Run) -> float:
    return wobble(*run.w1_curve())


def _stat_text(values) -> str:
    """median [q25, q75] (n) of the finite values."""
    values = np.array([v for v in values if math.isfinite(v)])
    if not len(values):
        return "n/a"
    lo, hi = np.quantile(values, QUANTILES)
    return f"{report._fmt(float(np.median(values)))} [{report._fmt(float(lo))}, {report._fmt(float(hi))}] (n={len(values)})"


def _status_note(runs) -> str:
    bad = [r for r in runs if not r.ok]
    return "" if not bad else f"; not finished: {len(bad)}/{len(runs)} (" + ", ".join(
        sorted({r.status for r in bad})) + ")"


# ---------------------------------------------------------------------------------------------
# figures 4 and 5


def paired(runs: list[report.Run], data: str, lam: float, floor: float) -> dict:
    """LP minus GP on the same seed: final W1 and critic-loss wobble; wins only beyond the floor."""
    by = {(r.method, r.seed): r for r in runs if r.data == data and r.lam == lam and r.ok}
    seeds = sorted(s for (m, s) in by if m == "gp" and ("lp", s) in by)
    w1_diff = [final_w1(by["lp", s]) - final_w1(by["gp", s]) for s in seeds]
    # a ratio, not a count of "LP steadier" seeds: 0.008 against 0.009 is no difference in stability
    wobble_ratio = [critic_wobble(by["gp", s]) / critic_wobble(by["lp", s]) for s in seeds]
    return {
        "seeds": seeds,
        "w1_diff": w1_diff,
        "lp_better": sum(d < -floor for d in w1_diff),
        "gp_better": sum(d > floor for d in w1_diff),
        "wobble_ratio": wobble_ratio,
    }


def fig45_figure(runs, floors, out: Path, lam: float = 5.0) -> Path | None:
    datasets = [d for d in DATASETS if any(r.data == d and r.ok for r in runs)]
    if not datasets:
        return None
    plt = report._plt()
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.4 * len(datasets), 5.6), squeeze=False)
    for col, d in enumerate(datasets):
        for m in ("gp", "lp"):
            group = [r for r in runs if r.data == d and r.method == m and r.lam == lam and r.ok]
            color, label = report.METHOD_COLORS[m], f"{report.METHOD_LABELS[m]} (n={len(group)})"
            for row, getter in enumerate((report.Run.w1_curve, lambda r: _column(r, "critic_loss"))):
                x, med, lo, hi = report.band_curve(group, getter, QUANTILES)
                if len(x):
                    axes[row][col].plot(x, med, color=color, lw=0.9, label=label)
                    axes[row][col].fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
        floor = floors.get(d)
        if floor:
            axes[0][col].axhspan(floor["q05"], floor["q95"], color="0.6", alpha=0.3, lw=0)
            axes[0][col].axhline(floor["median"], color="0.3", lw=0.8, ls="--", label="noise floor")
        axes[0][col].set_title(f"{d}, lambda {format_lambda(lam)}", fontsize=9)
        axes[0][col].set_ylabel("W1 estimate", fontsize=8)
        axes[1][col].set_ylabel("critic loss (no penalty)", fontsize=8)
        axes[1][col].axhline(0, color="0.5", lw=0.5)
        axes[1][col].set_xlabel("generator iteration", fontsize=8)
        for ax in axes[:, col]:
            ax.tick_params(labelsize=7)
        axes[0][col].legend(fontsize=6)
    fig.suptitle("median over seeds, band: 25-75% quantiles; grey: the W1 noise floor (5-95%)", fontsize=8)
    fig.tight_layout()
    path = out / "fig45_w1_critic_loss.png"
    fig.savefig(path, dpi=report.DPI)
    plt.close(fig)
    return path


def fig45_section(runs, floors, out: Path, lam: float = 5.0) -> list[str]:
    lines = ["## Figures 4 and 5: GP vs LP at lambda 5", ""]
    if not runs:
        return lines + ["No runs yet.", ""]
    lines += [f"Final W1 is the mean of the evaluations in the last {LAST_ITERATIONS} iterations; each cell is "
              "median [25%, 75%] over seeds. Paired: LP minus GP on the same seed; a seed counts for one "
              "method only when the difference exceeds the data set's noise floor. Wobble: the sd of a "
              f"curve around its centred {WOBBLE_SPAN}-iteration moving average, over iterations > "
              f"{WARMUP_ITERATIONS} (the critic loss is without the penalty).", ""]
    header = ["data", "noise floor", "GP final W1", "LP final W1", "LP - GP per seed", "LP better / GP better / tie",
              "GP critic wobble", "LP critic wobble", "GP / LP critic wobble per seed", "GP W1 wobble", "LP W1 wobble"]
    rows = []
    for d in DATASETS:
        group = [r for r in runs if r.data == d and r.lam == lam]
        if not group:
            continue
        gp = [r for r in group if r.method == "gp" and r.ok]
        lp = [r for r in group if r.method == "lp" and r.ok]
        floor = floors[d]["median"]
        p = paired(runs, d, lam, floor)
        n = len(p["seeds"])
        rows.append([
            d + _status_note(group), report._fmt(floor),
            _stat_text(final_w1(r) for r in gp), _stat_text(final_w1(r) for r in lp),
            ", ".join(f"{v:+.3f}" for v in p["w1_diff"]) or "n/a",
            f"{p['lp_better']} / {p['gp_better']} / {n - p['lp_better'] - p['gp_better']}",
            _stat_text(critic_wobble(r) for r in gp), _stat_text(critic_wobble(r) for r in lp),
            ", ".join(report._fmt(v, 1) for v in p["wobble_ratio"]) or "n/a",
            _stat_text(w1_wobble(r) for r in gp), _stat_text(w1_wobble(r) for r in lp),
        ])
    lines += [report.markdown_table(header, rows), ""]
    path = fig45_figure(runs, floors, out, lam)
    if path is not None:
        lines += [f"![W1 and critic loss, GP vs LP, lambda 5]({path.name})", ""]
    return lines


# ---------------------------------------------------------------------------------------------
# level sets, pair penalties, W2, initialisation


def level_figure(runs, out: Path, picks, name: str, title: str) -> Path | None:
    """Rows: the (method, lambda[, seed]) picks (without a seed: the first with level sets);
    columns: saved iterations."""
    rows = []
    for method, lam, *seed in picks:
        group = [r for r in runs if r.method == method and r.lam == lam and r.level_files()
                 and (not seed or r.seed == seed[0])]
        if group:
            rows.append(min(group, key=lambda r: r.seed))
    if not rows:
        return None
    iterations = sorted({i for r in rows for i in r.level_files()})
    plt = report._plt()
    fig, axes = plt.subplots(len(rows), len(iterations), figsize=(1.9 * len(iterations), 1.9 * len(rows)),
                             squeeze=False)
    for i, run in enumerate(rows):
        files = run.level_files()
        for j, it in enumerate(iterations):
            ax = axes[i][j]
            if it in files:
                report._draw_levels(ax, files[it])
            else:
                ax.axis("off")
            if i == 0:
                ax.set_title(f"iteration {it}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{report.METHOD_LABELS.get(run.method, run.method)} lambda "
                              f"{format_lambda(run.lam)}\n{run.data}, seed {run.seed}", fontsize=7)
    fig.suptitle(title + " (orange: data, white: generator)", fontsize=9)
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=report.DPI)
    plt.close(fig)
    return path


def levels_section(runs, out: Path) -> list[str]:
    lines = ["## Figures 3, 8 and 9: critic level sets on swissroll", ""]
    if not runs:
        return lines + ["No runs yet.", ""]
    done = [r for r in runs if r.status in ("finished", "diverged")]  # a running one has no summary yet
    rows = [[report.METHOD_LABELS[r.method], format_lambda(r.lam), str(r.seed), r.status,
             report._fmt(r.initial_w1), report._fmt(final_w1(r))]
            for r in sorted(done, key=lambda r: (r.method, r.lam, r.seed))]
    lines += [report.markdown_table(["method", "lambda", "seed", "status", "initial W1", "final W1"], rows), ""]
    path = level_figure(runs, out, LEVEL_RUNS, "levels_swissroll.png", "swissroll critic level sets")
    if path is not None:
        lines += [f"![critic level sets on swissroll]({path.name})", ""]
    more = [(m, 10.0, s) for s in sorted({r.seed for r in runs if r.seed > 0}) for m in ("gp", "lp")]
    path = level_figure(runs, out, more, "levels_swissroll_lam10_seeds.png",
                        "swissroll critic level sets, lambda 10, more seeds") if more else None
    if path is not None:
        lines += [f"![critic level sets on swissroll, lambda 10, more seeds]({path.name})", ""]
    return lines


def method_table(runs, floors, methods) -> list[str]:
    header = ["data", "noise floor"] + [f"{report.METHOD_LABELS.get(m, m)} final W1" for m in methods]
    rows = []
    for d in DATASETS:
        group = [r for r in runs if r.data == d]
        if not group:
            continue
        rows.append([d + _status_note(group), report._fmt(floors[d]["median"])]
                    + [_stat_text(final_w1(r) for r in group if r.method == m and r.ok) for m in methods])
    return [report.markdown_table(header, rows), ""]


def last_levels_figure(runs, out: Path, methods, name: str, title: str) -> Path | None:
    """Last saved level set of seed 0 (or the first seed): rows methods, columns data sets."""
    datasets = [d for d in DATASETS if any(r.data == d for r in runs)]
    picked = {}
    for d in datasets:
        for m in methods:
            group = [r for r in runs if r.data == d and r.method == m and r.level_files()]
            if group:
                picked[d, m] = min(group, key=lambda r: r.seed)
    if not picked:
        return None
    plt = report._plt()
    fig, axes = plt.subplots(len(methods), len(datasets), figsize=(2.2 * len(datasets), 2.1 * len(methods)),
                             squeeze=False)
    for i, m in enumerate(methods):
        for j, d in enumerate(datasets):
            ax = axes[i][j]
            run = picked.get((d, m))
            if run is None:
                ax.axis("off")
                continue
            it, path = list(run.level_files().items())[-1]
            report._draw_levels(ax, path)
            ax.set_title(f"{d}, it. {it}", fontsize=8)
            if j == 0:
                ax.set_ylabel(report.METHOD_LABELS.get(m, m), fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=report.DPI)
    plt.close(fig)
    return path


def pairs_section(runs, floors, out: Path) -> list[str]:
    lines = ["## Appendix D.7: the pair penalties (eq. 7 quotient, eq. 9 transport), lambda 10", ""]
    if not runs:
        return lines + ["No runs yet.", ""]
    lines += method_table(runs, floors, ("quotient", "transport"))
    path = last_levels_figure(runs, out, ("quotient", "transport"), "levels_pairs.png",
                              "pair penalties, lambda 10: last level sets")
    if path is not None:
        lines += [f"![pair penalty level sets]({path.name})", ""]
    return lines


def w2_section(runs, floors, pair_runs, out: Path) -> list[str]:
    lines = ["## Appendix D.5: the W2 variant (quotient penalty with d = ||x - y||^2), lambda 10", ""]
    if not runs:
        return lines + ["No runs yet.", ""]
    lines += ["Beside the W1 quotient penalty (p = 1) of the same seeds, for comparison; W is still estimated "
              "with the Euclidean (W1) assignment.", ""]
    header = ["data", "noise floor", "quotient p=2 final W1", "quotient p=1 final W1"]
    rows = []
    for d in DATASETS:
        group = [r for r in runs if r.data == d]
        if not group:
            continue
        ref = [r for r in pair_runs if r.data == d and r.method == "quotient" and r.ok]
        rows.append([d + _status_note(group), report._fmt(floors[d]["median"]),
                     _stat_text(final_w1(r) for r in group if r.ok), _stat_text(final_w1(r) for r in ref)])
    lines += [report.markdown_table(header, rows), ""]
    path = last_levels_figure(runs, out, ("quotient",), "levels_w2.png", "W2 variant (p = 2), lambda 10: last level sets")
    if path is not None:
        lines += [f"![W2 variant level sets]({path.name})", ""]
    return lines


def init_section(torch_runs, glorot_runs, floors) -> list[str]:
    lines = ["## Does GP's failure depend on the initialisation? (swissroll, lambda 10, 200 iterations)", ""]
    if not torch_runs and not glorot_runs:
        return lines + ["No runs yet.", ""]
    lines += ["PyTorch's default initialisation (weights and biases U(+-1/sqrt(fan_in))) against the Glorot-"
              "uniform weights and zero biases of the tflib layers in the authors' TensorFlow code. Final W1: "
              f"median [25%, 75%] over seeds; noise floor {report._fmt(floors['swissroll']['median'])}.", ""]
    header = ["init", "untrained W1", "GP final W1", "LP final W1", "GP critic wobble", "LP critic wobble"]
    rows = []
    for name, runs in (("torch", torch_runs), ("glorot", glorot_runs)):
        if not runs:
            continue
        gp = [r for r in runs if r.method == "gp" and r.ok]
        lp = [r for r in runs if r.method == "lp" and r.ok]
        rows.append([name + _status_note(runs), _stat_text(r.initial_w1 for r in runs if r.ok),
                     _stat_text(final_w1(r) for r in gp),
                     _stat_text(final_w1(r) for r in lp), _stat_text(critic_wobble(r) for r in gp),
                     _stat_text(critic_wobble(r) for r in lp)])
    return lines + [report.markdown_table(header, rows), ""]


# ---------------------------------------------------------------------------------------------


def stage_runs(root: Path, stage: str) -> list[report.Run]:
    return report.load_runs(root / stage) if (root / stage).is_dir() else []


def _seeds_text(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def stage_header(root: Path) -> list[str]:
    lines = ["| folder | runs done | settings | wall time per run (median) |", "| --- | --- | --- | --- |"]
    for stage in FOLDERS:
        runs = stage_runs(root, stage)
        try:
            meta = json.loads((root / stage / "sweep.json").read_text())
        except (OSError, ValueError):
            meta = {}
        done = [r for r in runs if r.status in ("finished", "diverged")]
        settings = meta.get("mode", "in progress" if runs else "not run yet")
        if meta and done:  # the mode names the last invocation's seeds; a folder can hold several stages'
            settings = f"{settings.rsplit(', ', 1)[0]}, {_seeds_text(sorted({r.seed for r in done}))}"
        # wall time of the run's last (or only) process: one core, one or two runs at a time on 2 cores
        walls = [report._as_float(r.summary.get("wall_time")) for r in done]
        wall = report._fmt(float(np.nanmedian(walls)) / 60, 1) + " min" if walls else "-"
        lines.append(f"| {stage} | {len(done)} | {settings} | {wall} |")
    return lines


def write_protocol_report(root: Path = PROTOCOL_RESULTS, repeats: int = NOISE_FLOOR_REPEATS) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stages = {s: stage_runs(root, s) for s in FOLDERS}
    fig45, levels, pairs, w2 = (stages[s] for s in ("fig45", "levels", "pairs", "w2"))
    floors = noise_floors(DATASETS, repeats)
    (root / "noise_floor.json").write_text(json.dumps(floors, indent=2) + "\n")
    lines = ["# WGAN-LP toy study with the paper's protocol", "",
             "512-wide LeakyReLU MLPs, RMSprop 5e-5, batch 256, 100 critic steps for each of the first 25 "
             "generator iterations and then 10, W1 by exact assignment on 500 vs 500 samples every 10 "
             "iterations (protocol_study.py). Every run's folder is under `<stage>/runs/` (not committed).", ""]
    lines += stage_header(root) + [""]
    lines += ["## The W1 estimator's noise floor", "",
              f"W1 between two independent {NOISE_FLOOR_SAMPLES}-sample draws of the data itself, {repeats} "
              "repeats: a perfect generator scores about this, and differences below it are not wins.", ""]
    lines += [report.markdown_table(["data", "median", "5%", "95%"],
                                    [[d, report._fmt(f["median"]), report._fmt(f["q05"]), report._fmt(f["q95"])]
                                     for d, f in floors.items()]), ""]
    lines += fig45_section(fig45, floors, root)
    lines += levels_section(levels, root)
    lines += pairs_section(pairs, floors, root)
    lines += w2_section(w2, floors, pairs, root)
    lines += init_section(stages["init_torch"], stages["init_glorot"], floors)
    path = root / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    for stage, runs in stages.items():
        if runs:
            report.runs_csv(runs, root / f"runs_{stage}.csv")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_kernels.experiments.protocol_report",
                                description="Writes report.md of the protocol study.")
    p.add_argument("root", type=Path, nargs="?", default=PROTOCOL_RESULTS, help="the study's results folder")
    p.add_argument("--repeats", type=int, default=NOISE_FLOOR_REPEATS, help="draws for the noise floor")
    args = p.parse_args(argv)
    print(write_protocol_report(args.root, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
