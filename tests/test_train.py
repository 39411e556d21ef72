"""Short runs of the trainer (wgan_kernels.train): every data set, model and penalty family,
exact resume (after kill -9, SIGINT, SIGTERM), 2-process DDP == 1 process, AMP bf16 on CPU, and
clear errors. Skipped without the `train` extra (tests/test_install.py checks the message)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from wgan_kernels.train import METRIC_COLUMNS, TrainConfig, run, run_from_args
from wgan_kernels.train.__main__ import main
from wgan_kernels.train.checkpoint import load
from wgan_kernels.train.extras import TRAIN_EXTRA

MISSING = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,  # training runs; still part of the default `pytest tests`
    pytest.mark.skipif(bool(MISSING), reason=f"needs the train extra ({', '.join(MISSING)} missing): "
                       "pip install --no-build-isolation -e '.[train]'"),
]

# a two-process test runs in ~5 s; a hang must fail it, not run into CI's time limit
DDP_TIMEOUT_S = 180
TINY_TOY = dict(iterations=2, n_critic=2, lp_schedule=False, batch_size=32, hidden=32, eval_samples=40,
                eval_every=1, plot_at=[1], progress=False, tensorboard=False, threads=1)
TINY_IMAGE = dict(iterations=2, n_critic=1, batch_size=8, gen_batch_size=8, channels=8, critic_blocks=1,
                  latent_dim=16, eval_samples=20, eval_every=1, sample_every=1, progress=False,
                  tensorboard=False, threads=1)


def read_metrics(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def read_summary(out):
    with open(os.path.join(out, "summary.json")) as handle:
        return json.load(handle)


def params(out):
    state = load(os.path.join(out, "checkpoint.pt"), torch.device("cpu"))
    return {f"{part}.{k}": v for part in ("generator", "critic") for k, v in state[part].items()}


def check_run(out, iterations):
    rows = read_metrics(out)
    assert [int(r["iteration"]) for r in rows] == list(range(1, iterations + 1))
    assert set(METRIC_COLUMNS) <= set(rows[0])
    for row in rows:
        for key in ("critic_loss", "generator_loss", "grad_norm_mean", "grad_norm_max", "grad_norm_min", "step_time"):
            assert np.isfinite(float(row[key])), (key, row)
    summary = read_summary(out)
    assert summary["status"] == "finished" and summary["iterations"] == iterations
    assert np.isfinite(summary["final_w1"]) and np.isfinite(summary["initial_w1"])
    assert os.path.exists(os.path.join(out, "config.json"))
    assert os.path.exists(os.path.join(out, "plots", "metrics.png"))
    return rows, summary


# ---------------------------------------------------------------------------------------
# data sets, models, penalties


@pytest.mark.parametrize("data", ["8gaussians", "25gaussians", "swissroll"])
def test_toy_sets(tmp_path, data):
    out = str(tmp_path / data)
    run(TrainConfig(data=data, out=out, **TINY_TOY))
    rows, _ = check_run(out, 2)
    assert rows[0]["w1"] != "" and float(rows[0]["penalty"]) >= 0
    for it in (1, 2):  # --plot-at 1 and the last iteration
        assert os.path.exists(os.path.join(out, "plots", f"levels_{it:06d}.png"))
        with np.load(os.path.join(out, "plots", f"levels_{it:06d}.npz")) as levels:
            xs, ys, values = levels["xs"], levels["ys"], levels["values"]
            assert xs.ndim == ys.ndim == 1 and values.shape == (len(ys), len(xs))
            assert levels["real"].shape == levels["fake"].shape == (40, 2)


@pytest.mark.parametrize("penalty", ["gp", "lp", "dragan", "r1", "r2", "quotient", "transport", "clip"])
def test_penalties(tmp_path, penalty):
    out = str(tmp_path / penalty)
    run(TrainConfig(penalty=penalty, lam=5.0, out=out, **TINY_TOY))
    rows, _ = check_run(out, 2)
    for row in rows:
        penalty_value, above, below = (float(row[k]) for k in ("penalty", "penalty_above", "penalty_below"))
        assert penalty_value >= 0 and above >= 0 and below >= 0
        if penalty in ("gp", "dragan"):
            assert penalty_value == pytest.approx(above + below, rel=1e-4, abs=1e-6)
        if penalty in ("lp", "r1", "r2", "quotient", "transport"):
            assert penalty_value == pytest.approx(above, rel=1e-4, abs=1e-6)
        if penalty == "clip":
            assert penalty_value == 0
    if penalty == "clip":
        assert all(v.abs().max() <= 0.01 + 1e-7 for k, v in params(out).items() if k.startswith("critic."))


def test_lazy_regularisation_and_lp_schedule(tmp_path):
    out = str(tmp_path / "lazy")
    config = dict(TINY_TOY, lp_schedule=True, lp_schedule_iterations=1, lp_schedule_steps=3, iterations=3)
    run(TrainConfig(penalty="gp", lazy_every=2, optimizer="adam", lr_decay="linear", out=out, **config))
    rows, _ = check_run(out, 3)
    assert [int(r["critic_steps"]) for r in rows] == [3, 2, 2]
    assert float(rows[0]["lr"]) > float(rows[1]["lr"]) > float(rows[2]["lr"]) > 0  # linear decay to 0


def test_digits_resnet(tmp_path):
    out = str(tmp_path / "digits")
    run(TrainConfig(data="digits", out=out, **TINY_IMAGE))
    rows, summary = check_run(out, 2)
    assert rows[-1]["w1"] != ""
    assert os.path.exists(os.path.join(out, "plots", "samples_000002.png"))
    assert os.path.exists(os.path.join(out, "plots", "real_samples.png"))  # once, to check the data loading
    state = load(os.path.join(out, "checkpoint.pt"), torch.device("cpu"))
    assert state["config"]["model"] == "resnet"


def test_resnet_layernorm_critic_and_16px(tmp_path):
    out = str(tmp_path / "ln")
    run(TrainConfig(data="digits", image_size=16, critic_norm="layernorm", penalty="gp", out=out, **TINY_IMAGE))
    check_run(out, 2)


def _fake_cifar(directory, per_batch=6):
    os.makedirs(directory)
    rng = np.random.RandomState(0)
    for i in range(1, 6):
        entry = {b"data": rng.randint(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"labels": list(rng.randint(0, 10, size=per_batch))}
        with open(os.path.join(directory, f"data_batch_{i}"), "wb") as handle:
            pickle.dump(entry, handle)


def test_cifar10_pickles(tmp_path):
    _fake_cifar(tmp_path / "cifar")
    out = str(tmp_path / "run")
    config = dict(TINY_IMAGE, iterations=1)
    run(TrainConfig(data="cifar10", data_path=str(tmp_path / "cifar"), penalty="r1", out=out, **config))
    check_run(out, 1)
    with open(os.path.join(out, "plots", "samples_000001.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_npy_and_npz_arrays(tmp_path):
    gray = np.random.RandomState(0).randint(0, 256, size=(10, 16, 16), dtype=np.uint8)  # (N, H, W) 0..255
    np.save(tmp_path / "gray.npy", gray)
    colour = np.random.RandomState(1).rand(10, 12, 12, 3).astype(np.float32)  # NHWC in [0, 1], 12 -> 16
    np.savez(tmp_path / "colour.npz", images=colour)
    for name in ("gray.npy", "colour.npz"):
        out = str(tmp_path / f"run_{name}")
        run(TrainConfig(data="npy", data_path=str(tmp_path / name), penalty="quotient", out=out,
                        **dict(TINY_IMAGE, iterations=1)))
        check_run(out, 1)


def test_amp_bf16_cpu(tmp_path):
    out = str(tmp_path / "bf16")
    run(TrainConfig(amp="bf16", penalty="gp", out=out, **TINY_TOY))
    check_run(out, 2)
    out = str(tmp_path / "bf16img")
    run(TrainConfig(data="digits", amp="bf16", out=out, **dict(TINY_IMAGE, iterations=1)))
    check_run(out, 1)


# ---------------------------------------------------------------------------------------
# checkpoints, resume, divergence


def test_resume_after_kill_is_exact(tmp_path):
    config = dict(TINY_TOY, iterations=6, checkpoint_every=2, lr=1e-3, eval_every=2, plot_at=[])
    straight = str(tmp_path / "straight")
    run(TrainConfig(out=straight, **config))
    killed = str(tmp_path / "killed")
    result = run(TrainConfig(out=killed, kill_at=5, **config))  # dies after row 5, checkpoint at 4
    assert result["status"] == "killed" and not os.path.exists(os.path.join(killed, "summary.json"))
    assert len(read_metrics(killed)) == 5
    assert load(os.path.join(killed, "checkpoint.pt"), torch.device("cpu"))["iteration"] == 4
    run(TrainConfig(out=killed, resume=True, **config))
    rows, summary = check_run(killed, 6)  # no duplicated rows
    a, b = params(straight), params(killed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert summary["final_w1"] == read_summary(straight)["final_w1"]
    assert [r["w1"] for r in rows] == [r["w1"] for r in read_metrics(straight)]
    # resuming a finished run is a no-op
    assert run(TrainConfig(out=killed, resume=True, **config))["status"] == "finished"


CLI_RUN = ["--iterations", "16", "--hidden", "32", "--batch-size", "32", "--n-critic", "2", "--no-lp-schedule",
           "--checkpoint-every", "3", "--eval-every", "100", "--eval-samples", "20", "--plot-at", "",
           "--no-progress", "--threads", "1", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def straight_cli_run(tmp_path_factory):
    """CLI_RUN without interruption: the parameters every interrupted and resumed run must end with."""
    out = str(tmp_path_factory.mktemp("straight") / "run")
    assert main([*CLI_RUN, "--out", out]) == 0
    return params(out)


def start_cli_run(out):
    """CLI_RUN in a subprocess; returns once its first iteration is in metrics.csv."""
    cmd = [sys.executable, "-m", "wgan_kernels.train", *CLI_RUN, "--out", out]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if os.path.exists(os.path.join(out, "metrics.csv")) and len(read_metrics(out)) >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    return proc


def test_resume_after_sigkill_subprocess(tmp_path, straight_cli_run):
    """A real kill -9 at an arbitrary moment: `--out DIR --resume` alone (settings from the run's
    config.json) ends with the parameters of an uninterrupted run."""
    out = str(tmp_path / "run")
    proc = start_cli_run(out)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(out, "checkpoint.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    assert main(["--out", out, "--resume"]) == 0
    assert [int(r["iteration"]) for r in read_metrics(out)] == list(range(1, 17))
    for key, value in straight_cli_run.items():
        torch.testing.assert_close(params(out)[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_checkpoints_the_iteration_in_progress(tmp_path, straight_cli_run, sig):
    """Ctrl-C / SIGTERM: the iteration in progress finishes and is checkpointed (no iteration
    lost), exit status 128 + signal; the resumed run equals an uninterrupted one."""
    out = str(tmp_path / "run")
    proc = start_cli_run(out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "--resume" in err and sig.name in err
    done = load(os.path.join(out, "checkpoint.pt"), torch.device("cpu"))["iteration"]
    assert 1 <= done < 16 and [int(r["iteration"]) for r in read_metrics(out)] == list(range(1, done + 1))
    summary = read_summary(out)
    assert summary["status"] == "interrupted" and summary["iterations"] == done
    assert main(["--out", out, "--resume", "--no-progress"]) == 0
    assert read_summary(out)["status"] == "finished"
    for key, value in straight_cli_run.items():
        torch.testing.assert_close(params(out)[key], value, rtol=0, atol=0, msg=key)


def test_resume_takes_the_runs_settings_and_extends_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    config = dict(TINY_TOY, seed=3, lr=1e-3, penalty="gp", lam=2.0)
    run(TrainConfig(out=out, **config))
    # only --out and --resume: the finished run is reported, not retrained
    assert main(["--out", out, "--resume"]) == 0
    assert "already finished 2 iterations" in capsys.readouterr().out
    # a larger --iterations extends it with the run's own settings
    assert main(["--out", out, "--resume", "--iterations", "3", "--no-progress"]) == 0
    rows, summary = check_run(out, 3)
    with open(os.path.join(out, "config.json")) as handle:
        saved = json.load(handle)
    assert (saved["seed"], saved["penalty"], saved["lam"], saved["hidden"], saved["iterations"]) == (3, "gp", 2.0, 32, 3)
    straight = str(tmp_path / "straight")
    run(TrainConfig(out=straight, **dict(config, iterations=3)))
    for key, value in params(straight).items():  # extending is resuming: constant lr, same steps
        torch.testing.assert_close(params(out)[key], value, rtol=0, atol=0, msg=key)
    # from Python: a dict names the given settings
    assert run({"out": out, "resume": True, "iterations": 4, "progress": False})["iterations"] == 4
    # a flag that would change the run is refused, naming it; fewer iterations than done too
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", out, "--resume", "--lambda", "5"])
    assert exit_info.value.code == 2 and "--lambda: 2.0 -> 5.0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--iterations 1 is below"):
        run({"out": out, "resume": True, "iterations": 1})


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    out = str(tmp_path / "run")
    run(TrainConfig(out=out, **TINY_TOY))
    with open(os.path.join(out, "checkpoint.pt"), "wb") as handle:
        handle.write(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupt"):
        run(TrainConfig(out=out, resume=True, **dict(TINY_TOY, iterations=3)))
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", out, "--resume", "--hidden", "32", "--no-progress"])
    assert exit_info.value.code == 2 and "checkpoint.pt" in capsys.readouterr().err


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    summary = run(TrainConfig(out=out, penalty="gp", lam=1e30, lr=1e30, optimizer="adam", checkpoint_every=1,
                              **dict(TINY_TOY, iterations=20)))
    assert summary["status"] == "diverged" and summary["iterations"] < 20
    assert read_summary(out)["status"] == "diverged"
    assert "DIVERGED" in capsys.readouterr().err
    if summary["iterations"] > 0:
        state = params(out)
        assert all(torch.isfinite(v).all() for v in state.values())
        assert load(os.path.join(out, "checkpoint.pt"), torch.device("cpu"))["iteration"] <= summary["iterations"]


def test_divergence_before_the_first_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    summary = run(TrainConfig(out=out, penalty="gp", lam=1e30, lr=1e30, optimizer="adam", checkpoint_every=50,
                              **dict(TINY_TOY, iterations=20, plot_at=[])))
    assert summary["status"] == "diverged" and summary["checkpoint_iteration"] is None
    assert not os.path.exists(os.path.join(out, "checkpoint.pt"))
    captured = capsys.readouterr()
    assert "no checkpoint was written" in captured.err and "checkpoint.pt" not in captured.err
    plotted = os.listdir(os.path.join(out, "plots"))
    assert ("plots:" in captured.out) == bool(plotted)  # no plots line for an empty folder


def test_existing_run_directory_needs_resume(tmp_path):
    out = str(tmp_path / "run")
    run(TrainConfig(out=out, **TINY_TOY))
    with pytest.raises(FileExistsError, match="--resume"):
        run(TrainConfig(out=out, **TINY_TOY))
    with pytest.raises(ValueError, match="differ"):
        run(TrainConfig(out=out, resume=True, **dict(TINY_TOY, iterations=3, hidden=64)))


# ---------------------------------------------------------------------------------------
# distributed


# two-sided penalties, so every point counts: interpolates by row_offset, perturbations of the global batch
@pytest.mark.parametrize("penalty", ["gp", "dragan"])
def test_two_processes_match_one_process(tmp_path, penalty):
    from wgan_kernels.train.distributed import launch_local

    config = dict(TINY_TOY, iterations=3, lr=1e-3, eval_every=10, plot_at=[], checkpoint_every=10)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    run(TrainConfig(out=one, penalty=penalty, **config))
    launch_local(TrainConfig(out=two, penalty=penalty, **config), world_size=2, timeout=DDP_TIMEOUT_S)
    a, b = params(one), params(two)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)
    assert read_summary(two)["world_size"] == 2
    # the runs moved the parameters well beyond the tolerance (not two copies of the initialisation)
    torch.manual_seed(0)
    from wgan_kernels.train.models import MLPCritic

    init = MLPCritic(2, 32).state_dict()
    assert max((a[f"critic.{k}"] - v).abs().max().item() for k, v in init.items()) > 1e-3
    rows_one, rows_two = read_metrics(one), read_metrics(two)
    for r1, r2 in zip(rows_one, rows_two):
        assert float(r1["critic_loss"]) == pytest.approx(float(r2["critic_loss"]), rel=1e-3, abs=1e-6)


def test_a_stuck_distributed_run_is_stopped_with_an_error(tmp_path, capfd):
    """launch_local's timeout turns a run that outlasts it into an error within a bounded time
    (a rank that hangs must fail the caller, not hold it forever), with the ranks' stacks printed."""
    from torch.multiprocessing import ProcessExitedException

    from wgan_kernels.train.distributed import launch_local

    config = dict(TINY_TOY, iterations=100_000, eval_every=100_000, plot_at=[], checkpoint_every=100_000)
    start = time.monotonic()
    with pytest.raises((ProcessExitedException, TimeoutError)):
        launch_local(TrainConfig(out=str(tmp_path / "stuck"), **config), world_size=2, timeout=3)
    assert time.monotonic() - start < 3 + 30 + 30  # the ranks' watchdog, the launcher's, the kill
    assert "Timeout" in capfd.readouterr().err  # faulthandler's "Timeout (0:00:03)!" and a stack


