"""The baselines every benchmark compares against, and the correctness checks run before timing.

One place for: the eager compositions users write today, their torch.compile versions, the
library's reference backend (wgan_kernels.reference) and the fused ops (wgan_kernels.*); the
inputs each op is benchmarked on; the bytes each op must move; and the tolerances.
report.py, the pytest-benchmark files and tests/test_benchmarks.py all import from here.

Benchmark configuration of each op (the library defaults):
  interpolate    forward, one t_i ~ U[0, 1) per sample
  perturb        forward, DRAGAN x + 0.5 * std(x) * z
  grad_norm      forward, (B,) per-sample L2 norms
  norm_penalty   forward + backward to the gradient, GP term (n - 1)^2, mean, weight 1
  pair_penalty   forward + backward to all four inputs, WGAN-LP quotient (eq. 7), p = 1, mean
  penalty_stats  forward (6 diagnostics of the per-sample norms, target 1)
"""

from __future__ import annotations

import math
from typing import Callable

import torch

import wgan_kernels as wk
from wgan_kernels import reference

OPS = ("interpolate", "perturb", "grad_norm", "norm_penalty", "pair_penalty", "penalty_stats")
VARIANTS = ("eager", "compile", "reference", "fused")
BACKWARD_OPS = ("norm_penalty", "pair_penalty")

# Full tensor passes over one (B, *shape) tensor that each op must make at least; bytes moved =
# passes * B * N * itemsize. interpolate: read real, fake, write out. perturb: read x for std,
# read x again and write out. grad_norm / penalty_stats: read grad. norm_penalty fwd+bwd: read
# grad (norms), read grad again and write d penalty / d grad. pair_penalty fwd+bwd: read real,
# fake (distances), read both again and write both gradients. clone: read + write.
TENSOR_PASSES = {
    "interpolate": 3,
    "perturb": 3,
    "grad_norm": 1,
    "norm_penalty": 3,
    "pair_penalty": 6,
    "penalty_stats": 1,
    "clone": 2,
}

# How many (B, *shape) tensors an op holds at once at most (inputs, outputs, gradients), used
# to skip sizes that would not fit in memory.
LIVE_TENSORS = {
    "interpolate": 3,
    "perturb": 3,
    "grad_norm": 1,
    "norm_penalty": 3,
    "pair_penalty": 7,
    "penalty_stats": 1,
}

# (rtol, atol relative to the largest reference magnitude) when comparing with the float32
# reference. bfloat16 / float16 eager compositions compute in the input dtype, hence loose.
TOLERANCES = {
    torch.float32: (2e-4, 2e-5),
    torch.float64: (1e-10, 1e-12),
    torch.bfloat16: (3e-2, 1e-2),
    torch.float16: (5e-3, 2e-3),
}

# reference.perturb draws its normals in numpy; beyond this many elements it is too slow to time.
REFERENCE_PERTURB_MAX_NUMEL = 1 << 22

SEED = 1234


# ---------------------------------------------------------------------------------------
# The eager compositions users write today


def _per_sample_shape(x: torch.Tensor) -> tuple[int, ...]:
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def eager_interpolate(real, fake, eps=None):
    """WGAN-GP's interpolates: one eps per sample."""
    if eps is None:
        eps = torch.rand(_per_sample_shape(real), device=real.device, dtype=real.dtype)
    return eps * real + (1 - eps) * fake


def eager_perturb(x, scale: float = 0.5, noise=None):
    """DRAGAN: x + 0.5 * x.std() * N(0, 1) (the unbiased std users write; the library uses the
    population std, a factor sqrt(N / (N - 1)) apart)."""
    if noise is None:
        noise = torch.randn_like(x)
    return x + scale * x.std() * noise


def eager_grad_norm(g):
    return g.flatten(1).norm(2, dim=1)


