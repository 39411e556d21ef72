"""Step-level benchmark: one penalised critic update, hand-written eager recipe vs the library.

Critics: the toy MLP (three hidden LeakyReLU layers of 512, 2-D inputs, B = 256) and the
WGAN-GP CIFAR-10 ResNet critic (B = 64, 3x32x32, 128 channels), both from
wgan_kernels.train.models (the trainer's critics).

One step = interpolation sampling, critic forward on real, fake and interpolates, input
gradient with create_graph=True, penalty, backward, optimizer step. The generator is not run:
`fake` is a fixed tensor, as in the critic's inner loop where fake is detached.
"""

from __future__ import annotations

import torch

import wgan_kernels as wk
from wgan_kernels.train.models import MLPCritic, ResNetCritic

from . import baselines

WEIGHT = 10.0  # lambda of WGAN-GP


# ---------------------------------------------------------------------------------------
# critics (fallbacks)


SETUPS = {
    # name: (batch, sample shape, critic factory, optimizer kwargs)
    "mlp": (256, (2,), lambda shape: MLPCritic(), dict(lr=1e-4, betas=(0.5, 0.9))),
    "resnet": (64, (3, 32, 32), lambda shape: ResNetCritic(shape), dict(lr=2e-4, betas=(0.0, 0.9))),
}


def make_setup(kind: str, device="cpu", seed: int = 0, batch: int | None = None):
    """(critic, optimizer, real, fake, source) for one of SETUPS (batch overrides its batch size)."""
    default_batch, shape, make_critic, opt_kwargs = SETUPS[kind]
    batch = batch or default_batch
    torch.manual_seed(seed)
    critic = make_critic(shape).to(device)
    opt = torch.optim.Adam(critic.parameters(), **opt_kwargs)
    real = torch.randn(batch, *shape, device=device)
    fake = torch.randn(batch, *shape, device=device)
    if len(shape) == 3:  # images in [-1, 1]
        real, fake = real.tanh(), fake.tanh()
    return critic, opt, real, fake, f"wgan_kernels.train.models.{type(critic).__name__}"


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


def graph_replay(kind: str, variant: str, device="cuda", batch: int | None = None):
    """A callable that replays one step of STEPS[variant] captured in a CUDA graph (Adam with
    capturable=True; sampling draws from the CUDA generator, so every replay draws anew)."""
    critic, _, real, fake, _ = make_setup(kind, device, batch=batch)
    opt = torch.optim.Adam(critic.parameters(), capturable=True, **SETUPS[kind][3])
    fn = STEPS[variant]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
        for _ in range(3):
            fn(critic, opt, real, fake)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(critic, opt, real, fake)
    return graph.replay


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
