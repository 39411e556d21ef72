"""Report of a lambda-sweep results directory (see lambda_sweep.py for its layout).

    python -m wgan_kernels.experiments.report RESULTS_DIR

reads every run dir under RESULTS_DIR/runs (metrics.csv, summary.json, plots/levels_*.npz) and
writes RESULTS_DIR/report.md with

* one table per data set (rows: method, columns: lambda); a cell is the median over seeds of the
  final W1 estimate, its min-max over seeds, and the stability figure ``sd``: the standard
  deviation of the critic loss (without the penalty) over the last half of training, median over
  seeds. Diverged and failed runs are counted in the cell, never averaged in;
* the critic level sets on swissroll at lambda 10 (methods x iterations; WGAN-LP figure 3);
* W1 vs generator iteration per method, median over seeds (WGAN-LP figure 5);
* swissroll critic-loss and penalty-part curves and the numbers behind the paper's claims
  (speed is the benchmarks' job: step times of runs that share a machine are confounded);

plus runs.csv (one line per run). Figures are written next to the report as small PNGs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np

from .layout import DATASETS, LAMBDAS, METHODS, format_lambda, read_summary

METHOD_LABELS = {
    "gp": "GP",
    "lp": "LP",
    "quotient": "quotient (eq. 7)",
    "transport": "transport (eq. 9)",
}
METHOD_COLORS = {"gp": "tab:red", "lp": "tab:blue", "quotient": "tab:green", "transport": "tab:purple"}
RUN_NAME = re.compile(r"^lam(?P<lam>[^_]+)_seed(?P<seed>-?\d+)$")
LEVEL_FILE = re.compile(r"^levels_(\d+)\.npz$")
DPI = 72


@dataclasses.dataclass
class Run:
    data: str
    method: str
    lam: float
    seed: int
    path: Path
    status: str  # finished | diverged | unfinished (no summary.json) | failed (the sweep saw it fail)
    summary: dict
    metrics: dict[str, np.ndarray]

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def column(self, name: str) -> np.ndarray:
        return self.metrics.get(name, np.full(len(self.iterations), np.nan))

    @property
    def iterations(self) -> np.ndarray:
        return self.metrics.get("iteration", np.zeros(0))

    def w1_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(iterations, W1 estimates), starting with the untrained generator's at iteration 0."""
        w1 = self.metrics.get("w1")
        if w1 is None:
            return np.zeros(0), np.zeros(0)
        keep = np.isfinite(w1)
        it, w1 = self.iterations[keep], w1[keep]
        first = _as_float(self.summary.get("initial_w1"))
        if math.isfinite(first) and (len(it) == 0 or it[0] > 0):
            it, w1 = np.concatenate([[0.0], it]), np.concatenate([[first], w1])
        return it, w1

    @property
    def final_w1(self) -> float:
        value = _as_float(self.summary.get("final_w1"))
        if math.isfinite(value):
            return value
        _, w1 = self.w1_curve()
        return float(w1[-1]) if len(w1) else math.nan

    @property
    def initial_w1(self) -> float:
        value = _as_float(self.summary.get("initial_w1"))
        if math.isfinite(value):
            return value
        _, w1 = self.w1_curve()
        return float(w1[0]) if len(w1) else math.nan

    def last_half(self, name: str) -> np.ndarray:
        """Finite values of a metrics column over the last half of the iterations reached."""
        it = self.iterations
        values = self.column(name)
        if len(it) == 0:
            return np.zeros(0)
        keep = (it > it.max() / 2) & np.isfinite(values)
        return values[keep]

    @property
    def critic_loss_sd(self) -> float:
        values = self.last_half("critic_loss")
        return float(np.std(values)) if len(values) > 1 else math.nan

    @property
    def critic_loss_wobble(self) -> float:
        """sd of the critic loss around a straight-line fit over the last half: the oscillation
        without the drift (a steadily falling loss has sd > 0 but wobble near 0)."""
        it = self.iterations
        values = self.column("critic_loss")
        if len(it) == 0:
            return math.nan
        keep = (it > it.max() / 2) & np.isfinite(values)
        if keep.sum() < 3:
            return math.nan
        x, y = it[keep], values[keep]
        residual = y - np.polyval(np.polyfit(x, y, 1), x)
        return float(np.std(residual))

    @property
    def critic_loss_mean(self) -> float:
        values = self.last_half("critic_loss")
        return float(np.mean(values)) if len(values) else math.nan

    @property
    def w1_sd(self) -> float:
        it, w1 = self.w1_curve()
        if len(it) == 0:
            return math.nan
        values = w1[it > it.max() / 2]
        return float(np.std(values)) if len(values) > 1 else math.nan

    @property
    def step_time(self) -> float:
        values = self.column("step_time")
        values = values[np.isfinite(values)]
        return float(np.median(values)) if len(values) else math.nan

    def level_files(self) -> dict[int, Path]:
        plots = self.path / "plots"
        if not plots.is_dir():
            return {}
        found = {}
        for f in plots.iterdir():
            m = LEVEL_FILE.match(f.name)
            if m:
                found[int(m.group(1))] = f
        return dict(sorted(found.items()))


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as float columns (empty cells and non-numbers become NaN)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return {}
    if not rows:
        return {}
    return {key: np.array([_as_float(r.get(key)) for r in rows]) for key in rows[0] if key is not None}


