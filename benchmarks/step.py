"""Step-level benchmark: one penalised critic update, hand-written eager recipe vs the library.

Critics: the toy MLP (three hidden LeakyReLU layers of 512, 2-D inputs, B = 256) and the
WGAN-GP CIFAR-10 ResNet critic (B = 64, 3x32x32, 128 channels). They come from
wgan_kernels.train.models when that module exists and has them, else from the small
definitions below (same architecture as BACKGROUND.md describes).

One step = interpolation sampling, critic forward on real, fake and interpolates, input
gradient with create_graph=True, penalty, backward, optimizer step. The generator is not run:
`fake` is a fixed tensor, as in the critic's inner loop where fake is detached.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

import wgan_kernels as wk

from . import baselines

WEIGHT = 10.0  # lambda of WGAN-GP


# ---------------------------------------------------------------------------------------
# critics (fallbacks)


class MLPCritic(nn.Module):
    def __init__(self, dim: int = 2, hidden: int = 512, layers: int = 3, slope: float = 0.2):
        super().__init__()
        mods: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class OptimizedBlock(nn.Module):
    """First block: conv3x3 - ReLU - conv3x3 - meanpool, shortcut meanpool - conv1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class ResBlock(nn.Module):
    """Pre-activation residual block (ReLU - conv3x3 - ReLU - conv3x3), optionally down-sampling."""

    def __init__(self, channels: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(channels, channels, 1) if down else None

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        if not self.down:
            return x + h
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.shortcut(x), 2)


class ResNetCritic(nn.Module):
    def __init__(self, channels: int = 128):
        super().__init__()
        self.blocks = nn.Sequential(
            OptimizedBlock(3, channels), ResBlock(channels, True), ResBlock(channels, False), ResBlock(channels, False)
        )
        self.linear = nn.Linear(channels, 1)

    def forward(self, x):
        return self.linear(F.relu(self.blocks(x)).mean(dim=(2, 3)))


def _from_train(kind: str, probe: torch.Tensor):
    """A critic class from wgan_kernels.train.models when one fits, else None."""
    try:
        from wgan_kernels.train import models  # type: ignore
    except Exception:
        return None
    words = ("mlp", "toy") if kind == "mlp" else ("resnet", "cifar")
    for name in dir(models):
        obj = getattr(models, name)
        low = name.lower()
        if isinstance(obj, type) and issubclass(obj, nn.Module) and ("critic" in low or "discriminator" in low) \
                and any(w in low for w in words):
            try:
                try:
                    critic = obj()
                except TypeError:  # e.g. ResNetCritic(image_shape)
                    critic = obj(tuple(probe.shape[1:]))
                with torch.no_grad():
                    out = critic(probe)
                if out.numel() == probe.shape[0]:
                    return critic
            except Exception:
                continue
    return None


SETUPS = {
    # name: (batch, sample shape, fallback critic, optimizer kwargs)
    "mlp": (256, (2,), MLPCritic, dict(lr=1e-4, betas=(0.5, 0.9))),
    "resnet": (64, (3, 32, 32), ResNetCritic, dict(lr=2e-4, betas=(0.0, 0.9))),
}


def make_setup(kind: str, device="cpu", seed: int = 0, batch: int | None = None):
    """(critic, optimizer, real, fake, source) for one of SETUPS (batch overrides its batch size)."""
    default_batch, shape, fallback, opt_kwargs = SETUPS[kind]
    batch = batch or default_batch
    torch.manual_seed(seed)
    critic = _from_train(kind, torch.zeros(2, *shape))
    source = "wgan_kernels.train.models" if critic is not None else "benchmarks.step"
    if critic is None:
        critic = fallback()
    critic = critic.to(device)
    opt = torch.optim.Adam(critic.parameters(), **opt_kwargs)
    real = torch.randn(batch, *shape, device=device)
    fake = torch.randn(batch, *shape, device=device)
    if len(shape) == 3:  # images in [-1, 1]
        real, fake = real.tanh(), fake.tanh()
    return critic, opt, real, fake, f"{source}.{type(critic).__name__}"


# ---------------------------------------------------------------------------------------
# steps


def eager_step(critic, opt, real, fake, weight: float = WEIGHT):
    """The hand-written WGAN-GP critic update."""
    opt.zero_grad(set_to_none=True)
    x_hat = baselines.eager_interpolate(real, fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = baselines.eager_norm_penalty(g, weight=weight)
    loss = critic(fake).mean() - critic(real).mean() + penalty
    loss.backward()
    opt.step()
    return loss


def library_step(critic, opt, real, fake, weight: float = WEIGHT):
    """The same update with wk.gradient_penalty (method 'gp': two-sided, interpolates)."""
    opt.zero_grad(set_to_none=True)
    penalty = wk.gradient_penalty(critic, real, fake, method="gp", weight=weight)
    loss = critic(fake).mean() - critic(real).mean() + penalty
    loss.backward()
    opt.step()
    return loss


def unpenalised_step(critic, opt, real, fake, weight: float = WEIGHT):
    """The critic update without any penalty: what the penalty adds to."""
    opt.zero_grad(set_to_none=True)
    loss = critic(fake).mean() - critic(real).mean()
    loss.backward()
    opt.step()
    return loss


STEPS = {"eager": eager_step, "fused": library_step, "no_penalty": unpenalised_step}


def penalty_ops(variant: str, real, fake):
    """Only the penalty ops of one step (sampling + norm penalty forward and backward) on a
    gradient of the step's size, without the critic: what the library can speed up."""
    g = torch.randn_like(real).div_(real[0].numel() ** 0.5).requires_grad_(True)
    if variant == "eager":
        def run():
            baselines.eager_interpolate(real, fake)
            p = baselines.eager_norm_penalty(g, weight=WEIGHT)
            return torch.autograd.grad(p, g)
    else:
        def run():
            wk.interpolate(real, fake)
            p = wk.norm_penalty(g, weight=WEIGHT)
            return torch.autograd.grad(p, g)
    return run


def check_steps(kind: str, device="cpu") -> None:
    """The eager and library steps give the same penalty for the same interpolation weights
    (both reduce to weight * mean (n - 1)^2 on the critic's input gradient)."""
    critic, _, real, fake, _ = make_setup(kind, device)
    torch.manual_seed(3)
    x_hat = wk.interpolate(real, fake, seed=baselines.SEED).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    fused = wk.norm_penalty(g, weight=WEIGHT)
    eager = baselines.eager_norm_penalty(g, weight=WEIGHT)
    library = wk.gradient_penalty(critic, real, fake, method="gp", weight=WEIGHT, seed=baselines.SEED)
    for name, value in (("eager", eager), ("gradient_penalty", library)):
        if not torch.allclose(fused.double(), value.double(), rtol=1e-4, atol=1e-6):
            raise baselines.CheckFailed(f"step {kind}: {name} penalty {value.item():.6g} != fused {fused.item():.6g}")
