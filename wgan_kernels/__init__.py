"""wgan_kernels: fused Lipschitz-penalty ops for Wasserstein GAN critics (WGAN-GP, WGAN-LP and
relatives), with C++ kernels, autograd, and a plain-PyTorch reference (wgan_kernels.reference)."""

from .functional import (
    METHODS,
    PenaltyStats,
    backend,
    clip_weights_,
    grad_norm,
    gradient_penalty,
    interpolate,
    norm_penalty,
    pair_penalty,
    penalty_stats,
    perturb,
)

__all__ = [
    "METHODS",
    "PenaltyStats",
    "backend",
    "clip_weights_",
    "grad_norm",
    "gradient_penalty",
    "interpolate",
    "norm_penalty",
    "pair_penalty",
    "penalty_stats",
    "perturb",
]
__version__ = "0.1.0"