# ---------------------------------------------------------------------------------------
# command line and errors


def test_cli_short_run_prints_results(tmp_path, capsys):
    out = str(tmp_path / "cli")
    code = main(["--data", "8gaussians", "--iterations", "2", "--hidden", "32", "--batch-size", "32",
                 "--n-critic", "1", "--no-lp-schedule", "--eval-samples", "30", "--no-progress", "--out", out])
    assert code == 0
    printed = capsys.readouterr().out
    assert "untrained generator" in printed and "final" in printed and os.path.join(out, "plots") in printed
    with open(os.path.join(out, "config.json")) as handle:
        config = json.load(handle)
    assert config["optimizer"] == "rmsprop" and config["lr"] == 5e-5 and config["n_critic"] == 1
    assert config["hidden"] == 32 and config["batch_size"] == 32 and config["lp_schedule"] is False
    summary = run_from_args(["--iterations", "1", "--hidden", "16", "--batch-size", "16", "--n-critic", "1",
                             "--no-lp-schedule", "--eval-samples", "20", "--no-progress", "--out", out + "2"])
    assert summary["status"] == "finished" and summary["iterations"] == 1


def test_defaults_follow_the_papers():
    from wgan_kernels.train import parse_args, resolve

    toy = resolve(parse_args([]))
    assert (toy.data, toy.penalty, toy.lam, toy.model, toy.hidden, toy.optimizer, toy.lr, toy.batch_size,
            toy.n_critic, toy.lp_schedule, toy.eval_samples) == (
        "swissroll", "lp", 10.0, "mlp", 512, "rmsprop", 5e-5, 256, 10, True, 500)
    images = resolve(parse_args(["--data", "digits"]))
    assert (images.model, images.optimizer, images.lr, images.betas, images.lr_decay, images.n_critic,
            images.batch_size, images.gen_batch_size, images.channels, images.lp_schedule) == (
        "resnet", "adam", 2e-4, (0.0, 0.9), "linear", 5, 64, 128, 128, False)


