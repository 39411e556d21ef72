"""Command-line flags, the setup-dependent defaults (toy WGAN-LP protocol vs CIFAR WGAN-GP),
validation, and the settings of a resumed run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field

from ..penalties import PENALTIES
from .data import DATA_SETS, NPZ_KEYS, TOY_SETS
from .models import INITS

# Defaults that depend on the setup: (toy data, images). None in TrainConfig means "this one".
# The no-argument run is the WGAN-LP toy protocol, sized to finish in about two minutes on 2 CPU
# cores; images follow WGAN-GP's CIFAR-10 ResNet.
SETUP_DEFAULTS = {
    "model": ("mlp", "resnet"),
    "iterations": (30, 2000),
    "n_critic": (10, 5),
    "lp_schedule": (True, False),
    "batch_size": (256, 64),
    "optimizer": ("rmsprop", "adam"),
    "lr_decay": ("none", "linear"),
    "eval_every": (10, 250),
    "sample_every": (None, 500),
    "checkpoint_every": (10, 500),
}
LEARNING_RATES = {"rmsprop": 5e-5, "adam": (1e-4, 2e-4)}  # adam: (toy, images)
SEED_LIMIT = 2**31  # numpy's RandomState takes seeds below 2**32; the trainer adds offsets up to 2000


@dataclass
class TrainConfig:
    """None means 'the default of the setup' (SETUP_DEFAULTS, filled in by resolve())."""

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
    plot_at: list = field(default_factory=lambda: [10, 50, 100, 500, 1000])
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
    channels: int = 128
    critic_blocks: int = 2
    critic_norm: str = "none"
    init: str = "torch"
    threads: int | None = None
    kill_at: int | None = None  # tests: stop abruptly after this iteration, as if killed

    @property
    def is_toy(self) -> bool:
        return self.data in TOY_SETS

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out


# the fields whose change would make a resumed run a different run (--iterations may change:
# it extends the run)
TRAJECTORY_FIELDS = ("data", "data_path", "image_size", "model", "penalty", "lam", "pair_p", "clip_value",
                     "lazy_every", "n_critic", "lp_schedule", "lp_schedule_iterations", "lp_schedule_steps",
                     "batch_size", "gen_batch_size", "optimizer", "lr", "betas", "lr_decay", "seed", "amp",
                     "hidden", "layers", "latent_dim", "channels", "critic_blocks", "critic_norm", "init")


def flag(name: str) -> str:
    return "--lambda" if name == "lam" else "--" + name.replace("_", "-")


def resolve(config: TrainConfig) -> TrainConfig:
    """Fills the setup defaults and validates; errors name the flag."""
    c = dataclasses.replace(config)
    if c.data not in DATA_SETS:
        raise ValueError(f"--data must be one of {', '.join(DATA_SETS)}, got {c.data!r}")
    if c.penalty not in PENALTIES:
        raise ValueError(f"--penalty must be one of {', '.join(PENALTIES)}, got {c.penalty!r}")
    toy = c.is_toy
    for name, (toy_default, image_default) in SETUP_DEFAULTS.items():
        if getattr(c, name) is None:
            setattr(c, name, toy_default if toy else image_default)
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
    if c.gen_batch_size is None:
        c.gen_batch_size = c.batch_size if toy else 2 * c.batch_size
    for name, choices in (("optimizer", ("adam", "rmsprop")), ("lr_decay", ("none", "linear")),
                          ("amp", ("none", "bf16", "fp16")), ("device", ("auto", "cpu", "cuda")),
                          ("channels_last", ("auto", "on", "off"))):
        if getattr(c, name) not in choices:
            raise ValueError(f"{flag(name)} must be one of {', '.join(choices)}, got {getattr(c, name)!r}")
    if c.lr is None:
        c.lr = LEARNING_RATES["rmsprop"] if c.optimizer == "rmsprop" else LEARNING_RATES["adam"][0 if toy else 1]
    positive = ["iterations", "n_critic", "batch_size", "gen_batch_size", "eval_every", "eval_samples",
                "checkpoint_every", "lazy_every", "hidden", "layers", "channels", "lp_schedule_steps"]
    positive += [name for name in ("sample_every", "threads", "latent_dim", "image_size") if getattr(c, name) is not None]
    for name in positive:
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{flag(name)} must be a positive integer, got {value!r}")
    for name in ("critic_blocks", "lp_schedule_iterations"):
        if getattr(c, name) < 0:
            raise ValueError(f"{flag(name)} must be >= 0, got {getattr(c, name)}")
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < SEED_LIMIT:
        raise ValueError(f"--seed must be an integer in [0, 2^31), got {c.seed!r}")
    if not (math.isfinite(c.lam) and c.lam >= 0):
        raise ValueError(f"--lambda must be a finite non-negative number, got {c.lam}")
    for name in ("lr", "clip_value", "pair_p"):
        value = getattr(c, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag(name)} must be a finite positive number, got {value}")
    if c.eval_samples < 2:
        raise ValueError(f"--eval-samples must be at least 2, got {c.eval_samples}")
    if any((not isinstance(i, int)) or i < 0 for i in c.plot_at):
        raise ValueError(f"--plot-at must list non-negative iterations, got {c.plot_at}")
    if c.resume and not c.out:
        raise ValueError("--resume needs --out: the run directory to continue")
    if c.out is None:
        c.out = f"runs/{c.data}-{c.penalty}-lam{c.lam:g}-{time.strftime('%Y%m%d-%H%M%S')}"
    c.betas = tuple(float(b) for b in c.betas)
    c.plot_at = list(c.plot_at)
    return c


# ---------------------------------------------------------------------------------------
# resume: the run's own settings


def given_settings(config: TrainConfig | dict) -> dict:
    """The settings a caller chose: a dict's keys ('lambda' may stand for 'lam'), or the fields
    of a TrainConfig that differ from the defaults."""
    if isinstance(config, dict):
        given = dict(config)
        if "lambda" in given:
            given["lam"] = given.pop("lambda")
        unknown = set(given) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return given
    default = TrainConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(config, f.name) != getattr(default, f.name)}


def changed_settings(saved: dict, current: dict) -> list[str]:
    """'flag: old -> new' for every trajectory setting that differs between two config dicts."""
    return [f"{flag(k)}: {saved[k]!r} -> {current[k]!r}" for k in TRAJECTORY_FIELDS
            if k in saved and k in current and saved[k] != current[k]]


def with_saved_settings(given: dict) -> TrainConfig:
    """The settings of `--out DIR --resume`: DIR/config.json (every setting of the run), with the
    given ones on top. Settings that would change the run are refused; --iterations may extend
    it, and the run-time ones (--threads, --no-progress, --eval-every, ...) may change. Without a
    config.json (nothing ran yet) the given settings start the run."""
    config = TrainConfig(**given)
    path = os.path.join(config.out, "config.json") if config.out else None
    if not config.resume or path is None or not os.path.exists(path):
        return config
    try:
        with open(path) as handle:
            saved = json.load(handle)
        base = TrainConfig(**{k: v for k, v in saved.items() if k not in ("resume", "out", "kill_at")})
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"--resume: cannot read the run's settings {path!r} ({type(error).__name__}: {error})") from None
    merged = dataclasses.replace(base, **{k: v for k, v in given.items()})
    changed = changed_settings(resolve(base).to_dict(), resolve(merged).to_dict())
    if changed:
        raise ValueError(f"--resume with settings that differ from the run in {config.out!r} (leave them out to "
                         f"continue it as it was): " + "; ".join(changed))
    return merged


# ---------------------------------------------------------------------------------------
# the command line


def _plot_list(text: str) -> list:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated iterations such as 10,50,100, got {text!r}") from None


def _setup(name: str, unit: str = "") -> str:
    toy, images = SETUP_DEFAULTS[name]
    return f"(default: {toy}{unit} for toy data, {images}{unit} for images)"


class _HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' where the default is a value and the help text does not give it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, True, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="wgan-train",
        description="Train a Wasserstein GAN with a Lipschitz penalty from wgan_kernels. With no "
        "arguments: WGAN-LP (lambda 10) on swissroll, the toy protocol of Petzka et al. 2018. "
        "Continue a run with --out DIR --resume (its settings come from DIR/config.json).",
        formatter_class=_HelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATA_SETS, default=d.data,
                   help=f"toy 2-D sets ({', '.join(TOY_SETS)}), scikit-learn's digits, CIFAR-10 or a .npy/.npz array")
    g.add_argument("--data-path", help="cifar10: the directory of data_batch_1 .. data_batch_5 (python pickles); "
                   f"npy: a .npy file, or a .npz whose array is named {', '.join(repr(k) for k in NPZ_KEYS)} or is its "
                   "only array; images (N, H, W), (N, H, W, C) or (N, C, H, W), uint8 0..255 or float in [0, 1] or [-1, 1]")
    g.add_argument("--image-size", type=int, help="resize images to this power of two >= 8 (default: the data's size, "
                   "rounded up to one)")
    g = p.add_argument_group("models")
    g.add_argument("--model", choices=SETUP_DEFAULTS["model"], help=_setup("model"))
    g.add_argument("--hidden", type=int, default=d.hidden, help="MLP width")
    g.add_argument("--layers", type=int, default=d.layers, help="MLP hidden layers")
    g.add_argument("--latent-dim", type=int, help="latent dimension (default: 2 for the MLP, 128 for the ResNet)")
    g.add_argument("--channels", type=int, default=d.channels, help="ResNet width")
    g.add_argument("--critic-blocks", type=int, default=d.critic_blocks, help="plain residual blocks in the ResNet critic")
    g.add_argument("--critic-norm", default=d.critic_norm, help="none or layernorm (batch norm is refused)")
    g.add_argument("--init", default=d.init, choices=INITS,
                   help="MLP initialisation: torch (nn.Linear's own) or glorot (Glorot-uniform weights, zero "
                        "biases, as the tflib layers of the papers' public TensorFlow code)")
    g = p.add_argument_group("penalty")
    g.add_argument("--penalty", choices=PENALTIES, default=d.penalty,
                   help="gradient penalties of wk.gradient_penalty, pair penalties of wk.pair_penalty, or weight clipping")
    g.add_argument("--lambda", dest="lam", type=float, default=d.lam, help="penalty weight")
    g.add_argument("--pair-p", type=float, default=d.pair_p, help="exponent p of d = ||x - y||^p for quotient/transport")
    g.add_argument("--clip-value", type=float, default=d.clip_value, help="c for --penalty clip")
    g.add_argument("--lazy-every", type=int, default=d.lazy_every, help="apply the penalty every K critic steps, weighted by K")
    g = p.add_argument_group("optimisation")
    g.add_argument("--iterations", type=int, help=f"generator iterations {_setup('iterations')}; with --resume, "
                   "a larger value extends the run")
    g.add_argument("--n-critic", type=int, help=f"critic steps per generator step {_setup('n_critic')}")
    g.add_argument("--lp-schedule", dest="lp_schedule", action="store_true", default=None,
                   help="the WGAN-LP schedule: --lp-schedule-steps critic steps for each of the first "
                   "--lp-schedule-iterations generator iterations (default: on for toy data, off for images)")
    g.add_argument("--no-lp-schedule", dest="lp_schedule", action="store_false", help="--n-critic steps throughout")
    g.add_argument("--lp-schedule-iterations", type=int, default=d.lp_schedule_iterations,
                   help="generator iterations under the schedule")
    g.add_argument("--lp-schedule-steps", type=int, default=d.lp_schedule_steps, help="critic steps per iteration under the schedule")
    g.add_argument("--batch-size", type=int, help=f"critic batch {_setup('batch_size')}")
    g.add_argument("--gen-batch-size", type=int, help="generator batch (default: the batch size for toy data, twice it for images)")
    g.add_argument("--optimizer", choices=("adam", "rmsprop"), help=_setup("optimizer"))
    g.add_argument("--lr", type=float, help=f"learning rate (default: {LEARNING_RATES['rmsprop']:g} with rmsprop; with "
                   f"adam {LEARNING_RATES['adam'][0]:g} for toy data, {LEARNING_RATES['adam'][1]:g} for images)")
    g.add_argument("--betas", type=float, nargs=2, default=d.betas, metavar=("BETA1", "BETA2"), help="Adam betas")
    g.add_argument("--lr-decay", choices=("none", "linear"), help=f"{_setup('lr_decay')}; linear: to 0 at the last iteration")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of every random stream (0 <= seed < 2^31)")
    g = p.add_argument_group("run")
    g.add_argument("--out", help="run directory (default: runs/<data>-<penalty>-lam<lambda>-<time>)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint with the settings in its config.json; flags "
                   "given as well may extend --iterations and change how it runs (--eval-every, --plot-at, "
                   "--checkpoint-every, --device, --threads, ...), not what it trains")
    g.add_argument("--eval-every", type=int, help=f"W1 estimate every N generator iterations {_setup('eval_every')}")
    g.add_argument("--eval-samples", type=int, default=d.eval_samples, help="real and generated samples of the W1 estimate")
    g.add_argument("--plot-at", type=_plot_list, default=d.plot_at, metavar="I,J,...",
                   help="iterations with critic level-set plots, toy data (default: "
                   f"{','.join(map(str, d.plot_at))}; the last iteration is always plotted; 0: the untrained generator)")
    g.add_argument("--sample-every", type=int, help="image sample grid every N iterations (default: 500)")
    g.add_argument("--checkpoint-every", type=int, help=f"checkpoint every N iterations {_setup('checkpoint_every')}")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default=d.amp, help="autocast dtype (fp16 with a GradScaler)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device, help="auto: CUDA when available")
    g.add_argument("--channels-last", choices=("auto", "on", "off"), default=d.channels_last,
                   help="memory format of images (auto: on for images on CUDA)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar (shown by default)")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="write no TensorBoard events (written by default when tensorboard is installed)")
    g.add_argument("--kill-at", type=int, help=argparse.SUPPRESS)
    return p


def parse_given(argv=None) -> dict:
    """The settings given on the command line, and only those (--resume takes the others from the run)."""
    build_parser().parse_args(argv)  # --help (with the defaults) and usage errors
    parser = build_parser()
    for action in parser._actions:  # a flag that was not given leaves no attribute
        if action.dest != "help":
            action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    if "betas" in given:
        given["betas"] = tuple(given["betas"])
    return given


def parse_args(argv=None) -> TrainConfig:
    return TrainConfig(**parse_given(argv))