def eager_norm_penalty(g, target: float = 1.0, one_sided: bool = False, weight: float = 1.0):
    d = g.flatten(1).norm(2, dim=1) - target
    if one_sided:
        d = torch.relu(d)
    return weight * (d**2).mean()


def eager_pair_penalty(f_real, f_fake, real, fake, kind: str = "quotient", weight: float = 1.0, p: float = 1.0):
    d = (real - fake).flatten(1).norm(2, dim=1) ** p
    df = f_real.reshape(-1) - f_fake.reshape(-1)
    if kind == "quotient":
        terms = torch.relu(df.abs() / d - 1) ** 2
    else:
        terms = torch.clamp(df - d, min=0) ** 2
    return weight * terms.mean()


def eager_penalty_stats(g, target: float = 1.0):
    n = g.flatten(1).norm(2, dim=1).float()
    d = n - target
    above = d > 0
    return torch.stack([
        n.mean(), n.max(), n.min(), above.float().mean(),
        (d.clamp(min=0) ** 2).mean(), (d.clamp(max=0) ** 2).mean(),
    ])


EAGER = {
    "interpolate": eager_interpolate,
    "perturb": eager_perturb,
    "grad_norm": eager_grad_norm,
    "norm_penalty": eager_norm_penalty,
    "pair_penalty": eager_pair_penalty,
    "penalty_stats": eager_penalty_stats,
}

# The library's reference backend, called as the library calls it (explicit seed / offset).
REFERENCE = {
    "interpolate": lambda real, fake: reference.interpolate(real, fake, SEED, 0),
    "perturb": lambda x: reference.perturb(x, 0.5, SEED, 0),
    "grad_norm": reference.grad_norm,
    "norm_penalty": lambda g: reference.norm_penalty(g, None, None, 1.0, False, 1.0, 1.0, "mean"),
    "pair_penalty": lambda fr, ff, r, f: reference.pair_penalty(fr, ff, r, f, "quotient", 1.0, 1.0, "mean"),
    "penalty_stats": lambda g: reference.penalty_stats(g, None, 1.0, 1.0),
}

# The fused ops through the public API (seed=None draws from PyTorch's generator, as users call it).
FUSED = {
    "interpolate": wk.interpolate,
    "perturb": wk.perturb,
    "grad_norm": wk.grad_norm,
    "norm_penalty": wk.norm_penalty,
    "pair_penalty": wk.pair_penalty,
    "penalty_stats": lambda g: torch.stack(tuple(wk.penalty_stats(g))),
}


def compile_eager(op: str, dynamic: bool | None = True) -> Callable:
    """torch.compile of the eager composition. dynamic=True (the default here) compiles one
    shape-generic graph per op, dtype, rank and grad mode and reuses it across batch and sample
    sizes: on a 2-core machine a static compile per size (dynamic=False) would take most of the
    benchmark's time. Recompiles are allowed either way."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), 1024))
    return torch.compile(EAGER[op], dynamic=dynamic)


def op_functions(op: str, variants=VARIANTS, compiled: Callable | None = None) -> dict[str, Callable]:
    """variant -> function; `compiled` reuses an existing compile_eager(op)."""
    table = {"eager": EAGER, "reference": REFERENCE, "fused": FUSED}
    return {v: ((compiled or compile_eager(op)) if v == "compile" else table[v][op]) for v in variants}


# ---------------------------------------------------------------------------------------
# Inputs and runners


def numel_per_sample(shape) -> int:
    return math.prod(shape)


def make_inputs(op: str, batch: int, shape, dtype=torch.float32, device="cpu", seed: int = 0) -> dict:
    """Fresh inputs for op, created in place (no full-size temporaries, for the memory benchmark).
    Gradients get per-sample norms around 1 (spread over [0.5, 1.5)) like a trained critic's;
    pair inputs get critic-value gaps comparable to the distances, so both sides of max(0, .) occur."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    full = (batch, *shape)
    n = numel_per_sample(shape)

    def randn():
        # filled in 4M-element chunks: a whole-tensor normal_ on CPU allocates a temporary as large
        # as the tensor, which would raise the RSS high-water mark the memory benchmark reads.
        t = torch.empty(full, dtype=dtype, device=device)
        cpu = torch.device(device).type == "cpu"
        for chunk in t.view(-1).split(1 << 22):
            chunk.normal_(generator=gen) if cpu else chunk.normal_()
        return t

    def per_sample(lo, hi):
        v = torch.rand(batch, generator=gen) * (hi - lo) + lo
        return v.to(device=device)

    if op == "interpolate":
        return {"real": randn(), "fake": randn()}
    if op == "perturb":
        return {"x": randn()}
    if op in ("grad_norm", "norm_penalty", "penalty_stats"):
        g = randn()
        g.mul_((per_sample(0.5, 1.5) / math.sqrt(max(n, 1))).to(dtype).reshape(batch, *([1] * len(shape))))
        return {"g": g}
    if op == "pair_penalty":
        scale = math.sqrt(2 * max(n, 1))
        f_real = (torch.randn(batch, generator=gen) * scale).to(device=device, dtype=dtype)
        f_fake = (torch.randn(batch, generator=gen) * scale).to(device=device, dtype=dtype)
        return {"f_real": f_real, "f_fake": f_fake, "real": randn(), "fake": randn()}
    raise ValueError(f"unknown op {op!r}")


