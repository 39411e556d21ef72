"""gradcheck and gradgradcheck in float64, the backward ops' compositions, output masks, the
backward at zero gradient, NaN/inf propagation, opcheck, torch.compile(fullgraph=True) and
compiled autograd."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.utils._python_dispatch

import wgan_kernels as wk
from wgan_kernels import _backend

from testing import (DEVICES, DTYPES, check_compile_draws_seed_none, check_compile_fullgraph_penalty, close,
                     make)

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
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_propagate(device, dtype, bad):
    # rows of 20: a bad value in the first 8 (row 1) and in the last 4 (row 3), where the float16
    # kernels convert 8 at a time and then one by one
    g = torch.randn(4, 20, device=device, dtype=dtype)
    g[1, 2] = bad
    g[3, 18] = bad
    bad_rows, good_rows = [1, 3], [0, 2]
    g.requires_grad_(True)
    penalty = wk.norm_penalty(g, reduction="none")
    assert torch.isfinite(penalty[good_rows]).all() and not torch.isfinite(penalty[bad_rows]).any()
    (grad,) = torch.autograd.grad(penalty.sum(), g)
    assert not torch.isfinite(grad[1]).all() and not torch.isfinite(grad[3]).all()
    assert torch.isfinite(grad[good_rows]).all()
    assert not torch.isfinite(wk.norm_penalty(g)).item()
    assert not torch.isfinite(wk.grad_norm(g)[bad_rows]).any()
    stats = wk.penalty_stats(g)
    assert not torch.isfinite(stats.mean_norm)
    x = torch.randn(4, 20, device=device, dtype=dtype)
    x[1, 2] = bad
    x[3, 18] = bad
    x_hat = wk.interpolate(x, torch.zeros_like(x), seed=1)
    assert not torch.isfinite(x_hat[1, 2]) and not torch.isfinite(x_hat[3, 18])
    assert torch.isfinite(x_hat[good_rows]).all()
    pair = wk.pair_penalty(torch.ones(4, device=device), torch.zeros(4, device=device), x, torch.zeros_like(x),
                           reduction="none")
    if bad != bad:  # NaN distance -> NaN term (an infinite distance is simply no constraint)
        assert torch.isnan(pair[bad_rows]).all()
    assert torch.isfinite(pair[good_rows]).all()


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
    run_opcheck(*_opcheck_cases()[case])


def run_opcheck(op, args, test_utils=None):
    """opcheck with its own default tests unless the case names a subset."""
    torch.library.opcheck(op, args, **({} if test_utils is None else {"test_utils": test_utils}))


@compiled_only
def test_torch_compile_fullgraph_penalty():
    check_compile_fullgraph_penalty("cpu", backend="aot_eager")


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


# ---------------------------------------------------------------------------------------
# Higher-order gradients: the backward ops are differentiable (create_graph=True)

NORM_PENALTY_GRADGRAD = [
    dict(one_sided=one_sided, reduction=reduction, grad_scale=grad_scale, sample_weight=weighted, target=target)
    for one_sided in (False, True)
    for reduction in ("mean", "sum", "none")
    for grad_scale, weighted, target in ((None, False, 1.0), (8.0, True, 1.0), ("tensor", True, 0.5), (None, True, 0.0))
]


def _norm_penalty_kwargs(options, batch, device):
    kwargs = dict(options)
    if kwargs["grad_scale"] == "tensor":
        kwargs["grad_scale"] = torch.tensor(4.0, dtype=torch.float64, device=device)
    kwargs["sample_weight"] = torch.rand(batch, dtype=torch.float64, device=device) if kwargs["sample_weight"] else None
    return kwargs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", NORM_PENALTY_GRADGRAD, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_gradgradcheck_norm_penalty(device, options):
    kwargs = _norm_penalty_kwargs(options, 4, device)
    scale = 1.0 if kwargs["grad_scale"] is None else float(kwargs["grad_scale"])
    g = f64(4, 3, 2, scale=0.5 * scale, device=device)  # norms around the target: both sides of the hinge
    assert torch.autograd.gradgradcheck(lambda a: wk.norm_penalty(a, **kwargs), (g,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 3), (4, 2, 3, 5), (3, 7)])
def test_gradgradcheck_grad_norm_and_random_ops(device, shape):
    x = f64(*shape, device=device)
    assert torch.autograd.gradgradcheck(wk.grad_norm, (x,))
    real, fake = f64(*shape, device=device), f64(*shape, device=device)
    assert torch.autograd.gradgradcheck(lambda a, b: wk.interpolate(a, b, seed=5, row_offset=2), (real, fake))
    assert torch.autograd.gradgradcheck(lambda a: wk.perturb(a, seed=5), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["quotient", "transport"])
@pytest.mark.parametrize("p", [1.0, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradgradcheck_pair_penalty(device, kind, p, reduction):
    a, b = f64(5, 2, 3, scale=0.3, device=device), f64(5, 2, 3, scale=0.3, device=device)
    dist = (a - b).detach().flatten(1).norm(dim=1) ** p
    # critic gaps of the size of the distances: some pairs violate the constraint, some don't
    f_real = (2 * torch.rand(5, dtype=torch.float64, device=device) * dist).requires_grad_(True)
    f_fake = f64(5, 1, scale=0.1, device=device)
    fn = lambda *t: wk.pair_penalty(*t, kind=kind, p=p, weight=2.0, reduction=reduction)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (f_real, f_fake, a, b))


def _hessian_vector_product(fn, inputs, vectors):
    out = fn(*inputs)
    grads = torch.autograd.grad(out.sum(), inputs, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vectors))
    return torch.autograd.grad(dot, inputs, allow_unused=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(6, 3, 5), (2, 70000)], ids=["small", "split-rows"])
def test_double_backward_matches_reference_without_autograd_fallback(device, shape):
    """Fails before the backward ops had Autograd kernels: PyTorch warned 'autograd kernel was not
    registered' and returned no second-order graph."""
    from wgan_kernels import reference as ref

    g = torch.randn(*shape, device=device).mul_(0.5 / shape[-1] ** 0.5).requires_grad_(True)
    real = torch.randn(*shape, device=device).mul_(0.1).requires_grad_(True)
    fake = torch.randn(*shape, device=device).mul_(0.1).requires_grad_(True)
    f_real = torch.randn(shape[0], device=device, requires_grad=True)
    f_fake = torch.randn(shape[0], device=device, requires_grad=True)
    w = torch.rand(shape[0], device=device)
    cases = [
        ((g,), wk.grad_norm, ref.grad_norm),
        ((g,), lambda a: wk.norm_penalty(a, one_sided=True, weight=3.0, sample_weight=w, grad_scale=2.0),
         lambda a: ref.norm_penalty(a, None, w, 1.0, True, 3.0, 2.0, "mean")),
        ((g,), lambda a: wk.norm_penalty(a, target=0.0, reduction="none"),
         lambda a: ref.norm_penalty(a, None, None, 0.0, False, 1.0, 1.0, "none")),
        ((f_real, f_fake, real, fake), lambda *t: wk.pair_penalty(*t, kind="quotient", p=2.0),
         lambda *t: ref.pair_penalty(*t, "quotient", 1.0, 2.0, "mean")),
        ((f_real, f_fake, real, fake), lambda *t: wk.pair_penalty(*t, kind="transport", reduction="sum"),
         lambda *t: ref.pair_penalty(*t, "transport", 1.0, 1.0, "sum")),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the autograd fallback's warning fails the test
        for inputs, op, reference_op in cases:
            vectors = [torch.randn_like(t) for t in inputs]
            got = _hessian_vector_product(op, inputs, vectors)
            want = _hessian_vector_product(reference_op, inputs, vectors)
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-4)


