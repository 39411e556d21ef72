"""Command-line flags and the setup-dependent defaults (toy WGAN-LP protocol vs CIFAR WGAN-GP)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field

from .data import DATA_SETS, TOY_SETS

PENALTIES = ("gp", "lp", "dragan", "r1", "r2", "quotient", "transport", "clip")
GRADIENT_PENALTIES = ("gp", "lp", "dragan", "r1", "r2")
PAIR_PENALTIES = ("quotient", "transport")


@dataclass
class TrainConfig:
    """None means 'the default of the setup' (filled in by resolve())."""

    data: str = "swissroll"
    data_path: str | None = None
    image_size: int | None = None
    model: str | None = None
    penalty: str = "lp"
    lam: float = 10.0
    pair_p: float = 1.0
    clip_value: float = 0.01
    lazy_every: int = 1
    iterations: int | None = None
    n_critic: int | None = None
    lp_schedule: bool | None = None
    lp_schedule_iterations: int = 25
    lp_schedule_steps: int = 100
    batch_size: int | None = None
    gen_batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    betas: tuple = (0.0, 0.9)
    lr_decay: str | None = None
    seed: int = 0
    out: str | None = None
    eval_every: int | None = None
    eval_samples: int = 500
    plot_at: list = field(default_factory=list)
    sample_every: int | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    amp: str = "none"
    device: str = "auto"
    channels_last: str = "auto"
    progress: bool = True
    tensorboard: bool = True
    hidden: int = 512
    layers: int = 3
    latent_dim: int | None = None
    channels: int | None = None
    critic_blocks: int = 2
    critic_norm: str = "none"
    threads: int | None = None
    kill_at: int | None = None  # tests: stop abruptly after this iteration, as if killed

    @property
    def is_toy(self) -> bool:
        return self.data in TOY_SETS

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out


# the fields whose change would make a resumed run a different run
TRAJECTORY_FIELDS = ("data", "data_path", "image_size", "model", "penalty", "lam", "pair_p", "clip_value",
                     "lazy_every", "n_critic", "lp_schedule", "lp_schedule_iterations", "lp_schedule_steps",
                     "batch_size", "gen_batch_size", "optimizer", "lr", "betas", "lr_decay", "seed", "amp",
                     "hidden", "layers", "latent_dim", "channels", "critic_blocks", "critic_norm")

# The no-argument run: WGAN-LP protocol, sized to finish in about two minutes on 2 CPU cores.
TOY_ITERATIONS = 30
IMAGE_ITERATIONS = 2000


def resolve(config: TrainConfig) -> TrainConfig:
    """Fills the setup defaults and validates; errors name the flag."""
    c = dataclasses.replace(config)
    if c.data not in DATA_SETS:
        raise ValueError(f"--data must be one of {', '.join(DATA_SETS)}, got {c.data!r}")
    if c.penalty not in PENALTIES:
        raise ValueError(f"--penalty must be one of {', '.join(PENALTIES)}, got {c.penalty!r}")
    toy = c.is_toy
    if c.model is None:
        c.model = "mlp" if toy else "resnet"
    if toy and c.model != "mlp":
        raise ValueError(f"--model {c.model} does not fit the 2-D toy data {c.data!r}; use --model mlp")
    if not toy and c.model != "resnet":
        raise ValueError(f"--model {c.model} does not fit image data {c.data!r}; use --model resnet")
    if toy and c.image_size is not None:
        raise ValueError(f"--image-size is for image data; {c.data!r} is a 2-D toy data set")
    if toy and c.data_path:
        raise ValueError(f"--data-path is not used by the generated toy data set {c.data!r}")
    if c.data in ("cifar10", "npy") and not c.data_path:
        what = "a directory with data_batch_1 .. data_batch_5" if c.data == "cifar10" else "a .npy or .npz file of images"
        raise ValueError(f"--data {c.data} needs --data-path: {what}")
    # toy: WGAN-LP protocol; images: WGAN-GP CIFAR ResNet
    defaults = dict(
        iterations=TOY_ITERATIONS if toy else IMAGE_ITERATIONS,
        n_critic=10 if toy else 5,
        lp_schedule=toy,
        batch_size=256 if toy else 64,
        optimizer="rmsprop" if toy else "adam",
        lr_decay="none" if toy else "linear",
        eval_every=10 if toy else 250,
        sample_every=None if toy else 500,
        checkpoint_every=10 if toy else 500,
        channels=128,
    )
    for name, value in defaults.items():
        if getattr(c, name) is None:
            setattr(c, name, value)
    if c.gen_batch_size is None:
        c.gen_batch_size = c.batch_size if toy else 2 * c.batch_size
    if c.lr is None:
        c.lr = 5e-5 if c.optimizer == "rmsprop" else (2e-4 if not toy else 1e-4)
    if c.optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"--optimizer must be 'adam' or 'rmsprop', got {c.optimizer!r}")
    if c.lr_decay not in ("none", "linear"):
        raise ValueError(f"--lr-decay must be 'none' or 'linear', got {c.lr_decay!r}")
    if c.amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"--amp must be none, bf16 or fp16, got {c.amp!r}")
    if c.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {c.device!r}")
    if c.channels_last not in ("auto", "on", "off"):
        raise ValueError(f"--channels-last must be auto, on or off, got {c.channels_last!r}")
    positive = ["iterations", "n_critic", "batch_size", "gen_batch_size", "eval_every", "eval_samples",
                "checkpoint_every", "lazy_every", "hidden", "layers", "channels", "lp_schedule_steps"]
    for name in positive:
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    for name in ("critic_blocks", "lp_schedule_iterations"):
        if getattr(c, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(c, name)}")
    if c.sample_every is not None and c.sample_every < 1:
        raise ValueError(f"--sample-every must be a positive integer, got {c.sample_every}")
    if not (c.lam >= 0):
        raise ValueError(f"--lambda must be non-negative, got {c.lam}")
    if not (c.lr > 0):
        raise ValueError(f"--lr must be positive, got {c.lr}")
    if not (c.clip_value > 0):
        raise ValueError(f"--clip-value must be positive, got {c.clip_value}")
    if not (c.pair_p > 0):
        raise ValueError(f"--pair-p must be positive, got {c.pair_p}")
    if c.eval_samples < 2:
        raise ValueError(f"--eval-samples must be at least 2, got {c.eval_samples}")
    if any((not isinstance(i, int)) or i < 0 for i in c.plot_at):
        raise ValueError(f"--plot-at must list non-negative iterations, got {c.plot_at}")
    if c.resume and not c.out:
        raise ValueError("--resume needs --out: the run directory to continue")
    if c.out is None:
        c.out = f"runs/{c.data}-{c.penalty}-lam{c.lam:g}-{time.strftime('%Y%m%d-%H%M%S')}"
    c.betas = tuple(float(b) for b in c.betas)
    return c


def _plot_list(text: str) -> list:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated iterations such as 10,50,100, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wgan-train",
        description="Train a Wasserstein GAN with a Lipschitz penalty from wgan_kernels. With no "
        "arguments: WGAN-LP (lambda 10) on swissroll, the toy protocol of Petzka et al. 2018.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATA_SETS, default="swissroll")
    g.add_argument("--data-path", default=None, help="CIFAR-10 pickle directory, or a .npy/.npz image array")
    g.add_argument("--image-size", type=int, default=None, help="resize images to this power of two (default: the data's)")
    g = p.add_argument_group("models")
    g.add_argument("--model", choices=("mlp", "resnet"), default=None, help="default: mlp for toy data, resnet for images")
    g.add_argument("--hidden", type=int, default=512, help="MLP width")
    g.add_argument("--layers", type=int, default=3, help="MLP hidden layers")
    g.add_argument("--latent-dim", type=int, default=None, help="default: 2 (MLP), 128 (ResNet)")
    g.add_argument("--channels", type=int, default=None, help="ResNet width (default 128)")
    g.add_argument("--critic-blocks", type=int, default=2, help="plain residual blocks in the ResNet critic")
    g.add_argument("--critic-norm", default="none", help="none or layernorm (batch norm is refused)")
    g = p.add_argument_group("penalty")
    g.add_argument("--penalty", choices=PENALTIES, default="lp")
    g.add_argument("--lambda", dest="lam", type=float, default=10.0, help="penalty weight")
    g.add_argument("--pair-p", type=float, default=1.0, help="exponent p of d = ||x - y||^p for quotient/transport")
    g.add_argument("--clip-value", type=float, default=0.01, help="c for --penalty clip")
    g.add_argument("--lazy-every", type=int, default=1, help="apply the penalty every K critic steps, weighted by K")
    g = p.add_argument_group("optimisation")
    g.add_argument("--iterations", type=int, default=None, help=f"generator iterations (default {TOY_ITERATIONS} toy, {IMAGE_ITERATIONS} images)")
    g.add_argument("--n-critic", type=int, default=None, help="critic steps per generator step (default 10 toy, 5 images)")
    g.add_argument("--lp-schedule", dest="lp_schedule", action="store_true", default=None,
                   help="100 critic steps for each of the first 25 generator iterations (default on for toy data)")
    g.add_argument("--no-lp-schedule", dest="lp_schedule", action="store_false")
    g.add_argument("--lp-schedule-iterations", type=int, default=25)
    g.add_argument("--lp-schedule-steps", type=int, default=100)
    g.add_argument("--batch-size", type=int, default=None, help="critic batch (default 256 toy, 64 images)")
    g.add_argument("--gen-batch-size", type=int, default=None, help="generator batch (default: batch size toy, 2x images)")
    g.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None, help="default rmsprop toy, adam images")
    g.add_argument("--lr", type=float, default=None, help="default 5e-5 rmsprop, 2e-4 adam (images)")
    g.add_argument("--betas", type=float, nargs=2, default=(0.0, 0.9), help="Adam betas")
    g.add_argument("--lr-decay", choices=("none", "linear"), default=None, help="default none toy, linear to 0 images")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help="run directory (default runs/<data>-<penalty>-lam<lambda>-<time>)")
    g.add_argument("--eval-every", type=int, default=None, help="W1 estimate interval in generator iterations (default 10 toy, 250 images)")
    g.add_argument("--eval-samples", type=int, default=500)
    g.add_argument("--plot-at", type=_plot_list, default=[10, 50, 100, 500, 1000],
                   help="iterations with critic level-set plots (toy); the last iteration is always plotted")
    g.add_argument("--sample-every", type=int, default=None, help="image sample grid interval (default 500)")
    g.add_argument("--checkpoint-every", type=int, default=None, help="default 10 toy, 500 images")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    g.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto", help="auto: on for images on CUDA")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm progress bar")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    g.add_argument("--kill-at", type=int, default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    values = vars(args)
    values["betas"] = tuple(values["betas"])
    return TrainConfig(**values)
