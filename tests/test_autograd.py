"""gradcheck in float64, the backward at zero gradient, NaN/inf propagation, opcheck and
torch.compile(fullgraph=True)."""

from __future__ import annotations

import pytest
import torch

import wgan_kernels as wk
from wgan_kernels import _backend

from testing import DEVICES

compiled_only = pytest.mark.skipif(_backend._C is None, reason="needs the compiled extension")


def f64(*shape, scale=1.0, device="cpu"):
    return (torch.randn(*shape, dtype=torch.float64, device=device) * scale).requires_grad_(True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 3), (4, 2, 3, 5), (3, 7)])
def test_gradcheck(device, shape):
    real, fake, x = f64(*shape, device=device), f64(*shape, device=device), f64(*shape, device=device)
    assert torch.autograd.gradcheck(lambda a, b: wk.interpolate(a, b, seed=11), (real, fake))
    # perturb is not gradchecked: its noise amplitude std(x) is deliberately not differentiated
    # (test_ops checks that its gradient is the identity).
    assert torch.autograd.gradcheck(wk.grad_norm, (x,))
    g = f64(*shape, scale=0.5, device=device)
    w = torch.rand(shape[0], dtype=torch.float64, device=device)
    for kwargs in (
        dict(),
        dict(one_sided=True, weight=10.0),
        dict(target=0.0),
        dict(reduction="none", grad_scale=8.0),
        dict(reduction="sum", sample_weight=w, grad_scale=torch.tensor(4.0, device=device)),
    ):
        assert torch.autograd.gradcheck(lambda a: wk.norm_penalty(a, **kwargs), (g,))
    a, b = f64(*shape, scale=0.1, device=device), f64(*shape, scale=0.1, device=device)
    f_real, f_fake = f64(shape[0], device=device), f64(shape[0], 1, device=device)
    for kind in ("quotient", "transport"):
        for p in (1.0, 2.0):
            assert torch.autograd.gradcheck(
                lambda *t: wk.pair_penalty(*t, kind=kind, p=p, reduction="none"), (f_real, f_fake, a, b)
            )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_backward_at_zero_gradient_is_finite(device, dtype):
    g = torch.zeros(4, 3, 5, dtype=dtype, device=device, requires_grad=True)
    for kwargs in (dict(), dict(one_sided=True), dict(target=0.0), dict(grad_scale=1024.0)):
        penalty = wk.norm_penalty(g, **kwargs)
        (grad,) = torch.autograd.grad(penalty, g)
        assert torch.isfinite(grad).all() and torch.equal(grad, torch.zeros_like(grad))
    (grad,) = torch.autograd.grad(wk.grad_norm(g).sum(), g)
    assert torch.equal(grad, torch.zeros_like(grad))
    # the GP penalty of a zero gradient is target^2
    assert wk.norm_penalty(g, weight=3.0).item() == 3.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_propagate(device, bad):
    g = torch.randn(3, 4, device=device)
    g[1, 2] = bad
    g.requires_grad_(True)
    penalty = wk.norm_penalty(g, reduction="none")
    assert torch.isfinite(penalty[[0, 2]]).all() and not torch.isfinite(penalty[1])
    (grad,) = torch.autograd.grad(penalty.sum(), g)
    assert not torch.isfinite(grad[1]).all() and torch.isfinite(grad[[0, 2]]).all()
    assert not torch.isfinite(wk.norm_penalty(g)).item()
    assert not torch.isfinite(wk.grad_norm(g)[1])
    stats = wk.penalty_stats(g)
    assert not torch.isfinite(stats.mean_norm)
    x = torch.randn(3, 4, device=device)
    x[0, 0] = bad
    assert not torch.isfinite(wk.interpolate(x, torch.zeros_like(x), seed=1)[0, 0])
    pair = wk.pair_penalty(torch.ones(3, device=device), torch.zeros(3, device=device), x, torch.zeros_like(x),
                           reduction="none")
    if bad != bad:  # NaN distance -> NaN term (an infinite distance is simply no constraint)
        assert torch.isnan(pair[0])
    assert torch.isfinite(pair[1:]).all()