# The backward ops' differentiable compositions give the values of their fused kernels.
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
@pytest.mark.parametrize("shape,layout", [((5, 3, 4), "contiguous"), ((3, 2, 5, 7), "channels_last"),
                                          ((4, 9), "noncontiguous"), ((2, 3, 110, 110), "channels_last"),
                                          ((3, 33000), "contiguous"), ((0, 4), "contiguous")])
def test_backward_compositions_equal_the_kernels(device, dtype, atol, rtol, shape, layout):
    ops = torch.ops.wgan_kernels
    batch = shape[0]
    atol, rtol = max(atol, 1e-6), max(rtol, 2e-6)  # the composition rounds float32 coefficients differently
    g = make(shape, dtype, device, layout, scale=0.01)
    real, fake = make(shape, dtype, device, layout, scale=0.1), make(shape, dtype, device, layout, scale=0.1)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    up = torch.randn(batch, device=device, dtype=acc)
    up0 = torch.randn((), device=device, dtype=acc)
    t = torch.rand(batch, device=device)
    w = torch.rand(batch, device=device)
    scale = torch.tensor(3.0, device=device)
    norms = ops.grad_norm(g)
    dist = ops.grad_norm(real.to(acc) - fake.to(acc))
    f_real, f_fake = torch.randn(batch, device=device), torch.randn(batch, 1, device=device)
    cases = [
        (ops.interpolate_backward.default, lambda x: (x, t, [True, True]), (0,)),
        (ops.interpolate_backward.default, lambda x: (x, t, [False, True]), (0,)),
        (ops.grad_norm_backward.default, lambda x: (up, x, norms), (1,)),
        (ops.norm_penalty_backward.default,
         lambda x: (up0, x, norms / 6.0, scale, w, 1.0, True, 10.0, 2.0, "mean"), (1,)),
        (ops.norm_penalty_backward.default, lambda x: (up, x, norms, None, None, 0.0, False, 1.0, 1.0, "none"), (1,)),
        (ops.pair_penalty_backward.default,
         lambda x: (up0, f_real, f_fake, x, fake, dist, "quotient", 2.0, 1.0, "mean", [True, True, True, True]), (3,)),
        (ops.pair_penalty_backward.default,
         lambda x: (up, f_real, f_fake, x, fake, dist, "transport", 1.0, 2.0, "none", [False, True, True, False]), (3,)),
    ]
    for op, make_args, differentiable in cases:
        base = g if op is not ops.pair_penalty_backward.default else real
        fused = op(*make_args(base))
        composed = op(*make_args(base.detach().clone().requires_grad_(True)))
        fused = fused if isinstance(fused, tuple) else (fused,)
        composed = composed if isinstance(composed, tuple) else (composed,)
        assert any(c is not None and c.grad_fn is not None for c in composed) or base.numel() == 0
        for a, b in zip(fused, composed):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.shape == b.shape and a.dtype == b.dtype
                close(b.detach(), a, atol, rtol)


