"""The lambda sweep's plumbing and its report (issue 6).

The report and resume tests use synthetic run dirs and a stand-in trainer (a small script that
speaks the trainer's CLI contract), so they run without training; one test runs the real trainer
on a tiny grid when it is importable.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wgan_kernels.experiments import lambda_sweep as sweep
from wgan_kernels.experiments import report

# A stand-in for `python -m wgan_kernels.train`: parses the flags the sweep passes, appends its
# argv to calls.txt next to the run dir, and writes metrics.csv, level sets and summary.json.
FAKE_TRAINER = r'''
import argparse, csv, json, os, sys
import numpy as np
p = argparse.ArgumentParser()
for flag in ["--data", "--model", "--penalty", "--optimizer", "--out", "--plot-at", "--init"]:
    p.add_argument(flag)
for flag in ["--lambda", "--lr", "--pair-p"]:
    p.add_argument(flag, type=float)
for flag in ["--iterations", "--n-critic", "--batch-size", "--seed", "--eval-every",
             "--eval-samples", "--checkpoint-every", "--hidden"]:
    p.add_argument(flag, type=int)
p.add_argument("--lp-schedule", action=argparse.BooleanOptionalAction)
p.add_argument("--resume", action="store_true")
p.add_argument("--no-progress", action="store_true")
p.add_argument("--no-tensorboard", action="store_true")
p.add_argument("--threads", type=int)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(a.out)))), "calls.txt"), "a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\n")
if a.penalty == "crash":
    sys.exit(3)
diverge = a.penalty == "gp" and a.__dict__["lambda"] >= 100
cols = ["iteration", "critic_loss", "penalty", "penalty_above", "penalty_below", "grad_norm_mean",
        "grad_norm_max", "grad_norm_min", "generator_loss", "w1", "step_time"]
rng = np.random.default_rng(a.seed)
with open(os.path.join(a.out, "metrics.csv"), "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(cols)
    for it in range(1, a.iterations + 1):
        w1 = "" if it % a.eval_every else f"{1.0 / it + 0.01 * rng.random():.5f}"
        w.writerow([it, -0.5 + 0.1 * rng.standard_normal(), 0.01, 0.005, 0.005, 1.0, 1.5, 0.5, 0.1, w1, 0.01])
os.makedirs(os.path.join(a.out, "plots"), exist_ok=True)
xs = np.linspace(-2, 2, 20); ys = np.linspace(-2, 2, 15)
for it in sorted({int(i) for i in (a.plot_at or "").split(",") if i} | {a.iterations}):
    np.savez(os.path.join(a.out, "plots", f"levels_{it:06d}.npz"), xs=xs, ys=ys,
             values=np.add.outer(ys, xs) * it, real=rng.standard_normal((50, 2)),
             fake=rng.standard_normal((50, 2)))
summary = {"final_w1": None if diverge else 0.1, "initial_w1": 1.0, "iterations": a.iterations,
           "wall_time": 0.5, "status": "diverged" if diverge else "finished"}
with open(os.path.join(a.out, "summary.json"), "w") as fh:
    json.dump(summary, fh)
'''


def _fake_trainer(tmp_path: Path) -> tuple[str, ...]:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    return (sys.executable, str(script))


def _calls(root: Path) -> list[str]:
    path = root / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


TINY = sweep.Config(iterations=20, seeds=(0,), n_critic=1, lp_schedule=False, batch_size=16, hidden=8,
                    eval_every=5, eval_samples=20, checkpoint_every=0, datasets=("swissroll",),
                    methods=("gp", "lp"), lambdas=(10.0,))


def test_cells_and_trainer_args():
    config = sweep.QUICK
    cells = sweep.cells(config)
    assert len(cells) == 3 * 4 * 5 * len(config.seeds)
    assert {c.method for c in cells} == {"gp", "lp", "quotient", "transport"}
    assert {c.lam for c in cells} == {0.1, 1.0, 5.0, 10.0, 100.0}
    args = sweep.trainer_args(sweep.Cell("swissroll", "lp", 0.1, 2), sweep.FULL, Path("x"))
    joined = " ".join(args)
    for part in ["--data swissroll", "--penalty lp", "--lambda 0.1", "--iterations 1000", "--n-critic 10",
                 "--lp-schedule", "--optimizer rmsprop", "--lr 5e-05", "--batch-size 256", "--hidden 512",
                 "--seed 2", "--eval-every 10", "--eval-samples 500", "--plot-at 10,50,100,500,1000"]:
        assert part in joined
    assert "--resume" not in args
    assert sweep.run_dir(Path("r"), sweep.Cell("8gaussians", "gp", 10.0, 1)) == Path(
        "r/runs/8gaussians/gp/lam10_seed1")
    assert sweep.QUICK.plot_at == (10, 50)
    # quick mode plots the level sets of the figure's runs only (the last iteration is always saved)
    quick = " ".join(sweep.trainer_args(sweep.Cell("swissroll", "gp", 10.0, 0), sweep.QUICK, Path("x")))
    assert "--plot-at 10,50" in quick
    other = sweep.trainer_args(sweep.Cell("swissroll", "gp", 1.0, 0), sweep.QUICK, Path("x"))
    assert other[other.index("--plot-at") + 1] == ""
    extra = sweep.trainer_args(sweep.Cell("swissroll", "gp", 1.0, 0), sweep.QUICK, Path("x"), resume=True,
                               threads=1, supported=frozenset({"--threads", "--no-tensorboard"}))
    assert extra[-4:] == ["--no-tensorboard", "--threads", "1", "--resume"]


def test_sweep_with_stand_in_trainer_skips_finished_runs(tmp_path):
    trainer = _fake_trainer(tmp_path)
    config = TINY.__class__(**{**TINY.__dict__, "lambdas": (10.0, 100.0)})  # gp/100 "diverges"
    root = tmp_path / "res"
    out1 = sweep.run_sweep(config, root, jobs=2, trainer=trainer, log=lambda *_: None)
    assert [o.status for o in out1] == ["finished", "finished", "diverged", "finished"]  # gp/lp interleaved
    assert len(_calls(root)) == 4
    # Rerun: every run has a final status, nothing is recomputed.
    out2 = sweep.run_sweep(config, root, jobs=2, trainer=trainer, log=lambda *_: None)
    assert [o.status for o in out2] == ["skipped"] * 4
    assert len(_calls(root)) == 4
    # An unfinished run (no summary) is restarted with --resume, the others are skipped.
    victim = sweep.run_dir(root, sweep.Cell("swissroll", "lp", 10.0, 0))
    (victim / "summary.json").unlink()
    out3 = sweep.run_sweep(config, root, jobs=1, trainer=trainer, log=lambda *_: None)
    assert sorted(o.status for o in out3) == ["finished", "skipped", "skipped", "skipped"]
    calls = _calls(root)
    assert len(calls) == 5 and "--resume" in calls[-1] and "--penalty lp" in calls[-1]
    assert "--no-tensorboard" in calls[-1] and "--threads" in calls[-1]  # found in the trainer's --help


def test_failed_run_is_reported_not_raised(tmp_path):
    trainer = _fake_trainer(tmp_path)
    config = TINY.__class__(**{**TINY.__dict__, "methods": ("crash", "lp")})
    root = tmp_path / "res"
    outcomes = sweep.run_sweep(config, root, jobs=1, trainer=trainer, log=lambda *_: None)
    assert [(o.status, o.returncode) for o in outcomes] == [("failed", 3), ("finished", 0)]
    assert "**1/1 unfinished**" in report.write_report(root).read_text()  # no sweep.json: cause unknown
    argv = ["--out", str(root), "--datasets", "swissroll", "--methods", "crash,lp", "--lambdas", "10",
            "--seeds", "0", "--iterations", "20", "--trainer", " ".join(trainer)]
    assert sweep.main(argv) == 1  # the crashing run is tried again, fails again; the sweep says so
    assert json.loads((root / "sweep.json").read_text())["failed"] == ["swissroll/crash/lam10_seed0"]
    assert "**1/1 failed**" in (root / "report.md").read_text()


def test_main_writes_sweep_json_and_report(tmp_path):
    trainer = _fake_trainer(tmp_path)
    root = tmp_path / "res"
    argv = ["--quick", "--out", str(root), "--jobs", "2", "--datasets", "swissroll", "--lambdas", "10",
            "--iterations", "60", "--trainer", " ".join(trainer)]
    assert sweep.main(argv) == 0
    meta = json.loads((root / "sweep.json").read_text())
    assert meta["mode"] == "quick, 60 iterations, 1 seed" and meta["config"]["iterations"] == 60
    inv = meta["invocations"][0]
    assert inv["command"].startswith("python -m wgan_kernels.experiments.lambda_sweep --quick")
    assert inv["machine"]["cores"] and inv["machine"]["torch"]
    assert len(_calls(root)) == 4
    assert sweep.main(argv) == 0  # rerun: all skipped
    assert len(_calls(root)) == 4
    text = (root / "report.md").read_text()
    assert "## swissroll" in text and "levels_swissroll_lam10.png" in text


def _write_run(root: Path, data, method, lam, seed, status="finished", iterations=40, w1_final=0.2,
               levels=(10, 20), nan_values=False):
    path = root / "runs" / data / method / f"lam{sweep.format_lambda(lam)}_seed{seed}"
    (path / "plots").mkdir(parents=True)
    with open(path / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["iteration", "critic_loss", "penalty", "penalty_above", "penalty_below", "grad_norm_mean",
                    "grad_norm_max", "grad_norm_min", "generator_loss", "w1", "step_time"])
        for it in range(1, iterations + 1):
            w1 = f"{w1_final + 1.0 / it}" if it % 10 == 0 else ""
            loss = -1.0 if it <= iterations // 2 else (-0.5 if it % 2 else -0.3)  # sd 0.1 in the last half
            w.writerow([it, loss, 0.1, 0.06, 0.04, 1, 2, 0, 0.5, w1, 0.02])
    xs, ys = np.linspace(-1, 1, 8), np.linspace(-1, 1, 6)
    for it in levels:
        values = np.full((6, 8), np.nan) if nan_values else np.add.outer(ys, xs)
        np.savez(path / "plots" / f"levels_{it:06d}.npz", xs=xs, ys=ys, values=values,
                 real=np.zeros((5, 2)), fake=np.ones((5, 2)))
    if status is not None:
        summary = {"final_w1": None if status == "diverged" else w1_final + 1.0 / iterations,
                   "initial_w1": 2.0, "iterations": iterations, "wall_time": 1.0, "status": status}
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_report_on_stored_results(tmp_path):
    root = tmp_path / "res"
    for seed, w1 in enumerate([0.1, 0.3, 0.2]):
        _write_run(root, "swissroll", "lp", 10.0, seed, w1_final=w1 - 1 / 40)
        _write_run(root, "swissroll", "gp", 10.0, seed, w1_final=1.0, nan_values=seed == 0)
    _write_run(root, "swissroll", "gp", 1.0, 0, status="diverged")
    _write_run(root, "swissroll", "lp", 1.0, 0, status=None)  # killed before its summary
    _write_run(root, "8gaussians", "quotient", 0.1, 0, levels=())
    (root / "runs" / "junk").mkdir()  # ignored
    path = report.write_report(root)
    text = path.read_text()
    assert "## swissroll" in text and "## 8gaussians" in text
    # LP lambda 10: median of 0.1, 0.3, 0.2 with its range; critic-loss sd over the last half = 0.1.
    assert "0.200 [0.100-0.300]; sd 0.100" in text
    assert "**1/1 diverged**" in text
    assert "**1/1 unfinished**" in text
    assert "| GP |" in text and "| LP |" in text and "| quotient (eq. 7) |" in text
    for png in ["levels_swissroll_lam10.png", "w1_curves.png", "critic_curves_swissroll.png"]:
        assert png in text and (root / png).stat().st_size > 0
    rows = list(csv.DictReader(open(root / "runs.csv")))
    assert len(rows) == 9
    diverged = [r for r in rows if r["status"] == "diverged"]
    assert len(diverged) == 1 and diverged[0]["method"] == "gp" and diverged[0]["lambda"] == "1"
    runs = {(r.data, r.method, r.lam, r.seed): r for r in report.load_runs(root)}
    assert math.isclose(runs[("swissroll", "lp", 10.0, 1)].critic_loss_sd, 0.1)
    assert math.isclose(runs[("swissroll", "lp", 10.0, 1)].final_w1, 0.3)
    assert "LP's median final W1 is below GP's in 1 of 1" in text


def test_report_cli_on_empty_dir(tmp_path):
    assert report.main([str(tmp_path)]) == 0
    assert "No runs found" in (tmp_path / "report.md").read_text()


def _trainer_available() -> bool:
    try:
        return importlib.util.find_spec("wgan_kernels.train.__main__") is not None
    except ImportError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _trainer_available(), reason="trainer (python -m wgan_kernels.train) not built yet")
def test_tiny_grid_with_real_trainer(tmp_path):
    """Two cells of the real sweep, a few iterations each, then a rerun that skips both."""
    root = tmp_path / "res"
    argv = ["--quick", "--out", str(root), "--jobs", "2", "--datasets", "swissroll", "--methods", "lp,quotient",
            "--lambdas", "10", "--seeds", "0", "--iterations", "12", "--hidden", "16", "--n-critic", "2",
            "--eval-every", "5", "--eval-samples", "50"]
    assert sweep.main(argv + ["--no-report"]) == 0
    for method in ("lp", "quotient"):
        run = sweep.run_dir(root, sweep.Cell("swissroll", method, 10.0, 0))
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] in ("finished", "diverged")
        assert (run / "metrics.csv").exists()
        assert (run / "plots" / "levels_000010.npz").exists()
        assert "--no-tensorboard" in (run / "train.log").read_text()
    mtimes = {p: p.stat().st_mtime for p in (root / "runs").rglob("*") if p.is_file()}
    lines = []
    outcomes = sweep.run_sweep(sweep.config_from_args(sweep.build_parser().parse_args(argv)), root, jobs=2,
                               log=lines.append)
    assert [o.status for o in outcomes] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime for p in (root / "runs").rglob("*") if p.is_file()} == mtimes
    text = report.write_report(root).read_text()
    assert "## swissroll" in text and "levels_swissroll_lam10.png" in text


def test_protocol_report_noise_floor_paired_and_wobble(tmp_path):
    from wgan_kernels.experiments import protocol_report as pr

    trainer = _fake_trainer(tmp_path)
    config = TINY.__class__(**{**TINY.__dict__, "lambdas": (5.0,), "seeds": (0, 1, 2), "iterations": 60})
    sweep.run_sweep(config, tmp_path / "fig45", jobs=2, trainer=trainer, log=lambda *_: None)
    path = pr.write_protocol_report(tmp_path, repeats=3)
    text = path.read_text()
    assert "noise floor" in text and "LP - GP per seed" in text
    floors = json.loads((tmp_path / "noise_floor.json").read_text())
    assert set(floors) == {"8gaussians", "25gaussians", "swissroll"}
    assert all(0 < f["q05"] <= f["median"] <= f["q95"] for f in floors.values())
    assert (tmp_path / "fig45_w1_critic_loss.png").exists() and (tmp_path / "runs_fig45.csv").exists()
    assert "No runs yet." in text  # the stages that have not run


def test_wobble_ignores_trends_and_sees_oscillation():
    from wgan_kernels.experiments.protocol_report import wobble

    x = np.arange(1, 501, dtype=float)
    line = -0.002 * x  # falls steadily
    curve = np.exp(-x / 200)  # falls and bends
    swing = 0.5 * np.sin(2 * np.pi * x / 40)  # oscillates around 0 with a 40-iteration period
    assert wobble(x, line) < 1e-12
    assert wobble(x, curve) < 0.01
    assert 0.8 < wobble(x, swing) / (0.5 / np.sqrt(2)) < 1.1  # the swing's sd, nearly all of it
    assert abs(wobble(x, curve + swing) - wobble(x, swing)) < 0.01
    assert 0.8 < wobble(x[::10], swing[::10] + line[::10]) / (0.5 / np.sqrt(2)) < 1.1  # W1: every 10th
    assert np.isnan(wobble(x[:60], line[:60]))  # too short for the window after the warm-up


def test_protocol_stages_that_add_seeds_share_a_folder(tmp_path):
    from wgan_kernels.experiments import protocol_report as pr
    from wgan_kernels.experiments import protocol_study as ps

    assert ps.stage_folder("fig45_more") == "fig45" and ps.stage_folder("levels_more") == "levels"
    assert "fig45_more" not in ps.FOLDERS and "levels_more" not in ps.FOLDERS and "w2" in ps.FOLDERS
    args = ps.stage_args("fig45_more", jobs=2)
    assert "--out-name" not in args and args[args.index("--out") + 1] == str(ps.PROTOCOL_RESULTS / "fig45")
    # the header names the seeds the folder holds, not only those of its last invocation
    config = TINY.__class__(**{**TINY.__dict__, "lambdas": (5.0,), "seeds": (0, 1, 2), "iterations": 60})
    sweep.run_sweep(config, tmp_path / "fig45", jobs=2, trainer=_fake_trainer(tmp_path), log=lambda *_: None)
    (tmp_path / "fig45" / "sweep.json").write_text(json.dumps({"mode": "protocol, 60 iterations, 1 seed"}))
    row = next(line for line in pr.stage_header(tmp_path) if line.startswith("| fig45 |"))
    assert "protocol, 60 iterations, seeds 0-2" in row, row


def test_paired_gives_the_wobble_ratio_and_counts_wins_only_beyond_the_floor():
    from wgan_kernels.experiments import protocol_report as pr

    x = np.arange(1, 501, dtype=float)

    def run(method, seed, swing, w1):
        metrics = {"iteration": x, "critic_loss": swing * np.sin(2 * np.pi * x / 40),
                   "w1": np.where(x % 10 == 0, w1, np.nan)}
        return report.Run("swissroll", method, 5.0, seed, Path("."), "finished", {}, metrics)

    runs = [run("gp", 0, 0.5, 0.8), run("lp", 0, 0.01, 0.2),  # LP better by 0.6, far beyond the floor
            run("gp", 1, 0.02, 0.3), run("lp", 1, 0.01, 0.25)]  # 0.05 apart: a tie
    p = pr.paired(runs, "swissroll", 5.0, floor=0.13)
    assert p["seeds"] == [0, 1] and (p["lp_better"], p["gp_better"]) == (1, 0)
    np.testing.assert_allclose(p["w1_diff"], [-0.6, -0.05])
    np.testing.assert_allclose(p["wobble_ratio"], [50.0, 2.0], rtol=1e-6)


def test_protocol_report_extra_seed_levels_w2_and_init_sections(tmp_path, monkeypatch):
    """The sections the fig45 test leaves out: the lambda-10 level sets of the extra seeds (each
    row drawn from its own seed's files), the W2 table beside the p=1 quotient runs with its level
    sets, and the initialisation table's untrained-W1 column."""
    from wgan_kernels.experiments import protocol_report as pr

    trainer = _fake_trainer(tmp_path)
    quiet = dict(jobs=2, trainer=trainer, log=lambda *_: None)

    def stage(folder, **settings):
        config = dataclasses.replace(TINY, iterations=10, eval_every=5, **settings)
        sweep.run_sweep(config, tmp_path / folder, **quiet)

    stage("levels", methods=("gp", "lp"), lambdas=(10.0,), seeds=(0, 1, 2))
    stage("pairs", methods=("quotient",), seeds=(0, 1))
    stage("w2", methods=("quotient",), seeds=(0, 1), pair_p=2.0)
    stage("init_torch", methods=("gp", "lp"), seeds=(0, 1))
    stage("init_glorot", methods=("gp", "lp"), seeds=(0, 1), init="glorot")
    assert any("--init glorot" in call for call in _calls(tmp_path / "init_glorot"))
    assert any("--pair-p 2" in call for call in _calls(tmp_path / "w2"))

    drawn = []
    real_draw = report._draw_levels
    monkeypatch.setattr(report, "_draw_levels", lambda ax, path: (drawn.append(Path(path)), real_draw(ax, path)))
    text = pr.write_protocol_report(tmp_path, repeats=3).read_text()

    assert "levels_swissroll_lam10_seeds.png" in text and (tmp_path / "levels_swissroll_lam10_seeds.png").exists()
    seeds_drawn = {int(m.group(1)) for p in drawn for m in [re.search(r"seed(\d+)", str(p))] if m}
    assert {1, 2} <= seeds_drawn, seeds_drawn

    w2 = text.split("## Appendix D.5")[1].split("## ")[0]
    assert "levels_w2.png" in w2 and (tmp_path / "levels_w2.png").exists()
    row = next(line for line in w2.splitlines() if line.startswith("| swissroll"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] != "n/a" and cells[3] != "n/a", row  # p=2 and the p=1 quotient runs beside it

    init = text.split("## Does GP's failure depend on the initialisation?")[1]
    header, _, *rows = [line for line in init.splitlines() if line.startswith("|")]
    assert "untrained W1" in header
    assert [r.split("|")[1].strip() for r in rows] == ["torch", "glorot"]
    assert all(r.split("|")[2].strip().startswith("1.0") for r in rows), rows  # the fake's initial_w1 1.0