def test_fp16_gradient_whose_squares_overflow_fp16():
    g = torch.full((2, 64), 300.0, dtype=torch.float16)  # 300^2 > 65504
    expected = 300.0 * 8.0  # sqrt(64 * 300^2)
    assert torch.allclose(wk.grad_norm(g), torch.full((2,), expected))
    assert torch.allclose(wk.norm_penalty(g, grad_scale=300.0 * 8.0), torch.tensor(0.0))


def test_size_zero_batch_gives_empty_or_zero():
    g = torch.randn(0, 3, requires_grad=True)
    assert wk.grad_norm(g).shape == (0,)
    penalty = wk.norm_penalty(g)
    assert penalty.item() == 0.0
    penalty.backward()
    assert g.grad.shape == (0, 3)
    assert wk.norm_penalty(g, reduction="none").shape == (0,)
    assert all(v.item() == 0 for v in wk.penalty_stats(g))
    assert wk.interpolate(g, g, seed=0).shape == (0, 3)
    assert wk.pair_penalty(torch.zeros(0), torch.zeros(0), g, g).item() == 0.0


# ---------------------------------------------------------------------------------------
# torch.library.opcheck and torch.compile


def _opcheck_cases():
    """(op, args, test_utils or None for all); inputs that require grad exercise the Autograd kernels."""
    ops = torch.ops.wgan_kernels
    g = torch.randn(5, 3, 4, requires_grad=True)
    real, fake = torch.randn(5, 3, 4, requires_grad=True), torch.randn(5, 3, 4, requires_grad=True)
    f_real, f_fake = torch.randn(5, requires_grad=True), torch.randn(5, 1, requires_grad=True)
    cl = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    scale = torch.tensor(2.0)
    w = torch.rand(5)
    t = torch.rand(5)
    norms = ops.grad_norm(g.detach())
    dist = ops.grad_norm(real.detach() - fake.detach())
    up = torch.randn(5, requires_grad=True)
    up0 = torch.randn((), requires_grad=True)
    # a generator's state moves on between opcheck's runs, so only its schema and fake kernel are compared
    generator_utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    gen = torch.Generator().manual_seed(1)
    return [
        (ops.interpolate.default, (real, fake, 7, 0, None), None),
        (ops.interpolate.default, (cl, cl.detach().clone(), -3, 6, None), None),
        (ops.interpolate.default, (real, fake, None, 2, None), None),  # opcheck reseeds the default generator
        (ops.interpolate.default, (real, fake, None, 0, gen), generator_utils),
        (ops.perturb.default, (real, 0.5, 9, 0, None), None),
        (ops.perturb.default, (cl, 0.5, 9, 3, None), None),
        (ops.perturb.default, (real, 0.5, None, 1, gen), generator_utils),
        (ops.grad_norm.default, (g,), None),
        (ops.grad_norm.default, (cl,), None),
        (ops.norm_penalty.default, (g, None, None, 1.0, True, 10.0, 1.0, "mean"), None),
        (ops.norm_penalty.default, (g, scale, w, 0.0, False, 2.0, 3.0, "none"), None),
        (ops.norm_penalty.default, (cl, None, None, 1.0, False, 1.0, 1.0, "sum"), None),
        (ops.penalty_stats.default, (g.detach(), None, 1.0, 1.0), None),
        (ops.pair_penalty.default, (f_real, f_fake, real, fake, "quotient", 1.0, 1.0, "mean"), None),
        (ops.pair_penalty.default, (f_real, f_fake, real, fake, "transport", 3.0, 2.0, "none"), None),
        # backward ops, detached (the fused kernels) and with inputs that require grad (the compositions)
        (ops.interpolate_backward.default, (g.detach(), t, [True, True]), None),
        (ops.interpolate_backward.default, (g, t, [True, True]), None),
        (ops.interpolate_backward.default, (g, t, [False, True]), None),
        (ops.interpolate_backward.default, (g.detach(), t, [True, False]), None),
        (ops.grad_norm_backward.default, (torch.rand(5), g.detach(), norms), None),
        (ops.grad_norm_backward.default, (up, g, norms), None),
        (ops.norm_penalty_backward.default, (up0.detach(), g.detach(), norms, None, None, 1.0, True, 10.0, 1.0, "mean"),
         None),
        (ops.norm_penalty_backward.default, (up0, g, norms / 6, scale, w, 1.0, False, 2.0, 3.0, "sum"), None),
        (ops.norm_penalty_backward.default, (up, g, norms, None, w, 0.5, True, 1.0, 1.0, "none"), None),
        (ops.pair_penalty_backward.default,
         (up0.detach(), f_real.detach(), f_fake.detach(), real.detach(), fake.detach(), dist, "quotient", 1.0, 1.0,
          "mean", [True, True, True, True]), None),
        (ops.pair_penalty_backward.default,
         (up0, f_real, f_fake, real, fake, dist, "transport", 2.0, 2.0, "sum", [True, True, True, True]), None),
        (ops.pair_penalty_backward.default,
         (up, f_real, f_fake, real.detach(), fake.detach(), dist, "quotient", 1.0, 2.0, "none",
          [True, True, False, False]), None),
        (ops.pair_penalty_backward.default,
         (up0.detach(), f_real.detach(), f_fake.detach(), real.detach(), fake.detach(), dist, "transport", 1.0, 1.0,
          "mean", [False, False, False, True]), None),
    ]