def load_runs(root: Path) -> list[Run]:
    """Every run dir under root/runs/{data}/{method}/lam{lambda}_seed{seed}."""
    runs = []
    try:  # the runs the last sweep saw fail (no summary.json: exit code != 0 or killed at --timeout)
        failed = set(json.loads((Path(root) / "sweep.json").read_text()).get("failed", []))
    except (OSError, ValueError, AttributeError):
        failed = set()
    base = Path(root) / "runs"
    if not base.is_dir():
        return runs
    for path in sorted(base.glob("*/*/*")):
        m = RUN_NAME.match(path.name)
        if not path.is_dir() or not m:
            continue
        summary = read_summary(path)
        metrics = read_metrics(path / "metrics.csv")
        name = "/".join(path.parts[-3:])
        if summary is None:
            status = "failed" if name in failed else "unfinished"
            summary = {}
        else:
            status = str(summary.get("status", "failed"))
        if status == "finished" and not math.isfinite(_as_float(summary.get("final_w1"))):
            # A "finished" run whose W1 is not a number diverged in all but name.
            if not len(metrics.get("w1", [])) or not np.isfinite(metrics["w1"]).any():
                status = "diverged"
        runs.append(Run(path.parent.parent.name, path.parent.name, float(m.group("lam")),
                        int(m.group("seed")), path, status, summary, metrics))
    return runs


def _ordered(values, preferred) -> list:
    values = set(values)
    return [v for v in preferred if v in values] + sorted(values - set(preferred))


def _fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "n/a"
    if digits > 0 and x != 0 and (abs(x) >= 1000 or abs(x) < 10 ** (-digits)):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def _median(values) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def _group(runs: list[Run]) -> dict[tuple[str, str, float], list[Run]]:
    groups: dict[tuple[str, str, float], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.data, r.method, r.lam), []).append(r)
    return groups


def cell_text(group: list[Run]) -> str:
    """Table cell: median final W1 [min-max] over finished seeds, critic-loss sd, failures."""
    if not group:
        return "-"
    ok = [r for r in group if r.ok and math.isfinite(r.final_w1)]
    notes = []
    for status in ("diverged", "failed", "unfinished"):
        k = sum(r.status == status for r in group)
        if k:
            notes.append(f"{k}/{len(group)} {status}")
    if not ok:
        return "**" + ", ".join(notes) + "**" if notes else "n/a"
    w1 = [r.final_w1 for r in ok]
    text = _fmt(float(np.median(w1)))
    if len(w1) > 1:
        text += f" [{_fmt(min(w1))}-{_fmt(max(w1))}]"
    sd = _median(r.critic_loss_sd for r in ok)
    text += f"; sd {_fmt(sd)}"
    if notes:
        text += "; **" + ", ".join(notes) + "**"
    return text


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pick_seed(group: list[Run]) -> Run | None:
    with_levels = [r for r in group if r.level_files()]
    if not with_levels:
        return None
    return min(with_levels, key=lambda r: (r.status != "finished", r.seed))


