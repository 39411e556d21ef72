"""The training loop: critic steps with a Lipschitz penalty from wgan_kernels, generator steps,
metrics, evaluation, plots and exact-resume checkpoints; optionally under torchrun (DDP)."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import signal
import sys
import time

import numpy as np
import torch

import wgan_kernels as wk
from wgan_kernels.penalties import CLIP, critic_penalty, gradient_norms

from . import checkpoint as ckpt
from . import evaluate
from .config import TrainConfig, changed_settings, given_settings, resolve, with_saved_settings
from .data import ToySampler, make_sampler
from .distributed import Dist, global_points
from .extras import require_train_extra
from .models import build_models
from .signals import StopOnSignal

METRIC_COLUMNS = ("iteration", "critic_loss", "penalty", "penalty_above", "penalty_below", "grad_norm_mean",
                  "grad_norm_max", "grad_norm_min", "generator_loss", "w1", "step_time", "critic_steps", "lr")


class Diverged(Exception):
    pass


def pick_device(choice: str, local_rank: int) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch.cuda.is_available() is False")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------
# files


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def truncate_metrics(path: str, last_iteration: int) -> None:
    """Keep the header and the rows up to last_iteration (rows written after the checkpoint
    that a resume repeats would otherwise appear twice)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("iteration", "").isdigit()
                and int(row["iteration"]) <= last_iteration]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(obj, handle, indent=2)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# the trainer