OPCHECK_CASES = len(_opcheck_cases())


@compiled_only
@pytest.mark.parametrize("case", range(OPCHECK_CASES))
def test_opcheck(case):
    op, args, test_utils = _opcheck_cases()[case]
    if test_utils is None:
        torch.library.opcheck(op, args)
    else:
        torch.library.opcheck(op, args, test_utils=test_utils)


@compiled_only
def test_torch_compile_fullgraph_penalty():
    def penalty_fn(real, fake, grad, f_real, f_fake):
        points = wk.interpolate(real, fake, seed=1234)
        lp = wk.norm_penalty(grad, one_sided=True, weight=10.0)
        pair = wk.pair_penalty(f_real, f_fake, real, fake, kind="transport")
        return lp + pair + wk.grad_norm(grad).mean() + points.mean()

    compiled = torch.compile(penalty_fn, fullgraph=True, backend="aot_eager")
    args = [torch.randn(6, 2, 3, requires_grad=True) for _ in range(3)] + [
        torch.randn(6, requires_grad=True), torch.randn(6, requires_grad=True)]
    eager = penalty_fn(*args)
    got = compiled(*args)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(torch.autograd.grad(got, args), torch.autograd.grad(eager, args))


def test_outputs_are_freed_without_reference_cycles():
    import gc
    import weakref

    g = torch.randn(4, 3, requires_grad=True)
    real, fake = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    makers = [
        lambda: wk.grad_norm(g),
        lambda: wk.norm_penalty(g, one_sided=True),
        lambda: wk.interpolate(real, fake, seed=1),
        lambda: wk.perturb(real, seed=1),
        lambda: wk.pair_penalty(g.sum(1), g.sum(1) * 0, real, fake),
    ]
    gc.disable()
    try:
        for make in makers:
            out = make()
            alive = weakref.ref(out)
            del out
            assert alive() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_saved_tensor_modified_in_place_is_detected():
    g = torch.randn(4, 3, requires_grad=True)
    x = g * 1.0
    penalty = wk.norm_penalty(x)
    with torch.no_grad():
        x.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        penalty.backward()


@compiled_only
def test_kernels_run_on_every_torch_thread():
    # at::parallel_for is header-only OpenMP: built without -fopenmp, the kernels run on one thread
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("torch runs one thread here")
    assert _backend._C.parallel_for_threads() == threads