def _draw_levels(ax, path: Path, points: int = 200) -> None:
    with np.load(path) as z:
        xs, ys, values = z["xs"], z["ys"], z["values"]
        real = z["real"] if "real" in z else np.zeros((0, 2))
        fake = z["fake"] if "fake" in z else np.zeros((0, 2))
    if np.isfinite(values).all():
        ax.contourf(xs, ys, values, levels=20, cmap="viridis")
        ax.contour(xs, ys, values, levels=20, colors="k", linewidths=0.3)
    else:
        ax.text(0.5, 0.5, "non-finite", transform=ax.transAxes, ha="center", color="red")
    ax.scatter(real[:points, 0], real[:points, 1], s=2, c="orange", linewidths=0)
    ax.scatter(fake[:points, 0], fake[:points, 1], s=2, c="white", linewidths=0)
    ax.set_xlim(xs.min(), xs.max())
    ax.set_ylim(ys.min(), ys.max())
    ax.set_xticks([])
    ax.set_yticks([])


def level_grid(runs: list[Run], out: Path, data: str = "swissroll", lam: float = 10.0) -> Path | None:
    """Critic level sets: rows methods, columns the saved iterations (WGAN-LP figure 3)."""
    groups = _group(runs)
    picked = {}
    for method in _ordered({r.method for r in runs}, METHODS):
        run = _pick_seed(groups.get((data, method, lam), []))
        if run is not None:
            picked[method] = run
    if not picked:
        return None
    iterations = sorted({i for r in picked.values() for i in r.level_files()})
    plt = _plt()
    fig, axes = plt.subplots(len(picked), len(iterations), figsize=(1.9 * len(iterations), 1.9 * len(picked)),
                             squeeze=False)
    for row, (method, run) in enumerate(picked.items()):
        files = run.level_files()
        for col, it in enumerate(iterations):
            ax = axes[row][col]
            if it in files:
                _draw_levels(ax, files[it])
            else:
                ax.axis("off")
            if row == 0:
                ax.set_title(f"iteration {it}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{METHOD_LABELS.get(method, method)}\nseed {run.seed}", fontsize=8)
    fig.suptitle(f"critic level sets, {data}, lambda {format_lambda(lam)} "
                 "(orange: data, white: generator)", fontsize=9)
    fig.tight_layout()
    path = out / f"levels_{data}_lam{format_lambda(lam)}.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def final_level_grid(runs: list[Run], out: Path, lam: float = 10.0) -> Path | None:
    """Last saved critic level set per data set (columns) and method (rows) at one lambda."""
    groups = _group(runs)
    datasets = _ordered({r.data for r in runs}, DATASETS)
    methods = _ordered({r.method for r in runs}, METHODS)
    picked = {(d, m): _pick_seed(groups.get((d, m, lam), [])) for d in datasets for m in methods}
    if not any(picked.values()):
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(methods), len(datasets), figsize=(2.2 * len(datasets), 2.1 * len(methods)),
                             squeeze=False)
    for row, m in enumerate(methods):
        for col, d in enumerate(datasets):
            ax = axes[row][col]
            run = picked[(d, m)]
            if run is None:
                ax.axis("off")
                continue
            it, path = list(run.level_files().items())[-1]
            _draw_levels(ax, path)
            ax.set_title(f"{d}, it. {it}", fontsize=8)
            if col == 0:
                ax.set_ylabel(METHOD_LABELS.get(m, m), fontsize=8)
    fig.suptitle(f"last saved critic level sets, lambda {format_lambda(lam)}", fontsize=9)
    fig.tight_layout()
    path = out / f"levels_last_lam{format_lambda(lam)}.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def band_curve(group: list[Run], getter, quantiles=(0.0, 1.0)) -> tuple[np.ndarray, ...]:
    """(x, median, low, high) over runs of curves (x, y) on the iterations all of them share; low
    and high are the given quantiles (default: min and max)."""
    curves = [getter(r) for r in group]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return (np.zeros(0),) * 4
    common = curves[0][0]
    for x, _ in curves[1:]:
        common = np.intersect1d(common, x)
    if len(common) == 0:  # no shared grid: show the longest run alone
        x, y = max(curves, key=lambda c: len(c[0]))
        return x, y, y, y
    stack = np.stack([y[np.searchsorted(x, common)] for x, y in curves])
    low, high = np.quantile(stack, quantiles, axis=0)
    return common, np.median(stack, 0), low, high