def runner(op: str, fn: Callable, inputs: dict) -> Callable[[], object]:
    """A zero-argument callable doing one benchmarked call of op with fn: the forward, and for
    BACKWARD_OPS also the backward to every input (torch.autograd.grad, no accumulation)."""
    args = list(inputs.values())
    if op not in BACKWARD_OPS:
        def run():
            with torch.no_grad():
                return fn(*args)
        return run
    leaves = [a.detach().requires_grad_(True) for a in args]

    def run_backward():
        out = fn(*leaves)
        return out, torch.autograd.grad(out, leaves)
    return run_backward


def bytes_moved(op: str, batch: int, shape, dtype) -> int:
    return TENSOR_PASSES[op] * batch * numel_per_sample(shape) * torch.empty((), dtype=dtype).element_size()


def fits(op: str, batch: int, shape, dtype, max_tensor_bytes: float, max_total_bytes: float) -> bool:
    one = batch * numel_per_sample(shape) * torch.empty((), dtype=dtype).element_size()
    # eager compositions hold a few extra full-size temporaries; budget 2 more.
    return one <= max_tensor_bytes and (LIVE_TENSORS[op] + 2) * one <= max_total_bytes


def variant_available(op: str, variant: str, batch: int, shape) -> str | None:
    """None when the variant can be timed at this size, else why not."""
    if variant == "reference" and op == "perturb" and batch * numel_per_sample(shape) > REFERENCE_PERTURB_MAX_NUMEL:
        return "reference perturb draws normals in numpy; too slow at this size"
    return None


# ---------------------------------------------------------------------------------------
# Correctness


class CheckFailed(AssertionError):
    pass


def _close(name: str, actual, expected, dtype) -> None:
    rtol, atol_rel = TOLERANCES[dtype]
    a = actual.detach().double().cpu()
    e = expected.detach().double().cpu()
    if a.shape != e.shape:
        raise CheckFailed(f"{name}: shape {tuple(a.shape)} != expected {tuple(e.shape)}")
    atol = atol_rel * (1.0 + (e.abs().max().item() if e.numel() else 0.0))
    if not torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=False):
        err = (a - e).abs().max().item()
        raise CheckFailed(f"{name}: max abs error {err:.3g} beyond rtol {rtol:g}, atol {atol:.3g} ({dtype})")


