"""Generators and critics: the toy MLPs of the WGAN-LP protocol and the WGAN-GP CIFAR ResNet.
Critics return one value per sample, shape (B,)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CRITIC_NORMS = ("none", "layernorm")
# MLP initialisations: PyTorch's default (weights and biases U(+-1/sqrt(fan_in))), or Glorot-uniform
# weights with zero biases, the default of the tflib layers of the WGAN-GP and WGAN-LP public code
INITS = ("torch", "glorot")


def check_critic_norm(norm: str) -> None:
    if norm in ("batchnorm", "bn", "batch"):
        raise ValueError(
            "batch norm in the critic is refused: it mixes the samples of a batch, so a sample's "
            "critic value depends on the others and the per-sample input gradients that the "
            "gradient penalty constrains are no longer those of a function of one sample. Use "
            "--critic-norm layernorm (per-sample normalisation) or none."
        )
    if norm not in CRITIC_NORMS:
        raise ValueError(f"--critic-norm must be one of {', '.join(CRITIC_NORMS)}, got {norm!r}")


# ---------------------------------------------------------------------------------------
# toy MLPs


class MLP(nn.Module):
    """Three hidden LeakyReLU layers and a linear output (WGAN-LP toy protocol)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, layers: int = 3, slope: float = 0.2):
        super().__init__()
        blocks, width = [], in_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
            width = hidden
        blocks.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x):
        return self.net(x)

    def init_(self, init: str) -> "MLP":
        if init not in INITS:
            raise ValueError(f"--init must be one of {', '.join(INITS)}, got {init!r}")
        if init == "glorot":
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
        return self


class MLPCritic(MLP):
    def __init__(self, data_dim: int = 2, hidden: int = 512, layers: int = 3):
        super().__init__(data_dim, 1, hidden, layers)

    def forward(self, x):
        return self.net(x).squeeze(-1)


class MLPGenerator(MLP):
    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 512, layers: int = 3):
        super().__init__(latent_dim, data_dim, hidden, layers)
        self.latent_dim = latent_dim


# ---------------------------------------------------------------------------------------
# WGAN-GP ResNet


def _mean_pool(x):
    return F.avg_pool2d(x, 2)


def _norm(kind: str, channels: int) -> nn.Module:
    # GroupNorm with one group = layer norm over (C, H, W) of each sample
    return nn.GroupNorm(1, channels) if kind == "layernorm" else nn.Identity()


class OptimizedBlock(nn.Module):
    """First critic block: conv3x3 - ReLU - conv3x3 - meanpool, shortcut meanpool - conv1x1."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, channels, 1)

    def forward(self, x):
        out = _mean_pool(self.conv2(F.relu(self.conv1(x))))
        return out + self.shortcut(_mean_pool(x))


class CriticBlock(nn.Module):
    """Pre-activation residual block, optionally down-sampling (conv then meanpool on both paths)."""

    def __init__(self, channels: int, down: bool, norm: str):
        super().__init__()
        self.down = down
        self.norm1, self.norm2 = _norm(norm, channels), _norm(norm, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(channels, channels, 1) if down else nn.Identity()

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        skip = self.shortcut(x)
        if self.down:
            out, skip = _mean_pool(out), _mean_pool(skip)
        return out + skip


class ResNetCritic(nn.Module):
    def __init__(self, image_shape, channels: int = 128, blocks: int = 2, norm: str = "none"):
        super().__init__()
        check_critic_norm(norm)
        in_channels, size = image_shape[0], image_shape[-1]
        if size < 8:
            raise ValueError(f"the ResNet critic needs images of at least 8x8, got {size}x{size}")
        layers = [OptimizedBlock(in_channels, channels), CriticBlock(channels, True, norm)]
        layers += [CriticBlock(channels, False, norm) for _ in range(blocks)]
        self.blocks = nn.Sequential(*layers)
        self.final_norm = _norm(norm, channels)
        self.linear = nn.Linear(channels, 1)

    def forward(self, x):
        out = F.relu(self.final_norm(self.blocks(x)))
        return self.linear(out.mean(dim=(2, 3))).squeeze(-1)


class GeneratorBlock(nn.Module):
    """BN - ReLU - upsample - conv3x3 - BN - ReLU - conv3x3, shortcut upsample - conv1x1."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        out = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGenerator(nn.Module):
    def __init__(self, image_shape, channels: int = 128, latent_dim: int = 128):
        super().__init__()
        out_channels, size = image_shape[0], image_shape[-1]
        ups = int(round(math.log2(size / 4)))
        if size < 8 or 4 * 2**ups != size:
            raise ValueError(f"the ResNet generator makes 4 * 2^k pixel images (k >= 1), got {size}x{size}")
        self.latent_dim, self.channels = latent_dim, channels
        self.linear = nn.Linear(latent_dim, 4 * 4 * channels)
        self.blocks = nn.Sequential(*[GeneratorBlock(channels) for _ in range(ups)])
        self.bn = nn.BatchNorm2d(channels)
        self.out = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, z):
        x = self.linear(z).view(-1, self.channels, 4, 4)
        return torch.tanh(self.out(F.relu(self.bn(self.blocks(x)))))


def build_models(model: str, data_shape, *, hidden: int, layers: int, latent_dim: int | None,
                 channels: int, critic_blocks: int, critic_norm: str, init: str = "torch"):
    """-> (generator, critic). generator.latent_dim tells the noise size."""
    check_critic_norm(critic_norm)
    if model == "mlp":
        if len(data_shape) != 1:
            raise ValueError(f"--model mlp is for the 2-D toy data sets; use --model resnet for images (shape {data_shape})")
        if critic_norm != "none":
            raise ValueError("--critic-norm is for the ResNet critic only")
        dim = data_shape[0]
        latent = latent_dim or 2
        return MLPGenerator(latent, dim, hidden, layers).init_(init), MLPCritic(dim, hidden, layers).init_(init)
    if init != "torch":
        raise ValueError("--init is for the MLPs only")
    if model == "resnet":
        if len(data_shape) != 3:
            raise ValueError(f"--model resnet needs image data (C, H, W); got samples of shape {data_shape}, use --model mlp")
        return (ResNetGenerator(data_shape, channels, latent_dim or 128),
                ResNetCritic(data_shape, channels, critic_blocks, critic_norm))
    raise ValueError(f"--model must be 'mlp' or 'resnet', got {model!r}")
