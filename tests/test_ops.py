"""Every op against the plain-PyTorch reference on fresh random inputs, including rows that the
CPU kernels split into chunks, and the same results on 1 and 2 threads."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch

import wgan_kernels as wk
from wgan_kernels import reference as ref

from testing import DEVICES, DTYPES, LONG_SHAPE_LAYOUTS, SHAPE_LAYOUTS, close, make

pytestmark = pytest.mark.parametrize("device", DEVICES)


def acc_close(actual, expected, dtype):
    """Outputs accumulated in float32/float64: only the summation order differs."""
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(actual, expected.to(actual.dtype), atol=tol, rtol=tol, equal_nan=True)


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
def test_interpolate_matches_reference(device, dtype, atol, rtol, shape, layout):
    real = make(shape, dtype, device, layout).requires_grad_(True)
    fake = make(shape, dtype, device, layout).requires_grad_(True)
    seed = int(torch.randint(0, 2**62, ()))
    out = wk.interpolate(real, fake, seed=seed)
    expected = ref.interpolate(real, fake, seed)
    assert out.shape == real.shape and out.dtype == dtype
    close(out, expected, atol, rtol)
    upstream = torch.randn_like(out)
    got = torch.autograd.grad(out, (real, fake), upstream)
    want = torch.autograd.grad(expected, (real, fake), upstream)
    for a, b in zip(got, want):
        close(a, b, atol, rtol)


def test_interpolate_mixed_layouts(device):
    real = make((4, 3, 5, 6), torch.float32, device, "channels_last")
    fake = make((4, 3, 5, 6), torch.float32, device, "noncontiguous")
    out = wk.interpolate(real, fake, seed=3)
    close(out, ref.interpolate(real, fake, 3), 1e-6, 1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last)  # follows real, like empty_like


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
def test_perturb_matches_reference(device, dtype, atol, rtol, shape, layout):
    x = make(shape, dtype, device, layout).requires_grad_(True)
    seed = int(torch.randint(0, 2**62, ()))
    out = wk.perturb(x, scale=0.7, seed=seed)
    expected = ref.perturb(x, 0.7, seed)
    assert out.shape == x.shape and out.dtype == dtype
    # float32 transcendental functions of NumPy and libm may differ in the last bit
    close(out, expected, max(atol, 1e-5), max(rtol, 1e-5))
    (g,) = torch.autograd.grad(out, x, torch.ones_like(out))
    close(g, torch.ones_like(x), 0, 0)  # the noise amplitude is not differentiated


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
def test_grad_norm_matches_reference(device, dtype, atol, rtol, shape, layout):
    g = make(shape, dtype, device, layout).requires_grad_(True)
    out = wk.grad_norm(g)
    expected = ref.grad_norm(g)
    assert out.shape == (shape[0],)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    acc_close(out, expected, dtype)
    upstream = torch.randn_like(out)
    close(torch.autograd.grad(out, g, upstream)[0], torch.autograd.grad(expected, g, upstream)[0], atol, rtol)


PENALTY_OPTIONS = [
    dict(),  # GP
    dict(one_sided=True, weight=10.0),  # LP
    dict(target=0.0, weight=5.0),  # R1
    dict(target=2.0, one_sided=True, reduction="sum"),
    dict(one_sided=True, reduction="none", weight=3.0),
    dict(grad_scale=1024.0, one_sided=True),
    dict(grad_scale="tensor", weight=2.0),
    dict(sample_weight=True, reduction="mean"),
]


def _penalty_kwargs(options, batch, device):
    kwargs = dict(options)
    if kwargs.get("grad_scale") == "tensor":
        kwargs["grad_scale"] = torch.tensor(65536.0, device=device)
    if kwargs.pop("sample_weight", False):
        kwargs["sample_weight"] = torch.rand(batch, device=device)
    return kwargs


def _ref_penalty(grad, target=1.0, one_sided=False, weight=1.0, grad_scale=None, sample_weight=None, reduction="mean"):
    if isinstance(grad_scale, torch.Tensor):
        return ref.norm_penalty(grad, grad_scale, sample_weight, target, one_sided, weight, 1.0, reduction)
    scale = 1.0 if grad_scale is None else grad_scale
    return ref.norm_penalty(grad, None, sample_weight, target, one_sided, weight, scale, reduction)


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
@pytest.mark.parametrize("options", PENALTY_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "gp")
def test_norm_penalty_matches_reference(device, dtype, atol, rtol, shape, layout, options):
    scale = 1.0
    if isinstance(options.get("grad_scale"), float):
        scale = options["grad_scale"]
    elif options.get("grad_scale") == "tensor":
        scale = 65536.0
    if dtype == torch.float16 and scale > 1024:
        pytest.skip("scaled float16 gradient would overflow in the test input itself")
    # norms spread around the target so both branches of the one-sided hinge are used
    g = make(shape, dtype, device, layout, scale=scale * 0.4).requires_grad_(True)
    kwargs = _penalty_kwargs(options, shape[0], device)
    out = wk.norm_penalty(g, **kwargs)
    expected = _ref_penalty(g, **kwargs)
    assert out.shape == expected.shape
    acc_close(out, expected, dtype)
    upstream = torch.randn_like(out)
    got = torch.autograd.grad(out, g, upstream)[0]
    want = torch.autograd.grad(expected, g, upstream)[0]
    assert got.shape == g.shape and got.dtype == g.dtype
    close(got, want, atol, rtol)


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
def test_penalty_stats_matches_reference(device, dtype, atol, rtol, shape, layout):
    g = make(shape, dtype, device, layout, scale=0.4)
    stats = wk.penalty_stats(g, target=1.0)
    expected = ref.penalty_stats(g, None, 1.0, 1.0)
    acc_close(torch.stack(list(stats)), expected, dtype)
    if shape[0] > 0:  # the parts add up to the GP term, the upper part is the LP term
        gp = _ref_penalty(g)
        lp = _ref_penalty(g, one_sided=True)
        acc_close(stats.part_above + stats.part_below, gp, dtype)
        acc_close(stats.part_above, lp, dtype)


PAIR_OPTIONS = list(itertools.product(["quotient", "transport"], [1.0, 2.0, 0.5], ["mean", "sum", "none"]))


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", SHAPE_LAYOUTS)
@pytest.mark.parametrize("kind,p,reduction", PAIR_OPTIONS)
def test_pair_penalty_matches_reference(device, dtype, atol, rtol, shape, layout, kind, p, reduction):
    batch = shape[0]
    real = make(shape, dtype, device, layout, scale=0.1).requires_grad_(True)
    fake = make(shape, dtype, device, layout, scale=0.1).requires_grad_(True)
    # critic gaps of the size of the distances, so some pairs violate the constraint and some don't
    dist = ref.grad_norm(real.detach() - fake.detach()).float()
    f_real = (2 * torch.rand(batch, 1, device=device) * dist.reshape(batch, 1).to(device) ** p).requires_grad_(True)
    f_fake = torch.zeros(batch, device=device).requires_grad_(True)
    out = wk.pair_penalty(f_real, f_fake, real, fake, kind=kind, p=p, weight=2.0, reduction=reduction)
    expected = ref.pair_penalty(f_real, f_fake, real, fake, kind, 2.0, p, reduction)
    acc_close(out, expected, dtype)
    upstream = torch.randn_like(out)
    inputs = (f_real, f_fake, real, fake)
    got = torch.autograd.grad(out, inputs, upstream)
    want = torch.autograd.grad(expected, inputs, upstream)
    for a, b, t in zip(got, want, inputs):
        assert a.shape == t.shape and a.dtype == t.dtype
        close(a, b, max(atol, 1e-5), max(rtol, 1e-5))


def test_pair_penalty_identical_pair_is_zero_not_nan(device):
    x = torch.randn(4, 3, device=device, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    f_real = torch.randn(4, device=device, requires_grad=True)
    f_fake = torch.randn(4, device=device, requires_grad=True)
    for kind in ("quotient", "transport"):
        for p in (0.5, 1.0, 2.0):
            out = wk.pair_penalty(f_real, f_fake, x, y, kind=kind, p=p, reduction="none")
            grads = torch.autograd.grad(out.sum(), (f_real, f_fake, x, y))
            assert all(torch.isfinite(g).all() for g in grads)
            if kind == "quotient":
                assert torch.equal(out, torch.zeros_like(out))


# ---------------------------------------------------------------------------------------
# Rows longer than the kernels' chunk: split rows, partial sums combined across tasks


def _grads(out, inputs, upstream):
    return torch.autograd.grad(out, inputs, upstream)


@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", LONG_SHAPE_LAYOUTS)
def test_split_rows_match_reference(device, dtype, atol, rtol, shape, layout):
    batch, n = shape[0], 1
    for s in shape[1:]:
        n *= s
    real = make(shape, dtype, device, layout).requires_grad_(True)
    fake = make(shape, dtype, device, layout).requires_grad_(True)
    # interpolate and perturb, forward and backward
    out = wk.interpolate(real, fake, seed=31, row_offset=5)
    expected = ref.interpolate(real, fake, 31, 5)
    close(out, expected, atol, rtol)
    upstream = torch.randn_like(out)
    for a, b in zip(_grads(out, (real, fake), upstream), _grads(expected, (real, fake), upstream)):
        close(a, b, atol, rtol)
    close(wk.perturb(real, scale=0.7, seed=32, row_offset=1), ref.perturb(real, 0.7, 32, 1),
          max(atol, 1e-5), max(rtol, 1e-5))
    # grad_norm, norm_penalty and penalty_stats, with norms around the target
    g = make(shape, dtype, device, layout, scale=n ** -0.5).requires_grad_(True)
    out, expected = wk.grad_norm(g), ref.grad_norm(g)
    acc_close(out, expected, dtype)
    up = torch.randn_like(out)
    close(_grads(out, g, up)[0], _grads(expected, g, up)[0], atol, rtol)
    weights = torch.rand(batch, device=device)
    for options in (dict(), dict(one_sided=True, weight=10.0, reduction="none"),
                    dict(grad_scale="tensor", sample_weight=True, reduction="sum", target=0.0)):
        kwargs = _penalty_kwargs(options, batch, device)
        if "grad_scale" in kwargs:
            kwargs["grad_scale"] = torch.tensor(1.0, device=device)
        out, expected = wk.norm_penalty(g, **kwargs), _ref_penalty(g, **kwargs)
        acc_close(out, expected, dtype)
        up = torch.randn_like(out)
        close(_grads(out, g, up)[0], _grads(expected, g, up)[0], atol, rtol)
    acc_close(torch.stack(list(wk.penalty_stats(g.detach()))), ref.penalty_stats(g.detach(), None, 1.0, 1.0), dtype)
    # pair penalties, with critic gaps of the size of the distances
    dist = ref.grad_norm(real.detach() - fake.detach()).float()
    f_real = (2 * torch.rand(batch, device=device) * dist).requires_grad_(True)
    f_fake = torch.zeros(batch, 1, device=device, requires_grad=True)
    inputs = (f_real, f_fake, real, fake)
    for kind, p, reduction in (("quotient", 1.0, "mean"), ("transport", 1.0, "sum"), ("quotient", 2.0, "none"),
                               ("transport", 2.0, "mean")):
        # the terms' derivatives are differences of the critic gap and the distance ||real_i - fake_i||^p,
        # a sum over the whole row: their rounding is relative to the distance
        eps = 1e-13 if dtype == torch.float64 else 4e-6
        pair_atol = max(atol, 1e-5 if dtype != torch.float64 else 0, eps * float(dist.max()) ** p)
        out = wk.pair_penalty(*inputs, kind=kind, p=p, weight=weights[0].item(), reduction=reduction)
        expected = ref.pair_penalty(*inputs, kind, weights[0].item(), p, reduction)
        torch.testing.assert_close(out, expected.to(out.dtype), atol=pair_atol, rtol=2e-5)
        up = torch.randn_like(out)
        for a, b in zip(_grads(out, inputs, up), _grads(expected, inputs, up)):
            close(a, b, pair_atol, max(rtol, 1e-5))


# ---------------------------------------------------------------------------------------
# Results do not depend on the number of threads


def _all_results(real, fake, g, f_real, f_fake):
    results = []
    x_hat = wk.interpolate(real, fake, seed=3)
    results += [x_hat, *torch.autograd.grad(x_hat, (real, fake), torch.ones_like(x_hat))]
    results.append(wk.perturb(real, scale=0.5, seed=4))
    for out in (wk.grad_norm(g), wk.norm_penalty(g, one_sided=True), wk.norm_penalty(g, reduction="none")):
        results += [out, torch.autograd.grad(out.sum(), g)[0]]
    results += list(wk.penalty_stats(g.detach()))
    for kind in ("quotient", "transport"):
        out = wk.pair_penalty(f_real, f_fake, real, fake, kind=kind)
        results += [out, *torch.autograd.grad(out, (f_real, f_fake, real, fake))]
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(4, 70000), (3000, 40)], ids=["split-rows", "many-rows"])
def test_same_results_on_1_and_2_threads(device, dtype, shape):
    if device != "cpu":
        pytest.skip("torch.set_num_threads concerns the CPU kernels")
    real, fake, g = (make(shape, dtype, device, scale=0.05).requires_grad_(True) for _ in range(3))
    f_real = torch.randn(shape[0], device=device, requires_grad=True)
    f_fake = torch.randn(shape[0], device=device, requires_grad=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _all_results(real, fake, g, f_real, f_fake)
        torch.set_num_threads(2)
        two = _all_results(real, fake, g, f_real, f_fake)
    finally:
        torch.set_num_threads(threads)
    assert len(one) == len(two)
    for i, (a, b) in enumerate(zip(one, two)):
        assert torch.equal(a, b), i


# ---------------------------------------------------------------------------------------
# float16 on CPU: the F16C conversions and the scalar ones (CPUs without F16C) agree bit for bit

F16_SCRIPT = r"""
import sys, torch, wgan_kernels as wk
torch.manual_seed(0)
shape = (3, 2 * 512 * 40 + 7)  # many conversion stages, and a tail that is not a multiple of 8
real, fake = (torch.randn(shape).half().requires_grad_() for _ in range(2))
g = (torch.randn(shape) * shape[1] ** -0.5).half().requires_grad_()
f_real, f_fake = torch.rand(3, requires_grad=True), torch.zeros(3, requires_grad=True)
out = []
x_hat = wk.interpolate(real, fake, seed=5, row_offset=3)
out += [x_hat, *torch.autograd.grad(x_hat, (real, fake), torch.randn_like(x_hat))]
out.append(wk.perturb(real, scale=0.7, seed=6, row_offset=1))
for y in (wk.grad_norm(g), wk.norm_penalty(g, one_sided=True, reduction="none")):
    out += [y, *torch.autograd.grad(y.sum(), g)]
out += list(wk.penalty_stats(g.detach()))
pair = wk.pair_penalty(f_real, f_fake, real, fake, kind="quotient")
out += [pair, *torch.autograd.grad(pair, (f_real, f_fake, real, fake))]
torch.save([t.detach() for t in out], sys.argv[1])
"""


def test_float16_scalar_and_f16c_conversions_agree(device, tmp_path):
    if device != "cpu":
        pytest.skip("CPU kernels")
    results = []
    for name, extra in (("f16c", {}), ("scalar", {"WGAN_KERNELS_NO_F16C": "1"})):
        path = tmp_path / f"{name}.pt"
        env = {k: v for k, v in os.environ.items() if k != "WGAN_KERNELS_NO_F16C"} | extra
        done = subprocess.run([sys.executable, "-c", F16_SCRIPT, str(path)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results.append(torch.load(path))
    fast, scalar = results
    assert len(fast) == len(scalar) == 19
    for i, (a, b) in enumerate(zip(fast, scalar)):
        assert a.dtype == b.dtype and torch.equal(a, b), f"output {i} differs"