def _check_interpolate_structure(name, out, real, fake, dtype) -> None:
    """out_i = t_i real_i + (1 - t_i) fake_i for one t_i in [0, 1] per sample (any RNG)."""
    r, f, o = (t.detach().double().reshape(t.shape[0], -1).cpu() for t in (real, fake, out))
    diff = r - f
    t = ((o - f) * diff).sum(1) / (diff * diff).sum(1).clamp_min(1e-30)
    rtol, _ = TOLERANCES[dtype]
    if not bool(((t >= -rtol) & (t <= 1 + rtol)).all()):
        raise CheckFailed(f"{name}: per-sample weights outside [0, 1]: {t.min().item():.3g}..{t.max().item():.3g}")
    _close(name, o, t[:, None] * r + (1 - t[:, None]) * f, dtype)
    if t.numel() >= 16 and not (0.15 < t.mean().item() < 0.85):
        raise CheckFailed(f"{name}: per-sample weights do not look U[0, 1): mean {t.mean().item():.3f}")


def _check_perturb_structure(name, out, x, dtype) -> None:
    """(out - x) / (0.5 std(x)) looks N(0, 1) (any RNG, either std convention)."""
    xd = x.detach().double().cpu()
    z = (out.detach().double().cpu() - xd) / (0.5 * xd.std(correction=0))
    bound = 6.0 / math.sqrt(z.numel()) + 3 * TOLERANCES[dtype][0]
    if abs(z.mean().item()) > bound or abs(z.std().item() - 1) > bound + 1e-3:
        raise CheckFailed(f"{name}: noise not N(0, 1): mean {z.mean().item():.3g}, std {z.std().item():.3g}")


def check_op(op: str, batch: int, shape, dtype=torch.float32, device="cpu", variants=VARIANTS, fns=None) -> None:
    """Compare every variant of op with the reference backend on fresh inputs (float32 reference
    for half inputs). Random ops: fused vs reference with the same seed must agree; every variant's
    output must have the op's structure (per-sample convex weights / N(0, 1) noise).
    Raises CheckFailed naming the op, variant and error."""
    fns = fns if fns is not None else op_functions(op, variants)
    inputs = make_inputs(op, batch, shape, dtype, device, seed=7)
    args = list(inputs.values())
    label = f"{op} B={batch} shape={tuple(shape)} {str(dtype).replace('torch.', '')}"

    if op == "interpolate":
        real, fake = args
        _close(f"{label} fused(seed) vs reference", wk.interpolate(real, fake, seed=SEED), REFERENCE[op](real, fake), dtype)
        eps = reference.interpolation_weights(batch, SEED, 0, device, dtype).reshape(_per_sample_shape(real))
        _close(f"{label} eager(eps of reference) vs reference", eager_interpolate(real, fake, eps), REFERENCE[op](real, fake), dtype)
        for v, fn in fns.items():
            _check_interpolate_structure(f"{label} {v}", runner(op, fn, inputs)(), real, fake, dtype)
        return
    if op == "perturb":
        (x,) = args
        if x.numel() <= REFERENCE_PERTURB_MAX_NUMEL:
            _close(f"{label} fused(seed) vs reference", wk.perturb(x, seed=SEED), REFERENCE[op](x), dtype)
        for v, fn in fns.items():
            if variant_available(op, v, batch, shape) is None:
                _check_perturb_structure(f"{label} {v}", runner(op, fn, inputs)(), x, dtype)
        return

    # deterministic ops: value (and gradients) against the float32 reference
    ref_args = [a.detach().float().requires_grad_(op in BACKWARD_OPS) for a in args]
    expected = REFERENCE[op](*ref_args)
    expected_grads = torch.autograd.grad(expected, ref_args) if op in BACKWARD_OPS else ()
    for v, fn in fns.items():
        if op in BACKWARD_OPS:
            out, grads = runner(op, fn, inputs)()
        else:
            out, grads = runner(op, fn, inputs)(), ()
        _close(f"{label} {v} value", out, expected, dtype)
        for name, got, exp in zip(inputs, grads, expected_grads):
            _close(f"{label} {v} d/d{name}", got, exp, dtype)
