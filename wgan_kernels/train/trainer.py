"""The training loop: critic steps with a Lipschitz penalty from wgan_kernels, generator steps,
metrics, evaluation, plots and exact-resume checkpoints; optionally under torchrun (DDP)."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

import wgan_kernels as wk

from . import checkpoint as ckpt
from . import evaluate
from .config import GRADIENT_PENALTIES, PAIR_PENALTIES, TRAJECTORY_FIELDS, TrainConfig, resolve
from .data import ToySampler, make_sampler
from .models import build_models

METRIC_COLUMNS = ("iteration", "critic_loss", "penalty", "penalty_above", "penalty_below", "grad_norm_mean",
                  "grad_norm_max", "grad_norm_min", "generator_loss", "w1", "step_time", "critic_steps", "lr")
# points of these methods are drawn from the global batch (so that N processes match 1 process)
GLOBAL_SAMPLING = {"gp": "interpolate", "lp": "interpolate", "dragan": "perturb_real"}


class Diverged(Exception):
    pass


# ---------------------------------------------------------------------------------------
# distributed helpers


class Dist:
    """rank / world size from torchrun's environment; world 1 when not distributed."""

    def __init__(self, device_kind: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous rows of a global batch of n."""
        if n % self.world:
            raise ValueError(f"the global batch {n} must be divisible by the number of processes {self.world}")
        size = n // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def broadcast(self, obj):
        if self.world == 1:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def reduce_metrics(self, means: torch.Tensor, maxima: torch.Tensor):
        if self.world > 1:
            dist.all_reduce(means, op=dist.ReduceOp.SUM)
            means /= self.world
            dist.all_reduce(maxima, op=dist.ReduceOp.MAX)
        return means, maxima

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.owns_group:
            dist.destroy_process_group()


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

        # seeds first: model initialisation draws from the global generators
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        random.seed(c.seed)
        self.sampler = make_sampler(c.data, c.data_path, c.seed, c.image_size)
        self.data_shape = self.sampler.shape
        self.generator, self.critic = build_models(
            c.model, self.data_shape, hidden=c.hidden, layers=c.layers, latent_dim=c.latent_dim,
            channels=c.channels, critic_blocks=c.critic_blocks, critic_norm=c.critic_norm)
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
        self.initial_w1, self.last_w1 = None, None
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
            summary = os.path.join(self.out, "summary.json")
            if os.path.exists(summary) and self.iteration < c.iterations:
                os.remove(summary)  # the run goes on: it is no longer finished
        self.dist.barrier()

    def _load_checkpoint(self):
        state = ckpt.load(self.ckpt_path, self.device)
        saved = state.get("config", {})
        current = self.c.to_dict()
        changed = [f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in TRAJECTORY_FIELDS
                   if k in saved and saved[k] != current[k]]
        if changed:
            raise ValueError(f"--resume with settings that differ from the run in {self.out!r}: " + "; ".join(changed))
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_generator"])
        self.opt_c.load_state_dict(state["opt_critic"])
        self.scaler_g.load_state_dict(state.get("scaler_generator", {}) or {})
        self.scaler_c.load_state_dict(state.get("scaler_critic", {}) or {})
        ckpt.set_rng_state(state["rng"], self.noise, self.sampler, self.device)
        self.iteration, self.critic_steps = int(state["iteration"]), int(state["critic_steps"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.wall_before = float(state.get("wall_time", 0.0))
        self.initial_w1, self.last_w1 = state.get("initial_w1"), state.get("last_w1")
        if self.dist.main:
            print(f"resumed {self.out!r} at iteration {self.iteration}", file=sys.stderr)

    def parameters_finite(self) -> bool:
        flags = torch.stack([p.isfinite().all() for m in (self.generator, self.critic) for p in m.parameters()])
        ok = flags.all().float()
        if self.dist.world > 1:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item())

    def wall_time(self) -> float:
        """Seconds of wall time over all segments of a resumed run (setup, evaluation included)."""
        return self.wall_before + time.perf_counter() - self.segment_start

    def save_checkpoint(self):
        if not self.dist.main:
            return
        state = {
            "iteration": self.iteration, "critic_steps": self.critic_steps, "elapsed": self.elapsed,
            "wall_time": self.wall_time(),
            "generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
            "opt_generator": self.opt_g.state_dict(), "opt_critic": self.opt_c.state_dict(),
            "scaler_generator": self.scaler_g.state_dict(), "scaler_critic": self.scaler_c.state_dict(),
            "rng": ckpt.rng_state(self.noise, self.sampler, self.device),
            "initial_w1": self.initial_w1, "last_w1": self.last_w1, "config": self.c.to_dict(),
        }
        ckpt.save_atomic(state, self.ckpt_path)

    # -- one step ------------------------------------------------------------------------

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.noise)

    def _draw_seed(self) -> int:
        return int(torch.randint(0, 2**62, (), generator=self.noise))

    def _penalty_points(self, real_global, real, fake, rows, seed):
        """The method's sample points for this rank, drawn on the global batch (the Philox
        stream of wk.interpolate / wk.perturb is indexed by row), so N ranks see the rows that
        1 process would."""
        if GLOBAL_SAMPLING[self.c.penalty] == "perturb_real":
            return wk.perturb(real_global, seed=seed)[rows]
        fake_global = torch.zeros_like(real_global)
        fake_global[rows] = fake
        return wk.interpolate(real_global, fake_global, seed=seed)[rows]

    def critic_step(self, acc: dict, last: bool):
        c, d = self.c, self.dist
        rows = d.shard(c.batch_size)
        real_global = self._to_device(self.sampler.sample(c.batch_size))
        z = self._latent(c.batch_size)[rows]
        seed = self._draw_seed()
        real = real_global[rows]
        with torch.no_grad(), self.autocast():
            fake = self.generator(z.to(self.device)).to(real.dtype)
        if self.channels_last:
            fake = fake.contiguous(memory_format=torch.channels_last)
        self.critic_steps += 1
        lazy = c.lazy_every
        apply_penalty = c.penalty != "clip" and (self.critic_steps - 1) % lazy == 0
        weight = c.lam * lazy

        with self.autocast():
            out = self.critic_ddp(torch.cat([real, fake])).float()
        f_real, f_fake = out[: len(real)], out[len(real):]
        critic_loss = f_fake.mean() - f_real.mean()
        loss = critic_loss
        stats = None
        if apply_penalty and c.penalty in GRADIENT_PENALTIES:
            grad_scale = self.scaler_c.get_scale() if self.scaler_c.is_enabled() else None
            with self.autocast():
                if d.world > 1 and c.penalty in GLOBAL_SAMPLING:
                    points = self._penalty_points(real_global, real, fake, rows, seed)
                    penalty, stats = wk.gradient_penalty(
                        self.critic_ddp, points, points, method=c.penalty, sampling="real", weight=weight,
                        grad_scale=grad_scale, return_stats=True)
                else:
                    penalty, stats = wk.gradient_penalty(
                        self.critic_ddp, real, fake, method=c.penalty, weight=weight, seed=seed,
                        grad_scale=grad_scale, return_stats=True)
            loss = loss + penalty
            acc["penalty"].append(penalty.detach() / lazy)
            acc["above"].append(stats.part_above * c.lam)
            acc["below"].append(stats.part_below * c.lam)
        elif apply_penalty and c.penalty in PAIR_PENALTIES:
            penalty = wk.pair_penalty(f_real, f_fake, real, fake, kind=c.penalty, weight=weight, p=c.pair_p)
            loss = loss + penalty
            acc["penalty"].append(penalty.detach() / lazy)
            acc["above"].append(penalty.detach() / lazy)  # one-sided: all of it is above the bound
            acc["below"].append(torch.zeros((), device=self.device))
        elif c.penalty == "clip":
            acc["penalty"].append(torch.zeros((), device=self.device))
            acc["above"].append(torch.zeros((), device=self.device))
            acc["below"].append(torch.zeros((), device=self.device))

        self.opt_c.zero_grad(set_to_none=True)
        self.scaler_c.scale(loss).backward()
        self.scaler_c.step(self.opt_c)
        self.scaler_c.update()
        if c.penalty == "clip":
            wk.clip_weights_(self.critic, c.clip_value)
        acc["critic_loss"].append(critic_loss.detach())
        if stats is None and last and not acc["norms"]:
            stats = self._diagnostic_norms(real, fake, seed)
        if stats is not None:
            acc["norms"].append(torch.stack([stats.mean_norm, stats.max_norm, stats.min_norm]).float())

    def _diagnostic_norms(self, real, fake, seed):
        """Critic gradient norms at interpolates, for runs whose penalty does not compute them
        (clip, pair penalties, lazy steps). A plain first-order gradient: no double backward."""
        points = wk.interpolate(real.detach(), fake.detach(), seed=seed).requires_grad_(True)
        with self.autocast():
            out = self.critic(points).float()
        (grad,) = torch.autograd.grad(out.sum(), points)
        return wk.penalty_stats(grad)

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

    @staticmethod
    def _drop_overflow_steps(acc: dict) -> None:
        """fp16: a step whose scaled critic gradient overflowed gives a non-finite penalty; the
        GradScaler skips it and lowers the scale, so it is no divergence and no data point."""
        if not acc["penalty"]:
            return
        finite = torch.stack(acc["penalty"]).isfinite().tolist()
        for key in ("penalty", "above", "below"):
            acc[key] = [v for v, ok in zip(acc[key], finite) if ok]
        acc["norms"] = [v for v in acc["norms"] if bool(v.isfinite().all())]

    def critic_steps_for(self, iteration: int) -> int:
        c = self.c
        if c.lp_schedule and iteration <= c.lp_schedule_iterations:
            return c.lp_schedule_steps
        return c.n_critic

    def train_iteration(self, iteration: int) -> dict:
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
            self._drop_overflow_steps(acc)
        nan = torch.tensor(float("nan"), device=self.device)
        mean = lambda xs: torch.stack(xs).mean() if xs else nan  # noqa: E731
        norms = torch.stack(acc["norms"]) if acc["norms"] else torch.full((1, 3), float("nan"), device=self.device)
        means = torch.stack([mean(acc["critic_loss"]), mean(acc["penalty"]), mean(acc["above"]),
                             mean(acc["below"]), norms[:, 0].mean(), gen_loss.float()])
        maxima = torch.stack([norms[:, 1].max(), -norms[:, 2].min()])
        means, maxima = self.dist.reduce_metrics(means, maxima)
        m = means.tolist()
        mx = maxima.tolist()
        row = {"iteration": iteration, "critic_loss": m[0], "penalty": m[1], "penalty_above": m[2],
               "penalty_below": m[3], "grad_norm_mean": m[4], "grad_norm_max": mx[0], "grad_norm_min": -mx[1],
               "generator_loss": m[5], "w1": None, "critic_steps": n_critic, "lr": lr}
        checked = [m[0], m[5]] + ([m[1]] if acc["penalty"] else [])
        if not all(math.isfinite(v) for v in checked):
            raise Diverged(f"non-finite loss at iteration {iteration}: critic loss {m[0]}, penalty {m[1]}, "
                           f"generator loss {m[5]}")
        return row

    # -- evaluation ----------------------------------------------------------------------

    @torch.no_grad()
    def generate_eval(self) -> np.ndarray:
        was_training = self.generator.training
        self.generator.eval()
        out = [self.generator(z.to(self.device)).float().cpu() for z in self.eval_z.split(500)]
        self.generator.train(was_training)
        return torch.cat(out).numpy()

    def evaluate_w1(self, fake=None) -> float:
        fake = self.generate_eval() if fake is None else fake
        return evaluate.w1_assignment(self.eval_real, fake)

    def save_plots(self, iteration: int, fake=None) -> list:
        fake = self.generate_eval() if fake is None else fake
        stem = os.path.join(self.plots, f"{'levels' if not self.sampler.is_image else 'samples'}_{iteration:06d}")
        if self.sampler.is_image:
            return [evaluate.save_image_grid(stem + ".png", fake[:64], iteration)]
        self.critic.eval()
        xs, ys, values = evaluate.critic_levels(self.critic, self.eval_real, fake, self.device)
        self.critic.train()
        return [evaluate.save_levels(stem, iteration, xs, ys, values, self.eval_real, fake)]

    # -- the run -------------------------------------------------------------------------

    def run(self) -> dict:
        c, main = self.c, self.dist.main
        summary_path = os.path.join(self.out, "summary.json")
        if self.iteration >= c.iterations and os.path.exists(summary_path):
            with open(summary_path) as handle:
                summary = json.load(handle)
            if main:
                print(f"{self.out!r} already finished {self.iteration} iterations (status {summary.get('status')})")
            return summary
        writer = self._tensorboard()
        plot_at = set(c.plot_at)
        if self.iteration == 0 and main:
            fake = self.generate_eval()
            self.initial_w1 = self.last_w1 = self.evaluate_w1(fake)
            if 0 in plot_at:
                self.save_plots(0, fake)
        self.initial_w1 = self.dist.broadcast(self.initial_w1)

        from tqdm import tqdm

        bar = tqdm(total=c.iterations, initial=self.iteration, disable=not (c.progress and main),
                   dynamic_ncols=True, desc="wgan-train", unit="it")
        status, message = "finished", None
        metrics = open(self.metrics_path, "a", newline="") if main else None
        try:
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
                last = iteration == c.iterations
                if main:
                    fake = None
                    if iteration % c.eval_every == 0 or last:
                        fake = self.generate_eval()
                        row["w1"] = self.last_w1 = self.evaluate_w1(fake)
                    if (not self.sampler.is_image and (iteration in plot_at or last)) or (
                            self.sampler.is_image and (last or iteration % c.sample_every == 0)):
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
                if iteration % c.checkpoint_every == 0 or last:
                    if not self.parameters_finite():  # the last update blew up: keep the older checkpoint
                        status, message = "diverged", f"non-finite parameters after iteration {iteration}"
                        break
                    self.save_checkpoint()
                if c.kill_at is not None and iteration >= c.kill_at and not last:
                    return {"status": "killed", "iteration": iteration}
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
            if writer is not None:
                writer.close()
        self.dist.barrier()
        summary = {
            "status": status, "iterations": self.iteration, "final_w1": self.last_w1, "initial_w1": self.initial_w1,
            "wall_time": self.wall_time(), "train_time": self.elapsed, "out": self.out, "data": c.data, "penalty": c.penalty, "lambda": c.lam,
            "seed": c.seed, "message": message, "world_size": self.dist.world,
        }
        if main:
            metrics_png = evaluate.plot_metrics(self.metrics_path, os.path.join(self.plots, "metrics.png"),
                                               self.initial_w1)
            summary["plots"] = self.plots
            summary["metrics_plot"] = metrics_png
            _write_json(summary_path, summary)
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
            print(f"DIVERGED: {s['message']}. Stopped; the last good checkpoint is kept in {self.ckpt_path}",
                  file=sys.stderr)
        kind = "critic level sets levels_*.png/.npz" if not self.sampler.is_image else "sample grids samples_*.png"
        print(f"run directory: {self.out}")
        print(f"plots: {self.plots} ({kind}, metrics.png)")
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"W1 estimate (assignment, {self.c.eval_samples} real vs {self.c.eval_samples} generated): "
              f"untrained generator {fmt(s['initial_w1'])} -> final {fmt(s['final_w1'])} "
              f"after {s['iterations']} iterations")
        print(f"time: {s['wall_time']:.1f} s wall, {s['train_time']:.1f} s in training steps")

    def close(self):
        self.dist.close()


def run(config: TrainConfig | dict) -> dict:
    """Trains per config (a TrainConfig, or a dict of its fields; 'lambda' may stand for 'lam')
    and returns the summary dict (the content of summary.json)."""
    if isinstance(config, dict):
        fields = dict(config)
        if "lambda" in fields:
            fields["lam"] = fields.pop("lambda")
        config = TrainConfig(**fields)
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
    from .config import parse_args

    return run(parse_args(argv))