class Trainer:
    def __init__(self, config: TrainConfig):
        c = self.c = resolve(config)
        self.device = pick_device(c.device, int(os.environ.get("LOCAL_RANK", "0")))
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)  # before NCCL starts: one GPU per process
        self.dist = Dist(self.device.type)
        if c.threads:
            torch.set_num_threads(c.threads)
        if c.amp == "fp16" and self.device.type == "cpu":
            print("note: --amp fp16 on CPU is slow; bf16 is the CPU choice", file=sys.stderr)
        c.out = self.dist.broadcast(c.out)  # the default name has a time stamp; rank 0's wins
        self.out, self.plots = c.out, os.path.join(c.out, "plots")
        self.ckpt_path = os.path.join(self.out, ckpt.CHECKPOINT)
        self.metrics_path = os.path.join(self.out, "metrics.csv")
        self.summary_path = os.path.join(self.out, "summary.json")

        # seeds first: model initialisation draws from the global generators
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        random.seed(c.seed)
        self.sampler = make_sampler(c.data, c.data_path, c.seed, c.image_size)
        self.generator, self.critic = build_models(
            c.model, self.sampler.shape, hidden=c.hidden, layers=c.layers, latent_dim=c.latent_dim,
            channels=c.channels, critic_blocks=c.critic_blocks, critic_norm=c.critic_norm, init=c.init)
        self.latent_dim = self.generator.latent_dim
        self.channels_last = self.sampler.is_image and (
            c.channels_last == "on" or (c.channels_last == "auto" and self.device.type == "cuda"))
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        self.generator.to(self.device, memory_format=memory)
        self.critic.to(self.device, memory_format=memory)
        if self.dist.world > 1 and self.device.type == "cuda":
            self.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)
        # latent noise and penalty seeds: one CPU stream, identical on every rank
        self.noise = torch.Generator().manual_seed(c.seed + 1)
        self.opt_g, self.opt_c = self._optimizer(self.generator), self._optimizer(self.critic)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[c.amp]
        use_scaler = c.amp == "fp16"
        self.scaler_c = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self._eval_sets()

        self.iteration, self.critic_steps, self.elapsed, self.wall_before = 0, 0, 0.0, 0.0
        self.segment_start = time.perf_counter()
        self.initial_w1, self.last_w1, self.last_w1_at = None, None, None
        self.checkpoint_at = None  # iteration of the checkpoint on disk
        self._prepare_run_directory()
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.critic_ddp = DDP(self.critic, device_ids=ids)
            self.generator_ddp = DDP(self.generator, device_ids=ids)
        else:
            self.critic_ddp, self.generator_ddp = self.critic, self.generator

    # -- setup ---------------------------------------------------------------------------

    def _optimizer(self, module):
        c = self.c
        if c.optimizer == "adam":
            return torch.optim.Adam(module.parameters(), lr=c.lr, betas=c.betas)
        return torch.optim.RMSprop(module.parameters(), lr=c.lr)

    def _eval_sets(self):
        """A fixed real sample and fixed latent noise, so W1 curves compare like with like
        (their own seeds: evaluation never touches the training streams)."""
        c, n = self.c, self.c.eval_samples
        if isinstance(self.sampler, ToySampler):
            self.eval_real = ToySampler(c.data, c.seed + 1000).sample(n).numpy()
        else:
            images = self.sampler.images
            pick = np.random.RandomState(c.seed + 1000).randint(0, len(images), size=n)
            self.eval_real = images[torch.from_numpy(pick)].numpy()
        self.eval_z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(c.seed + 2000))

    def _prepare_run_directory(self):
        c, main = self.c, self.dist.main
        has_ckpt = os.path.exists(self.ckpt_path)
        if not c.resume and (has_ckpt or os.path.exists(self.metrics_path)):
            raise FileExistsError(f"run directory {self.out!r} already holds a run; pass --resume to continue it "
                                  "or choose another --out")
        if c.resume and has_ckpt:
            self._load_checkpoint()
        elif c.resume and main:
            print(f"--resume: no checkpoint in {self.out!r} yet, starting from the beginning", file=sys.stderr)
        self.dist.barrier()
        if main:
            os.makedirs(self.plots, exist_ok=True)
            truncate_metrics(self.metrics_path, self.iteration)
            if not os.path.exists(self.metrics_path):
                with open(self.metrics_path, "w", newline="") as handle:
                    csv.writer(handle).writerow(METRIC_COLUMNS)
            _write_json(os.path.join(self.out, "config.json"), self.c.to_dict())
            if os.path.exists(self.summary_path) and self.iteration < c.iterations:
                os.remove(self.summary_path)  # the run goes on: it is no longer finished
        self.dist.barrier()

    def _load_checkpoint(self):
        state = ckpt.load(self.ckpt_path, self.device)
        changed = changed_settings(state.get("config", {}), self.c.to_dict())
        if changed:
            raise ValueError(f"the checkpoint in {self.out!r} was written with other settings than its config.json: "
                             + "; ".join(changed))
        if int(state["iteration"]) > self.c.iterations:
            raise ValueError(f"--iterations {self.c.iterations} is below the {state['iteration']} iterations the run "
                             f"in {self.out!r} has done")
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_generator"])
        self.opt_c.load_state_dict(state["opt_critic"])
        self.scaler_g.load_state_dict(state.get("scaler_generator", {}) or {})
        self.scaler_c.load_state_dict(state.get("scaler_critic", {}) or {})
        ckpt.set_rng_state(state["rng"], self.noise, self.sampler, self.device)
        self.iteration, self.critic_steps = int(state["iteration"]), int(state["critic_steps"])
        self.checkpoint_at = self.iteration
        self.elapsed = float(state.get("elapsed", 0.0))
        self.wall_before = float(state.get("wall_time", 0.0))
        self.initial_w1, self.last_w1 = state.get("initial_w1"), state.get("last_w1")
        self.last_w1_at = state.get("last_w1_at")
        if self.dist.main:
            print(f"resumed {self.out!r} at iteration {self.iteration}", file=sys.stderr)

    def parameters_finite(self) -> bool:
        flags = torch.stack([p.isfinite().all() for m in (self.generator, self.critic) for p in m.parameters()])
        return self.dist.all_true(bool(flags.all()), self.device)

    def wall_time(self) -> float:
        """Seconds of wall time over all segments of a resumed run (setup, evaluation included)."""
        return self.wall_before + time.perf_counter() - self.segment_start

    def save_checkpoint(self):
        self.checkpoint_at = self.iteration
        if not self.dist.main:
            return
        state = {
            "iteration": self.iteration, "critic_steps": self.critic_steps, "elapsed": self.elapsed,
            "wall_time": self.wall_time(),
            "generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
            "opt_generator": self.opt_g.state_dict(), "opt_critic": self.opt_c.state_dict(),
            "scaler_generator": self.scaler_g.state_dict(), "scaler_critic": self.scaler_c.state_dict(),
            "rng": ckpt.rng_state(self.noise, self.sampler, self.device),
            "initial_w1": self.initial_w1, "last_w1": self.last_w1, "last_w1_at": self.last_w1_at,
            "config": self.c.to_dict(),
        }
        ckpt.save_atomic(state, self.ckpt_path)

    # -- one iteration ---------------------------------------------------------------------

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.noise)

    def critic_step(self, acc: dict, last: bool):
        """One critic update. Every rank draws the same global batch and trains on its rows."""
        c, d = self.c, self.dist
        rows = d.shard(c.batch_size)
        real_global = self._to_device(self.sampler.sample(c.batch_size))
        z = self._latent(c.batch_size)[rows]
        seed = int(torch.randint(0, 2**62, (), generator=self.noise))  # the penalty's points
        real = real_global[rows]
        with torch.no_grad(), self.autocast():
            fake = self.generator(z.to(self.device)).to(real.dtype)
        if self.channels_last:
            fake = fake.contiguous(memory_format=torch.channels_last)
        self.critic_steps += 1
        penalise = c.penalty != CLIP and (self.critic_steps - 1) % c.lazy_every == 0

        with self.autocast():
            out = self.critic_ddp(torch.cat([real, fake])).float()
        f_real, f_fake = out[: len(real)], out[len(real):]
        critic_loss = f_fake.mean() - f_real.mean()
        loss, penalty = critic_loss, None
        if penalise:
            points = None  # the method's own sampling; N ranks: the points one process would draw
            if d.world > 1 and c.penalty in wk.METHODS:
                points = global_points(wk.METHODS[c.penalty].sampling, real_global, real, fake, rows, seed)
            grad_scale = self.scaler_c.get_scale() if self.scaler_c.is_enabled() else None
            with self.autocast():
                penalty = critic_penalty(c.penalty, self.critic_ddp, real, fake, f_real, f_fake,
                                         weight=c.lam * c.lazy_every, seed=seed, points=points,
                                         grad_scale=grad_scale, pair_p=c.pair_p)
            loss = loss + penalty.loss

        self.opt_c.zero_grad(set_to_none=True)
        self.scaler_c.scale(loss).backward()
        self.scaler_c.step(self.opt_c)
        self.scaler_c.update()
        if c.penalty == CLIP:
            wk.clip_weights_(self.critic, c.clip_value)

        acc["critic_loss"].append(critic_loss.detach())
        if penalty is not None:  # metrics in units of lambda * term (lazy steps used lazy_every * lambda)
            acc["penalty"].append(penalty.loss.detach() / c.lazy_every)
            acc["above"].append(penalty.above * c.lam)
            acc["below"].append(penalty.below * c.lam)
        elif c.penalty == CLIP:
            acc["penalty"].append(torch.zeros((), device=self.device))
            acc["above"].append(torch.zeros((), device=self.device))
            acc["below"].append(torch.zeros((), device=self.device))
        norms = penalty.norms if penalty is not None else None
        if norms is None and last and not acc["norms"]:
            with self.autocast():
                norms = gradient_norms(self.critic, real, fake, seed=seed)
        if norms is not None:
            acc["norms"].append(torch.stack([norms.mean_norm, norms.max_norm, norms.min_norm]).float())

    def generator_step(self) -> torch.Tensor:
        c = self.c
        rows = self.dist.shard(c.gen_batch_size)
        z = self._latent(c.gen_batch_size)[rows].to(self.device)
        for p in self.critic.parameters():
            p.requires_grad_(False)
        with self.autocast():
            # the plain critic module: its parameters get no gradient here, DDP must not wait for one
            loss = -self.critic(self.generator_ddp(z)).float().mean()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        return loss.detach()

    def critic_steps_for(self, iteration: int) -> int:
        c = self.c
        if c.lp_schedule and iteration <= c.lp_schedule_iterations:
            return c.lp_schedule_steps
        return c.n_critic

    def train_iteration(self, iteration: int) -> dict:
        """n_critic critic steps and one generator step -> the metrics row (averaged over ranks)."""
        c = self.c
        lr = c.lr * (1.0 - (iteration - 1) / c.iterations) if c.lr_decay == "linear" else c.lr
        for opt in (self.opt_g, self.opt_c):
            for group in opt.param_groups:
                group["lr"] = lr
        acc = {"critic_loss": [], "penalty": [], "above": [], "below": [], "norms": []}
        n_critic = self.critic_steps_for(iteration)
        for step in range(n_critic):
            self.critic_step(acc, last=step == n_critic - 1)
        gen_loss = self.generator_step()
        if self.scaler_c.is_enabled():
            _drop_overflow_steps(acc)
        return self._metrics_row(iteration, acc, gen_loss, n_critic, lr)

    def _metrics_row(self, iteration, acc, gen_loss, n_critic, lr) -> dict:
        nan = torch.tensor(float("nan"), device=self.device)
        mean = lambda xs: torch.stack(xs).mean() if xs else nan  # noqa: E731
        norms = torch.stack(acc["norms"]) if acc["norms"] else torch.full((1, 3), float("nan"), device=self.device)
        means = torch.stack([mean(acc["critic_loss"]), mean(acc["penalty"]), mean(acc["above"]),
                             mean(acc["below"]), norms[:, 0].mean(), gen_loss.float()])
        maxima = torch.stack([norms[:, 1].max(), -norms[:, 2].min()])
        means, maxima = self.dist.reduce_metrics(means, maxima)
        m, mx = means.tolist(), maxima.tolist()
        row = {"iteration": iteration, "critic_loss": m[0], "penalty": m[1], "penalty_above": m[2],
               "penalty_below": m[3], "grad_norm_mean": m[4], "grad_norm_max": mx[0], "grad_norm_min": -mx[1],
               "generator_loss": m[5], "w1": None, "critic_steps": n_critic, "lr": lr}
        checked = [m[0], m[5]] + ([m[1]] if acc["penalty"] else [])
        if not all(math.isfinite(v) for v in checked):
            raise Diverged(f"non-finite loss at iteration {iteration}: critic loss {m[0]}, penalty {m[1]}, "
                           f"generator loss {m[5]}")
        return row

    # -- evaluation and records ------------------------------------------------------------

    @torch.no_grad()
    def generate_eval(self) -> np.ndarray:
        was_training = self.generator.training
        self.generator.eval()
        out = [self.generator(z.to(self.device)).float().cpu() for z in self.eval_z.split(500)]
        self.generator.train(was_training)
        return torch.cat(out).numpy()

    def evaluate_w1(self, iteration: int, fake=None) -> float:
        fake = self.generate_eval() if fake is None else fake
        self.last_w1, self.last_w1_at = evaluate.w1_assignment(self.eval_real, fake), iteration
        return self.last_w1

    def save_plots(self, iteration: int, fake=None) -> list:
        fake = self.generate_eval() if fake is None else fake
        if self.sampler.is_image:
            path = os.path.join(self.plots, f"samples_{iteration:06d}.png")
            return [evaluate.save_image_grid(path, fake[:64], f"generated samples, iteration {iteration}")]
        self.critic.eval()
        xs, ys, values = evaluate.critic_levels(self.critic, self.eval_real, fake, self.device)
        self.critic.train()
        stem = os.path.join(self.plots, f"levels_{iteration:06d}")
        return [evaluate.save_levels(stem, iteration, xs, ys, values, self.eval_real, fake)]

    def _start_records(self):
        """Rank 0, before the first iteration: the untrained generator's W1 estimate, its plot if
        asked for, and for images a grid of real samples (to check the data loading)."""
        fake = self.generate_eval()
        self.initial_w1 = self.evaluate_w1(0, fake)
        if 0 in self.c.plot_at:
            self.save_plots(0, fake)
        if self.sampler.is_image:
            evaluate.save_image_grid(os.path.join(self.plots, "real_samples.png"), self.eval_real[:64],
                                     "real samples (the training data as loaded, in [-1, 1])")

    def _record(self, row: dict, metrics, writer, bar) -> None:
        """Rank 0, after an iteration: W1, plots, the metrics row, TensorBoard, progress bar."""
        c, iteration = self.c, row["iteration"]
        last = iteration == c.iterations
        fake = None
        if iteration % c.eval_every == 0 or last:
            fake = self.generate_eval()
            row["w1"] = self.evaluate_w1(iteration, fake)
        plot = (last or iteration % c.sample_every == 0) if self.sampler.is_image else (last or iteration in c.plot_at)
        if plot:
            self.save_plots(iteration, fake)
        csv.writer(metrics).writerow([_fmt(row.get(k)) for k in METRIC_COLUMNS])
        metrics.flush()
        if writer is not None:
            for key, value in row.items():
                if key != "iteration" and value is not None and not (isinstance(value, float) and math.isnan(value)):
                    writer.add_scalar(key, value, iteration)
        bar.set_postfix(loss=f"{row['critic_loss']:.3g}", pen=f"{row['penalty']:.3g}",
                        gnorm=f"{row['grad_norm_mean']:.3g}",
                        w1=f"{self.last_w1:.3g}" if self.last_w1 is not None else "-", refresh=False)
        bar.update(1)

    # -- the run -------------------------------------------------------------------------

    def run(self) -> dict:
        c, main = self.c, self.dist.main
        if self.iteration >= c.iterations and os.path.exists(self.summary_path):
            with open(self.summary_path) as handle:
                summary = json.load(handle)
            if main:
                print(f"{self.out!r} already finished {self.iteration} iterations (status {summary.get('status')}); "
                      "a larger --iterations extends it")
            return summary
        if self.iteration == 0 and main:
            self._start_records()
        self.initial_w1 = self.dist.broadcast(self.initial_w1)

        from tqdm import tqdm

        writer = self._tensorboard()
        bar = tqdm(total=c.iterations, initial=self.iteration, disable=not (c.progress and main),
                   dynamic_ncols=True, desc="wgan-train", unit="it")
        status, message, stop = "finished", None, 0
        metrics = open(self.metrics_path, "a", newline="") if main else None
        try:
            with StopOnSignal(announce=main) as signals:
                while self.iteration < c.iterations:
                    iteration = self.iteration + 1
                    start = time.perf_counter()
                    try:
                        row = self.train_iteration(iteration)
                    except Diverged as error:
                        status, message = "diverged", str(error)
                        break
                    row["step_time"] = time.perf_counter() - start
                    self.iteration = iteration
                    self.elapsed += row["step_time"]
                    if main:
                        self._record(row, metrics, writer, bar)
                    stop = self.dist.max_over_ranks(signals.signum, self.device)
                    if iteration % c.checkpoint_every == 0 or iteration == c.iterations or stop:
                        if not self.parameters_finite():  # the last update blew up: keep the older checkpoint
                            status, message = "diverged", f"non-finite parameters after iteration {iteration}"
                            break
                        self.save_checkpoint()
                    if stop and iteration < c.iterations:
                        status, message = "interrupted", f"stopped by {signal.Signals(stop).name}"
                        break
                    if c.kill_at is not None and iteration >= c.kill_at and iteration < c.iterations:
                        return {"status": "killed", "iteration": iteration}
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
            if writer is not None:
                writer.close()
        self.dist.barrier()
        summary = {
            "status": status, "iterations": self.iteration, "final_w1": self.last_w1, "final_w1_at": self.last_w1_at,
            "initial_w1": self.initial_w1, "wall_time": self.wall_time(), "train_time": self.elapsed, "out": self.out,
            "data": c.data, "penalty": c.penalty, "lambda": c.lam, "seed": c.seed, "message": message,
            "world_size": self.dist.world, "checkpoint_iteration": self.checkpoint_at, "signal": stop or None,
        }
        if main:
            summary["metrics_plot"] = evaluate.plot_metrics(self.metrics_path, os.path.join(self.plots, "metrics.png"),
                                                            c.penalty, self.initial_w1)
            summary["plots"] = self.plots
            _write_json(self.summary_path, summary)
            self._report(summary)
        return summary

    def _tensorboard(self):
        if not (self.c.tensorboard and self.dist.main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed: the CSV is the record
            return None
        return SummaryWriter(os.path.join(self.out, "tensorboard"))

    def _report(self, s: dict) -> None:
        if s["status"] == "diverged":
            kept = (f"the last good checkpoint (iteration {s['checkpoint_iteration']}) is kept in {self.ckpt_path}"
                    if s["checkpoint_iteration"] is not None else
                    f"no checkpoint was written (the first was due at iteration {self.c.checkpoint_every})")
            print(f"DIVERGED: {s['message']}. Stopped; {kept}", file=sys.stderr)
        elif s["status"] == "interrupted":
            print(f"interrupted ({s['message']}) after iteration {s['iterations']}, checkpoint saved; continue with: "
                  f"wgan-train --out {self.out} --resume", file=sys.stderr)
        print(f"run directory: {self.out}")
        files = os.listdir(self.plots) if os.path.isdir(self.plots) else []
        kinds = [label for prefix, label in (("levels_", "critic level sets levels_*.png/.npz"),
                                             ("samples_", "generated samples samples_*.png"),
                                             ("real_samples", "real_samples.png"), ("metrics", "metrics.png"))
                 if any(f.startswith(prefix) for f in files)]
        if kinds:
            print(f"plots: {self.plots} ({', '.join(kinds)})")
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        if s["status"] == "finished":
            last = f"final {fmt(s['final_w1'])} after {s['iterations']} iterations"
        elif s["final_w1_at"]:
            last = f"{fmt(s['final_w1'])} at iteration {s['final_w1_at']} (the last estimate)"
        else:
            last = "no estimate after training started"
        print(f"W1 estimate (assignment, {self.c.eval_samples} real vs {self.c.eval_samples} generated): "
              f"untrained generator {fmt(s['initial_w1'])} -> {last}")
        print(f"time: {s['wall_time']:.1f} s wall, {s['train_time']:.1f} s in training steps")

    def close(self):
        self.dist.close()


def _drop_overflow_steps(acc: dict) -> None:
    """fp16: a step whose scaled critic gradient overflowed gives a non-finite penalty; the
    GradScaler skips it and lowers the scale, so it is no divergence and no data point."""
    if not acc["penalty"]:
        return
    finite = torch.stack(acc["penalty"]).isfinite().tolist()
    for key in ("penalty", "above", "below"):
        acc[key] = [v for v, ok in zip(acc[key], finite) if ok]
    acc["norms"] = [v for v in acc["norms"] if bool(v.isfinite().all())]


def run(config: TrainConfig | dict) -> dict:
    """Trains per config (a TrainConfig, or a dict of its fields; 'lambda' may stand for 'lam')
    and returns the summary dict (the content of summary.json). With resume=True the settings
    come from the run directory's config.json, with the given ones on top (config.py:
    with_saved_settings)."""
    require_train_extra()
    config = with_saved_settings(given_settings(config))
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(config)
        try:
            return trainer.run()
        finally:
            trainer.close()
    finally:
        torch.set_num_threads(threads)  # --threads must not leak into the caller's process


def run_from_args(argv=None) -> dict:
    from .config import parse_given

    return run(parse_given(argv))