def test_help_documents_every_flag_once():
    result = subprocess.run([sys.executable, "-m", "wgan_kernels.train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    from wgan_kernels.train.config import build_parser

    parser = build_parser()
    for action in parser._actions:
        if action.option_strings and action.help != "==SUPPRESS==":
            assert action.help, action.option_strings
    # one entry per flag: its text up to the next flag; no default stated twice
    entries = result.stdout.split("\n  --")[1:]
    assert len(entries) >= 40
    for entry in entries:
        assert entry.count("default") <= 1, entry
    no_progress = next(e for e in entries if e.startswith("no-progress"))
    assert "hide" in no_progress and "shown by default" in no_progress
    assert "'images', 'x', 'data'" in " ".join(result.stdout.split())  # the .npz key rule


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "cifar10"], "--data-path"),
        (["--data", "cifar10", "--data-path", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["--data", "npy", "--data-path", "/nonexistent/x.npy"], "/nonexistent/x.npy"),
        (["--lambda", "-1"], "--lambda"),
        (["--lambda", "inf"], "--lambda"),
        (["--lambda", "nan"], "--lambda"),
        (["--seed", "-1"], "--seed"),
        (["--threads", "-3"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--lr", "inf"], "--lr"),
        (["--iterations", "0"], "--iterations"),
        (["--data", "swissroll", "--model", "resnet"], "--model mlp"),
        (["--data", "digits", "--model", "mlp"], "--model resnet"),
        (["--resume"], "--out"),
        (["--data", "digits", "--critic-norm", "batchnorm"], "per-sample"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--lr", "0"], "cuda" if not torch.cuda.is_available() else "--lr"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--no-progress", "--out", str(tmp_path / "x")] if "--resume" not in argv else argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_choice_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["--penalty", "nope"])
    assert "--penalty" in capsys.readouterr().err


def test_malformed_data_files(tmp_path):
    bad = tmp_path / "cifar"
    os.makedirs(bad)
    (bad / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="malformed"):
        run(TrainConfig(data="cifar10", data_path=str(bad), out=str(tmp_path / "a"), **TINY_IMAGE))
    empty = tmp_path / "empty"
    os.makedirs(empty)
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        run(TrainConfig(data="cifar10", data_path=str(empty), out=str(tmp_path / "b"), **TINY_IMAGE))
    np.save(tmp_path / "flat.npy", np.zeros((5, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="flat.npy"):
        run(TrainConfig(data="npy", data_path=str(tmp_path / "flat.npy"), out=str(tmp_path / "c"), **TINY_IMAGE))
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(ValueError, match="text.npy"):
        run(TrainConfig(data="npy", data_path=str(tmp_path / "text.npy"), out=str(tmp_path / "d"), **TINY_IMAGE))


def test_glorot_init_of_the_mlps_and_refused_for_resnet():
    from wgan_kernels.train.models import build_models

    kwargs = dict(hidden=64, layers=3, latent_dim=None, channels=8, critic_blocks=1, critic_norm="none")
    generator, critic = build_models("mlp", (2,), init="glorot", **kwargs)
    for net in (generator, critic):
        for layer in net.net:
            if isinstance(layer, torch.nn.Linear):
                fan_out, fan_in = layer.weight.shape
                bound = (6 / (fan_in + fan_out)) ** 0.5
                assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
                assert torch.count_nonzero(layer.bias) == 0
    _, default = build_models("mlp", (2,), **kwargs)
    assert torch.count_nonzero(default.net[0].bias) > 0  # PyTorch's default draws the biases too
    with pytest.raises(ValueError, match="--init"):
        build_models("resnet", (3, 8, 8), init="glorot", **kwargs)


@pytest.mark.parametrize("given,expected", [({}, "3000 None"), ({"OMP_WAIT_POLICY": "PASSIVE"}, "None PASSIVE"),
                                            ({"GOMP_SPINCOUNT": "5"}, "5 None")])
def test_wgan_train_sets_a_short_openmp_spin_unless_given(given, expected):
    """scripts/wgan-train sets GOMP_SPINCOUNT before torch loads, and keeps the user's settings."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "wgan-train")
    code = (f"import os, runpy, sys\nsys.argv = ['wgan-train', '--help']\n"
            f"try:\n    runpy.run_path({script!r})\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")} | given
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected
