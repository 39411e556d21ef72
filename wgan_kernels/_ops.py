"""The compiled ops behind the public API, with their fake kernels for torch.compile.

Each function has the signature of its twin in reference.py. Importing this module requires
the compiled extension (wgan_kernels._C), which registers the ops under torch.ops.wgan_kernels.
"""

from __future__ import annotations

import torch

from . import _backend
from .reference import STAT_NAMES

if _backend._C is None:  # pragma: no cover - guarded by the caller
    raise ImportError("wgan_kernels._ops needs the compiled extension")

NUM_STATS = len(STAT_NAMES)
if _backend._C.num_stats != NUM_STATS:  # pragma: no cover - a build out of step with the sources
    raise ImportError(
        f"wgan_kernels: the compiled extension's penalty_stats returns {_backend._C.num_stats} values "
        f"(csrc/penalty.h kNumStats) but reference.STAT_NAMES names {NUM_STATS}; rebuild the extension "
        "(`pip install --no-build-isolation -e .`) or make the two agree"
    )

_lib = torch.ops.wgan_kernels
_interpolate = _lib.interpolate.default
_perturb = _lib.perturb.default
_grad_norm = _lib.grad_norm.default
_norm_penalty = _lib.norm_penalty.default
_penalty_stats = _lib.penalty_stats.default
_pair_penalty = _lib.pair_penalty.default


def interpolate(real, fake, seed, row_offset=0, generator=None):
    return _interpolate(real, fake, seed, row_offset, generator)[0]


def perturb(x, scale, seed, row_offset=0, generator=None):
    return _perturb(x, scale, seed, row_offset, generator)


def grad_norm(grad):
    return _grad_norm(grad)


def norm_penalty(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction):
    return _norm_penalty(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction)[0]


def penalty_stats(grad, grad_scale, target, scale):
    return _penalty_stats(grad, grad_scale, target, scale)


def pair_penalty(f_real, f_fake, real, fake, kind, weight, p, reduction):
    return _pair_penalty(f_real, f_fake, real, fake, kind, weight, p, reduction)[0]


# Fake kernels: output metadata only. Elementwise outputs follow empty_like (csrc/cpu/rows.h).
def _acc(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _per_sample(t, dtype=None):
    return t.new_empty((t.shape[0],), dtype=dtype or _acc(t.dtype))


def _reduced(t, reduction):
    return _per_sample(t) if reduction == "none" else t.new_empty((), dtype=_acc(t.dtype))


def _masked(mask, make):
    """Backward ops return None (an undefined tensor) for the gradients output_mask leaves out."""
    return tuple(make(i) if wanted else None for i, wanted in enumerate(mask))


@torch.library.register_fake("wgan_kernels::interpolate")
def _(real, fake, seed, row_offset, generator):
    return torch.empty_like(real), real.new_empty((real.shape[0],), dtype=torch.float32)


@torch.library.register_fake("wgan_kernels::interpolate_backward")
def _(grad_out, t, output_mask):
    return _masked(output_mask, lambda i: torch.empty_like(grad_out))


@torch.library.register_fake("wgan_kernels::perturb")
def _(x, scale, seed, row_offset, generator):
    return torch.empty_like(x)


@torch.library.register_fake("wgan_kernels::grad_norm")
def _(grad):
    return _per_sample(grad)


@torch.library.register_fake("wgan_kernels::grad_norm_backward")
def _(grad_out, grad, norms):
    return torch.empty_like(grad)


@torch.library.register_fake("wgan_kernels::norm_penalty")
def _(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction):
    return _reduced(grad, reduction), _per_sample(grad)


@torch.library.register_fake("wgan_kernels::norm_penalty_backward")
def _(grad_out, grad, norms, grad_scale, sample_weight, target, one_sided, weight, scale, reduction):
    return torch.empty_like(grad)


@torch.library.register_fake("wgan_kernels::penalty_stats")
def _(grad, grad_scale, target, scale):
    return grad.new_empty((NUM_STATS,), dtype=_acc(grad.dtype))


@torch.library.register_fake("wgan_kernels::pair_penalty")
def _(f_real, f_fake, real, fake, kind, weight, p, reduction):
    return _reduced(real, reduction), _per_sample(real)


@torch.library.register_fake("wgan_kernels::pair_penalty_backward")
def _(grad_out, f_real, f_fake, real, fake, dist, kind, weight, p, reduction, output_mask):
    like = (f_real, f_fake)
    return _masked(output_mask, lambda i: like[i].new_empty(like[i].shape) if i < 2 else torch.empty_like(real))
