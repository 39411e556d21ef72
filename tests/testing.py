"""What every op test parametrizes over: devices, dtypes with tolerances, odd shapes, layouts."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# (dtype, atol, rtol) for outputs in the input dtype; accumulated outputs are float32 anyway.
DTYPES = [
    pytest.param(torch.float32, 1e-5, 1e-5, id="float32"),
    pytest.param(torch.float64, 1e-12, 1e-12, id="float64"),
    pytest.param(torch.float16, 2e-3, 2e-3, id="float16"),
    pytest.param(torch.bfloat16, 1.6e-2, 1.6e-2, id="bfloat16"),
]

SHAPES = [(1,), (3, 5), (7, 3, 9, 11), (2, 1, 1, 1), (1, 4, 6), (0, 3, 4), (5, 0)]

# Rows longer than the CPU kernels' chunk (csrc/cpu/rows.h kChunk = 2^15 elements), so that one
# sample is split across tasks and its partial sums are combined: 2 chunks, 3 chunks (4-D, for
# channels_last), and one element past a chunk boundary.
KCHUNK = 1 << 15
LONG_SHAPE_LAYOUTS = [
    pytest.param((3, 40000), "contiguous", id="3x40000-contiguous"),
    pytest.param((2, 3, 150, 150), "channels_last", id="2x3x150x150-channels_last"),
    pytest.param((2, 2 * KCHUNK + 1), "noncontiguous", id=f"2x{2 * KCHUNK + 1}-noncontiguous"),
]

LAYOUTS = ["contiguous", "noncontiguous", "channels_last"]

# every shape in every layout it can have (channels_last is for 4-D tensors)
SHAPE_LAYOUTS = [
    pytest.param(shape, layout, id=f"{'x'.join(map(str, shape))}-{layout}")
    for shape in SHAPES
    for layout in LAYOUTS
    if layout != "channels_last" or len(shape) == 4
]


def make(shape, dtype, device, layout="contiguous", scale=1.0, generator=None):
    """A fresh random tensor of `shape` in the given memory layout."""
    if layout == "noncontiguous":  # every other element of a wider tensor along the last dim
        wide_shape = (*shape[:-1], shape[-1] * 2)
        wide = (torch.randn(wide_shape, generator=generator) * scale).to(device=device, dtype=dtype)
        return wide[..., ::2]
    t = (torch.randn(shape, generator=generator) * scale).to(device=device, dtype=dtype)
    if layout == "channels_last":
        if len(shape) != 4:
            pytest.skip("channels_last needs a 4-D tensor")
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def close(actual, expected, atol, rtol):
    torch.testing.assert_close(actual, expected.to(actual.dtype), atol=atol, rtol=rtol, equal_nan=True)


# ---------------------------------------------------------------------------------------
# torch.compile checks shared by the CPU tests and their CUDA twins


def check_compile_fullgraph_penalty(device: str, backend: str = "inductor") -> None:
    """The public ops in one fullgraph-compiled penalty: same value and gradients as eager."""
    import wgan_kernels as wk

    def penalty_fn(real, fake, grad, f_real, f_fake):
        points = wk.interpolate(real, fake, seed=1234)
        lp = wk.norm_penalty(grad, one_sided=True, weight=10.0)
        pair = wk.pair_penalty(f_real, f_fake, real, fake, kind="transport")
        return lp + pair + wk.grad_norm(grad).mean() + points.mean()

    compiled = torch.compile(penalty_fn, fullgraph=True, backend=backend)
    args = [torch.randn(6, 2, 3, device=device, requires_grad=True) for _ in range(3)] + [
        torch.randn(6, device=device, requires_grad=True) for _ in range(2)]
    eager = penalty_fn(*args)
    got = compiled(*args)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(torch.autograd.grad(got, args), torch.autograd.grad(eager, args))


def check_compile_draws_seed_none(device: str, backend: str = "inductor") -> None:
    """seed=None is drawn inside the kernel, so it compiles without a graph break, each call (and
    each of two calls in one graph) gets a fresh draw, and torch.manual_seed replays eager's."""
    from wgan_kernels import _ops

    def draws(x, y):
        return (_ops.interpolate(x, y, None), _ops.interpolate(x, y, None),
                _ops.perturb(x, 0.5, None, 2), _ops.perturb(x, 0.5, None, 2))

    x, y = torch.randn(8, 3, device=device), torch.randn(8, 3, device=device)
    compiled = torch.compile(draws, fullgraph=True, backend=backend)
    torch.manual_seed(5)
    got = compiled(x, y)
    again = compiled(x, y)
    torch.manual_seed(5)
    want = draws(x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert not torch.equal(got[0], got[1]) and not torch.equal(got[2], got[3])
    assert not torch.equal(got[0], again[0])
