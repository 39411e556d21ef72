"""Plain-PyTorch definitions of every op: the specification the kernels are tested against,
and the backend used when the compiled extension is not available.

Signatures mirror the compiled ops (torch.ops.wgan_kernels.*): random ops take (seed,
row_offset, generator) and interpolate, norm_penalty and pair_penalty return only their first
output. Values are computed in the accumulation dtype (float64 for float64 inputs, float32
otherwise).
"""

from __future__ import annotations

import torch

from . import _philox

# penalty_stats returns these values, in this order: the one Python statement of the layout
# (csrc/penalty.h kNumStats must equal its length; wgan_kernels._ops checks it at import).
STAT_NAMES = ("mean_norm", "max_norm", "min_norm", "frac_above", "part_above", "part_below")


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as (B, N) in the accumulation dtype: sample i is row i (all non-batch dims)."""
    n = 1
    for s in t.shape[1:]:
        n *= s
    return t.to(acc_dtype(t.dtype)).reshape(t.shape[0], n)


def _per_sample_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


def _reduce(terms: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return terms
    total = terms.sum()
    if reduction == "sum" or terms.numel() == 0:
        return total
    return total / terms.numel()


def _loss_scale(scale: float, grad_scale: torch.Tensor | None):
    return scale if grad_scale is None else scale * grad_scale.reshape(()).double()


def philox_seed(seed: int | None, generator: torch.Generator | None, device) -> int:
    """The Philox key: an int seed, or (seed=None) a draw from `generator` (else the default
    generator of `device`), the same draw as the CPU kernel's: random64() % 2^63."""
    if seed is not None:
        if generator is not None:
            raise ValueError("pass either seed or generator, not both")
        return seed
    if generator is not None:
        device = generator.device
    return int(torch.empty((), dtype=torch.int64, device=device).random_(generator=generator))


def _check_row_offset(row_offset: int) -> None:
    if row_offset < 0:
        raise ValueError(f"row_offset must be non-negative, got {row_offset}")


def interpolation_weights(batch: int, seed: int, row_offset: int = 0, device=None,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The t_i of interpolate, (B,): U[0, 1) values (float32 numbers) for samples
    row_offset + i of the stream of `seed`."""
    t = torch.from_numpy(_philox.interpolation_weights(batch, _philox.to_uint64(seed), first=row_offset))
    return t.to(device=device, dtype=dtype)


@torch.compiler.disable  # NumPy's Philox is not traceable: under torch.compile, a graph break
def interpolate(real: torch.Tensor, fake: torch.Tensor, seed: int | None, row_offset: int = 0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    _check_row_offset(row_offset)
    key = philox_seed(seed, generator, real.device)
    acc = acc_dtype(real.dtype)
    t = _per_sample_view(interpolation_weights(real.shape[0], key, row_offset, real.device, acc), real)
    return (t * real.to(acc) + (1 - t) * fake.to(acc)).to(real.dtype)


@torch.compiler.disable  # NumPy's Philox is not traceable: under torch.compile, a graph break
def perturb(x: torch.Tensor, scale: float, seed: int | None, row_offset: int = 0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """x + scale * std(x) * z: std over all elements of x (population, not differentiated),
    z ~ N(0, 1) per element; element e (in logical row-major order) is stream element
    row_offset * N + e (N elements per sample), from Philox quad (row_offset * N + e) // 4."""
    _check_row_offset(row_offset)
    key = philox_seed(seed, generator, x.device)
    acc = acc_dtype(x.dtype)
    xa = x.to(acc)
    if x.numel() == 0:
        return x.clone()
    sigma = xa.detach().std(correction=0)
    first = row_offset * (x.numel() // x.shape[0])
    z = torch.from_numpy(_philox.normals(x.numel(), _philox.to_uint64(key), first=first))
    return (xa + (scale * sigma) * z.to(device=x.device, dtype=acc).reshape(x.shape)).to(x.dtype)


def grad_norm(grad: torch.Tensor) -> torch.Tensor:
    """||grad_i||_2 over all non-batch dims; the gradient at grad_i == 0 is 0."""
    return torch.linalg.vector_norm(_rows(grad), dim=1)


def norm_terms(norms: torch.Tensor, target: float, one_sided: bool) -> torch.Tensor:
    d = norms - target
    if one_sided:
        d = d.clamp_min(0)
    return d * d


def norm_penalty(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction):
    """weight * reduce_i(w_i * term(||grad_i|| / s)); see README "The penalties"."""
    norms = grad_norm(grad) / _loss_scale(scale, grad_scale)
    terms = weight * norm_terms(norms.to(acc_dtype(grad.dtype)), target, one_sided)
    if sample_weight is not None:
        terms = terms * sample_weight.detach().reshape(-1).to(terms.dtype)
    return _reduce(terms, reduction)


def penalty_stats(grad, grad_scale, target, scale) -> torch.Tensor:
    """STAT_NAMES of the unscaled per-sample norms; the parts are the mean of (n - target)^2 over
    samples with n above / not above the target (so GP's mean term = part_above + part_below)."""
    with torch.no_grad():
        norms = (grad_norm(grad) / _loss_scale(scale, grad_scale)).to(acc_dtype(grad.dtype))
        if norms.numel() == 0:
            return norms.new_zeros(len(STAT_NAMES))
        d = norms - target
        above = d > 0
        sq = d * d
        return torch.stack([
            norms.mean(), norms.max(), norms.min(), above.to(norms.dtype).mean(),
            torch.where(above, sq, 0).mean(), torch.where(above, 0, sq).mean(),
        ])


def pair_terms(f_real, f_fake, real, fake, kind: str, p: float) -> torch.Tensor:
    """Per-pair WGAN-LP terms with d = ||real_i - fake_i||^p; a pair with real_i == fake_i gives 0."""
    acc = acc_dtype(real.dtype)
    r = torch.linalg.vector_norm(_rows(real) - _rows(fake), dim=1)
    df = f_real.reshape(-1).to(acc) - f_fake.reshape(-1).to(acc)
    apart = r != 0
    d = torch.where(apart, torch.where(apart, r, 1) ** p, 0)
    if kind == "quotient":
        h = (df.abs() / torch.where(apart, d, 1) - 1).clamp_min(0)
        return torch.where(apart, h * h, 0)
    h = (df - d).clamp_min(0)
    return h * h


def pair_penalty(f_real, f_fake, real, fake, kind, weight, p, reduction):
    return _reduce(weight * pair_terms(f_real, f_fake, real, fake, kind, p), reduction)