def w1_curves(runs: list[Run], out: Path) -> Path | None:
    """W1 estimate vs generator iteration: rows data sets, columns lambdas, one line per method
    (median over finished seeds, band min-max) - WGAN-LP figure 5."""
    ok = [r for r in runs if r.ok]
    if not any(len(r.w1_curve()[0]) for r in ok):
        return None
    groups = _group(ok)
    datasets = _ordered({r.data for r in ok}, DATASETS)
    lambdas = _ordered({r.lam for r in ok}, LAMBDAS)
    methods = _ordered({r.method for r in ok}, METHODS)
    plt = _plt()
    fig, axes = plt.subplots(len(datasets), len(lambdas), figsize=(2.6 * len(lambdas), 2.2 * len(datasets)),
                             squeeze=False, sharex=True, sharey="row")
    for row, d in enumerate(datasets):
        for col, lam in enumerate(lambdas):
            ax = axes[row][col]
            for m in methods:
                x, med, lo, hi = band_curve(groups.get((d, m, lam), []), Run.w1_curve)
                if not len(x):
                    continue
                c = METHOD_COLORS.get(m)
                ax.plot(x, med, color=c, lw=1, label=METHOD_LABELS.get(m, m))
                ax.fill_between(x, lo, hi, color=c, alpha=0.15, lw=0)
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(f"lambda {format_lambda(lam)}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{d}\nW1 estimate", fontsize=8)
            if row == len(datasets) - 1:
                ax.set_xlabel("generator iteration", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    path = out / "w1_curves.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def swissroll_curves(runs: list[Run], out: Path, data: str = "swissroll") -> Path | None:
    """Critic loss without the penalty (top) and the penalty's parts from gradient norms above
    and below 1 (bottom; WGAN-LP figure 6) on one data set, per lambda."""
    ok = [r for r in runs if r.data == data and r.ok and len(r.iterations)]
    if not ok:
        return None
    groups = _group(ok)
    lambdas = _ordered({r.lam for r in ok}, LAMBDAS)
    methods = _ordered({r.method for r in ok}, METHODS)
    plt = _plt()
    fig, axes = plt.subplots(3, len(lambdas), figsize=(2.6 * len(lambdas), 6.2), squeeze=False, sharex=True)

    def col_getter(name):
        def get(r: Run):
            v = r.column(name)
            keep = np.isfinite(v)
            return r.iterations[keep], v[keep]
        return get

    rows = [("critic_loss", "critic loss\n(no penalty)"),
            ("penalty_above", "lambda x part from\nnorms > 1"),
            ("penalty_below", "lambda x part from\nnorms < 1 (GP only\npays it; diagnostic)")]
    for col, lam in enumerate(lambdas):
        for row, (name, label) in enumerate(rows):
            ax = axes[row][col]
            for m in methods:
                x, med, _, _ = band_curve(groups.get((data, m, lam), []), col_getter(name))
                if len(x) and (row == 0 or np.any(med != 0)):  # pair penalties have no part below
                    ax.plot(x, med, color=METHOD_COLORS.get(m), lw=0.8, label=METHOD_LABELS.get(m, m))
            if row > 0:
                ax.set_yscale("symlog", linthresh=1e-4)
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(f"{data}, lambda {format_lambda(lam)}", fontsize=9)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
            if row == len(rows) - 1:
                ax.set_xlabel("generator iteration", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    path = out / f"critic_curves_{data}.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# report


def _claims(runs: list[Run]) -> list[str]:
    """The numbers behind WGAN-LP's toy claims; the verdict is written in docs/STUDY.md."""
    groups = _group([r for r in runs])
    lines = []

    def w1(d, m, lam):
        g = [r for r in groups.get((d, m, lam), []) if r.ok]
        return _median(r.final_w1 for r in g)

    def stat(d, m, lam, attr):
        g = [r for r in groups.get((d, m, lam), []) if r.ok]
        return _median(getattr(r, attr) for r in g)

    def n_bad(d, m, lam):
        g = groups.get((d, m, lam), [])
        return sum(not r.ok for r in g), len(g)

    sr = "swissroll"
    if any(r.data == sr for r in runs):
        lines.append(
            f"* swissroll, final W1 (median): GP lambda 10 = {_fmt(w1(sr, 'gp', 10.0))}, "
            f"GP lambda 1 = {_fmt(w1(sr, 'gp', 1.0))}, LP lambda 10 = {_fmt(w1(sr, 'lp', 10.0))}, "
            f"LP lambda 100 = {_fmt(w1(sr, 'lp', 100.0))}, GP lambda 100 = {_fmt(w1(sr, 'gp', 100.0))}; "
            f"initial W1 about {_fmt(_median(r.initial_w1 for r in runs if r.data == sr))}."
        )
        for lam in (5.0, 10.0):
            lines.append(
                f"* swissroll, lambda {format_lambda(lam)}, critic loss (no penalty) over the last half: "
                f"GP mean {_fmt(stat(sr, 'gp', lam, 'critic_loss_mean'))}, sd "
                f"{_fmt(stat(sr, 'gp', lam, 'critic_loss_sd'))}, sd around a linear trend "
                f"{_fmt(stat(sr, 'gp', lam, 'critic_loss_wobble'))}; LP mean "
                f"{_fmt(stat(sr, 'lp', lam, 'critic_loss_mean'))}, sd {_fmt(stat(sr, 'lp', lam, 'critic_loss_sd'))}, "
                f"sd around a linear trend {_fmt(stat(sr, 'lp', lam, 'critic_loss_wobble'))}."
            )
    pairs = [(d, lam) for d in _ordered({r.data for r in runs}, DATASETS)
             for lam in _ordered({r.lam for r in runs}, LAMBDAS)]
    rows, lower, steadier, compared = [], 0, 0, 0
    for d, lam in pairs:
        g, lp = w1(d, "gp", lam), w1(d, "lp", lam)
        gs, ls = stat(d, "gp", lam, "w1_sd"), stat(d, "lp", lam, "w1_sd")
        if math.isfinite(g) and math.isfinite(lp):
            compared += 1
            lower += lp < g
            steadier += math.isfinite(gs) and math.isfinite(ls) and ls < gs
        bad_g, bad_l = n_bad(d, "gp", lam), n_bad(d, "lp", lam)
        rows.append([d, format_lambda(lam), _fmt(g), _fmt(lp), _fmt(gs), _fmt(ls),
                     f"{bad_g[0]}/{bad_g[1]}", f"{bad_l[0]}/{bad_l[1]}"])
    if compared:
        lines.append(f"* LP's median final W1 is below GP's in {lower} of {compared} (data set, lambda) cells; "
                     f"LP's W1 fluctuates less (sd over the last half of the evaluations) in {steadier} "
                     f"of {compared}.")
        lines.append("")
        lines.append(markdown_table(
            ["data", "lambda", "GP W1", "LP W1", "GP W1 sd", "LP W1 sd", "GP not finished", "LP not finished"],
            rows))
    return lines


def runs_csv(runs: list[Run], path: Path) -> None:
    fields = ["data", "method", "lambda", "seed", "status", "iterations", "initial_w1", "final_w1",
              "w1_sd_last_half", "critic_loss_sd_last_half", "critic_loss_detrended_sd_last_half",
              "critic_loss_mean_last_half",
              "step_time_median", "wall_time"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        for r in runs:
            it = r.iterations
            w.writerow([r.data, r.method, format_lambda(r.lam), r.seed, r.status,
                        int(it.max()) if len(it) else "", _fmt(r.initial_w1, 5), _fmt(r.final_w1, 5),
                        _fmt(r.w1_sd, 5), _fmt(r.critic_loss_sd, 5), _fmt(r.critic_loss_wobble, 5),
                        _fmt(r.critic_loss_mean, 5),
                        _fmt(r.step_time, 5), _fmt(_as_float(r.summary.get("wall_time")), 2)])


def _header(root: Path, runs: list[Run]) -> list[str]:
    lines = []
    try:
        meta = json.loads((root / "sweep.json").read_text())
    except (OSError, ValueError):
        meta = {}
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append(f"Runs: {len(runs)} (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ").")
    invocations = meta.get("invocations", [])
    if invocations:
        lines.append("")
        lines.append("Produced by (in this directory; finished runs are skipped on rerun):")
        lines.append("")
        for inv in invocations:
            mach = inv.get("machine", {})
            counts = ", ".join(f"{v} {k}" for k, v in sorted(inv.get("counts", {}).items()))
            text = f"* `{inv.get('command', '?')}`: {_as_float(inv.get('wall_time')):.0f} s wall"
            if "cpu_time" in inv:
                text += f" ({_as_float(inv['cpu_time']):.0f} CPU-seconds of trainer processes)"
            text += (f", {inv.get('jobs', '?')} jobs, {counts}; {mach.get('date', '?')} on {mach.get('cpu', '?')}, "
                     f"{mach.get('cores', '?')} cores, torch {mach.get('torch', '?')}, "
                     f"Python {mach.get('python', '?')}")
            if mach.get("load_average"):
                text += (f"; load average (1/5/15 min) {mach['load_average']} at the start, "
                         f"{inv.get('load_average_end', '?')} at the end")
            lines.append(text + ".")
    config = meta.get("config")
    if config:
        keys = ["iterations", "seeds", "n_critic", "lp_schedule", "batch_size", "optimizer", "lr", "hidden",
                "eval_every", "eval_samples"]
        lines.append("")
        lines.append(f"Mode `{meta.get('mode', '?')}`: " + ", ".join(f"{k} = {config[k]}" for k in keys
                                                                     if k in config) + ".")
    return lines


def write_report(root: Path) -> Path:
    """Writes root/report.md (and its figures, runs.csv); returns the report's path."""
    root = Path(root)
    runs = load_runs(root)
    lines = ["# WGAN-LP toy study: GP vs LP (and the quotient and transport penalties) across lambda", ""]
    lines += _header(root, runs)
    lines += ["", "Metrics: W1 is the minimum-cost-assignment estimate between generated and real samples "
              "(Euclidean cost) at the last evaluation; each cell gives the median over finished seeds, "
              "[min-max] when there are several, and `sd`, the standard deviation of the critic loss "
              "(without the penalty) over the last half of the generator iterations (median over seeds; "
              "small is steady). Runs that diverged (or failed) are counted in the cell, not averaged in.", ""]
    if not runs:
        lines.append("No runs found.")
    groups = _group(runs)
    datasets = _ordered({r.data for r in runs}, DATASETS)
    methods = _ordered({r.method for r in runs}, METHODS)
    lambdas = _ordered({r.lam for r in runs}, LAMBDAS)
    for d in datasets:
        init = _median(r.initial_w1 for r in runs if r.data == d)
        lines += [f"## {d}", "", f"Initial W1 (median over runs): {_fmt(init)}.", ""]
        header = ["method"] + [f"lambda {format_lambda(lam)}" for lam in lambdas]
        rows = [[METHOD_LABELS.get(m, m)] + [cell_text(groups.get((d, m, lam), [])) for lam in lambdas]
                for m in methods]
        lines += [markdown_table(header, rows), ""]

    figures = [
        ("Critic level sets on swissroll, lambda 10 (WGAN-LP figure 3)", level_grid(runs, root)),
        ("Last saved level sets, lambda 10, all data sets", final_level_grid(runs, root)),
        ("W1 estimate vs generator iteration, median over seeds, band min-max (WGAN-LP figure 5)",
         w1_curves(runs, root)),
        ("Swissroll: critic loss without the penalty and the penalty's parts from gradient norms above "
         "and below 1 (WGAN-LP figure 6), median over seeds", swissroll_curves(runs, root)),
    ]
    for title, path in figures:
        if path is not None:
            lines += [f"## {title}", "", f"![{title}]({path.name})", ""]

    if runs:
        lines += ["## The paper's claims, in numbers", ""] + _claims(runs) + [""]

    runs_csv(runs, root / "runs.csv")
    path = root / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_kernels.experiments.report",
                                description="Writes report.md for a lambda-sweep results directory.")
    p.add_argument("root", type=Path, help="results dir (the sweep's --out)")
    args = p.parse_args(argv)
    print(write_report(args.root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