def test_cache_inputs_of_backward_ops_are_not_differentiable():
    g = torch.randn(3, 4)
    norms = torch.ops.wgan_kernels.grad_norm(g).requires_grad_(True)
    with pytest.raises(RuntimeError, match="norms caches a function of the other inputs"):
        torch.ops.wgan_kernels.grad_norm_backward(torch.ones(3), g, norms)


# ---------------------------------------------------------------------------------------
# Backward output masks: only the gradients autograd needs are computed


class _RecordOps(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls.append((func, args, out))
        return out


def _backward_calls(loss, inputs, op):
    with _RecordOps() as record:
        grads = torch.autograd.grad(loss, inputs)
    return grads, [(args, out) for func, args, out in record.calls if func is op]


@compiled_only
def test_pair_penalty_backward_computes_only_the_needed_gradients():
    real, fake = torch.randn(6, 3, 8), torch.randn(6, 3, 8)
    f_real, f_fake = torch.randn(6, requires_grad=True), torch.randn(6, 1, requires_grad=True)
    op = torch.ops.wgan_kernels.pair_penalty_backward.default
    penalty = wk.pair_penalty(f_real, f_fake, real, fake)  # the trainer's case: critic values only
    grads, calls = _backward_calls(penalty, (f_real, f_fake), op)
    (args, out), = calls
    assert args[-1] == [True, True, False, False] and out[2] is None and out[3] is None
    # autograd.grad for one input asks for that gradient only
    real.requires_grad_(True)
    fake.requires_grad_(True)
    penalty = wk.pair_penalty(f_real, f_fake, real, fake, kind="transport")
    (g_fake,), calls = _backward_calls(penalty, (fake,), op)
    (args, out), = calls
    assert args[-1] == [False, False, False, True] and out[0] is None and out[2] is None
    full = torch.autograd.grad(wk.pair_penalty(f_real, f_fake, real, fake, kind="transport"), (f_real, f_fake, real, fake))
    assert torch.equal(g_fake, full[3]) and torch.equal(grads[0], torch.autograd.grad(
        wk.pair_penalty(f_real, f_fake, real, fake), f_real)[0])


@compiled_only
def test_interpolate_backward_computes_only_the_needed_gradients():
    real, fake = torch.randn(5, 4, 3, requires_grad=True), torch.randn(5, 4, 3)
    op = torch.ops.wgan_kernels.interpolate_backward.default
    x_hat = wk.interpolate(real, fake, seed=8)
    upstream = torch.randn_like(x_hat)
    (g_real,), calls = _backward_calls((x_hat * upstream).sum(), (real,), op)
    (args, out), = calls
    assert args[-1] == [True, False] and out[1] is None
    fake.requires_grad_(True)
    x_hat = wk.interpolate(real, fake, seed=8)
    both = torch.autograd.grad(x_hat, (real, fake), upstream)
    (g_fake,), calls = _backward_calls((wk.interpolate(real, fake, seed=8) * upstream).sum(), (fake,), op)
    assert calls[0][0][-1] == [False, True] and calls[0][1][0] is None
    assert torch.equal(g_real, both[0]) and torch.equal(g_fake, both[1])


# ---------------------------------------------------------------------------------------
# The backward nodes: freed saved tensors, compiled autograd


def test_second_backward_through_freed_graph_raises():
    g = torch.randn(4, 3, requires_grad=True)
    penalty = wk.norm_penalty(g)
    penalty.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        penalty.backward()


@compiled_only
def test_compiled_autograd_traces_the_backward_nodes():
    from torch._dynamo import compiled_autograd

    g = torch.randn(6, 3, 4, requires_grad=True)
    real, fake = torch.randn(6, 3, 4, requires_grad=True), torch.randn(6, 3, 4, requires_grad=True)
    f_real, f_fake = torch.randn(6, requires_grad=True), torch.randn(6, 1, requires_grad=True)
    w, scale = torch.rand(6), torch.tensor(2.0)
    leaves = (g, real, fake, f_real, f_fake)

    def loss(seed):
        x_hat = wk.interpolate(real, fake, seed=seed)
        optional = dict(sample_weight=w, grad_scale=scale) if seed == 1 else {}  # saved tensors, or none
        return (wk.norm_penalty(g * 2, one_sided=True, **optional)
                + wk.grad_norm(x_hat).sum() + wk.perturb(g, seed=seed).square().sum()
                + wk.pair_penalty(f_real, f_fake, real, fake, kind="transport", reduction="sum"))

    graphs = []

    def compiler(graph):
        graphs.append(graph.code)
        return torch.compile(graph, backend="aot_eager", fullgraph=True)

    for seed in (1, 2):
        eager = torch.autograd.grad(loss(seed), leaves)
        for leaf in leaves:
            leaf.grad = None
        with compiled_autograd._enable(compiler):
            loss(seed).backward()
        for leaf, want in zip(leaves, eager):
            torch.testing.assert_close(leaf.grad, want)
    for node in ("NormPenaltyBackward", "GradNormBackward", "InterpolateBackward", "PerturbBackward",
                 "PairPenaltyBackward"):
        assert f"wgan_kernels_{node}" in graphs[0]  # traced into the graph, not run opaquely


@compiled_only
def test_stats_count_is_one_fact():
    from wgan_kernels import _ops
    from wgan_kernels import reference as ref

    assert _backend._C.num_stats == _ops.NUM_STATS == len(ref.STAT_NAMES)
    assert torch.ops.wgan_kernels.penalty_stats(torch.randn(3, 4), None, 1.0, 1.0).shape == (len(ref.STAT_NAMES),)


@compiled_only
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_draws_seed_none_at_run_time(backend):
    check_compile_draws_seed_none("cpu", backend=backend)
