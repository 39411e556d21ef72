"""The public API: the drop-in gradient_penalty against the hand-written recipe, the random
streams, input validation and the backends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from scipy import stats as scipy_stats

import wgan_kernels as wk
from wgan_kernels import reference as ref


# ---------------------------------------------------------------------------------------
# gradient_penalty == the eager recipe users write today


def mlp_critic():
    return torch.nn.Sequential(
        torch.nn.Linear(2, 32), torch.nn.LeakyReLU(0.2), torch.nn.Linear(32, 32), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(32, 1),
    )


def conv_critic():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 1),
    )


def eager_recipe(critic, real, fake, method, weight, seed):
    """The usual ten lines, with the library's t_i so both see the same points."""
    if method == "r1":
        points = real.detach().requires_grad_(True)
    else:
        eps = ref.interpolation_weights(real.shape[0], seed, 0, real.device, real.dtype)
        eps = eps.reshape(-1, *([1] * (real.dim() - 1)))
        points = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(points)
    (grad,) = torch.autograd.grad(out, points, grad_outputs=torch.ones_like(out), create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    if method == "gp":
        return weight * ((norms - 1) ** 2).mean()
    if method == "lp":
        return weight * (torch.relu(norms - 1) ** 2).mean()
    return weight * (norms**2).mean()


@pytest.mark.parametrize("make_critic,shape", [(mlp_critic, (16, 2)), (conv_critic, (5, 3, 8, 8))])
@pytest.mark.parametrize("method", ["gp", "lp", "r1"])
def test_gradient_penalty_equals_eager_recipe(make_critic, shape, method):
    torch.manual_seed(0)
    critic = make_critic()
    real, fake = torch.randn(shape), torch.randn(shape) * 3
    with torch.no_grad():  # large weights so some gradient norms exceed 1 and LP is not zero
        for p in critic.parameters():
            p.mul_(3.0)
    ours = wk.gradient_penalty(critic, real, fake, method=method, weight=10.0, seed=42)
    ours_grads = torch.autograd.grad(ours, list(critic.parameters()), materialize_grads=True)
    theirs = eager_recipe(critic, real, fake, method, 10.0, 42)
    theirs_grads = torch.autograd.grad(theirs, list(critic.parameters()), materialize_grads=True)
    assert theirs.item() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_uses_interpolate_points_for_a_seed():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return (x**2).sum(dim=1)

    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    wk.gradient_penalty(critic, real, fake, method="gp", seed=7)
    assert torch.equal(seen[0], wk.interpolate(real, fake, seed=7))
    wk.gradient_penalty(critic, real, fake, method="dragan", seed=7)
    assert torch.equal(seen[1], wk.perturb(real, seed=7))
    wk.gradient_penalty(critic, real, fake, method="r2")
    assert torch.equal(seen[2], fake)


def test_gradient_penalty_grad_scale_matches_unscaled_and_stats():
    torch.manual_seed(1)
    critic = mlp_critic()
    real, fake = torch.randn(12, 2), torch.randn(12, 2)
    plain, stats = wk.gradient_penalty(critic, real, fake, method="lp", seed=3, return_stats=True)
    scaled, scaled_stats = wk.gradient_penalty(
        critic, real, fake, method="lp", seed=3, grad_scale=torch.tensor(2.0**16), return_stats=True)
    torch.testing.assert_close(plain, scaled)
    torch.testing.assert_close(torch.stack(list(stats)), torch.stack(list(scaled_stats)))
    torch.testing.assert_close(10.0 * stats.part_above, plain)


def test_gradient_penalty_overrides_preset():
    critic = lambda x: 2.0 * x.sum(dim=1)  # noqa: E731  gradient norm 2 * sqrt(3) everywhere
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    n = 2.0 * 3**0.5
    assert wk.gradient_penalty(critic, real, fake, method="r1", weight=1.0).item() == pytest.approx(n**2, rel=1e-6)
    got = wk.gradient_penalty(critic, real, fake, method="gp", target=5.0, one_sided=True, weight=1.0)
    assert got.item() == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_perturb_both_gives_one_term_per_pair(reduction):
    # term_i is the mean of the terms at the perturbed real_i and fake_i; sample_weight is per pair
    critic = lambda x: 0.5 * (x**2).sum(dim=1)  # noqa: E731  input gradient x, norm ||x||
    real, fake = torch.randn(5, 3), torch.randn(5, 3) * 2
    w = torch.rand(5)
    got = wk.gradient_penalty(critic, real, fake, method="gp", sampling="perturb_both", weight=3.0, seed=11,
                              sample_weight=w, reduction=reduction)
    points = wk.perturb(torch.cat([real, fake]), seed=11)
    terms = (points.norm(dim=1) - 1) ** 2
    per_pair = 3.0 * w * (terms[:5] + terms[5:]) / 2
    expected = {"mean": per_pair.mean(), "sum": per_pair.sum(), "none": per_pair}[reduction]
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(B,\) or \(B, 1\) with B = 5"):
        wk.gradient_penalty(critic, real, fake, sampling="perturb_both", sample_weight=torch.ones(10))


# ---------------------------------------------------------------------------------------
# random streams


def test_interpolate_one_uniform_t_per_sample():
    batch = 20000
    real, fake = torch.ones(batch, 3, 2), torch.zeros(batch, 3, 2)
    t = wk.interpolate(real, fake, seed=2024)  # = t_i everywhere in sample i
    assert torch.equal(t, t[:, :1, :1].expand_as(t))
    t = t[:, 0, 0].double()
    assert t.min() >= 0 and t.max() < 1
    assert scipy_stats.kstest(t.numpy(), "uniform").pvalue > 1e-3
    # the stream of a seed is a function of the sample index alone
    assert torch.equal(wk.interpolate(real[:100], fake[:100], seed=2024)[:, 0, 0].double(), t[:100])


def test_interpolate_seeds_reproduce_and_differ():
    real, fake = torch.randn(64, 5), torch.randn(64, 5)
    assert torch.equal(wk.interpolate(real, fake, seed=1), wk.interpolate(real, fake, seed=1))
    assert not torch.equal(wk.interpolate(real, fake, seed=1), wk.interpolate(real, fake, seed=2))
    torch.manual_seed(123)
    a = wk.interpolate(real, fake)
    b = wk.interpolate(real, fake)
    torch.manual_seed(123)
    assert torch.equal(wk.interpolate(real, fake), a)
    assert not torch.equal(a, b)


def test_perturb_noise_is_standard_normal():
    x = torch.randn(400, 50) * 3 + 1
    out = wk.perturb(x, scale=0.5, seed=99)
    z = ((out - x) / (0.5 * x.std(correction=0))).flatten().double()
    assert scipy_stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    assert torch.equal(wk.perturb(x, scale=0.5, seed=99), out)
    torch.manual_seed(5)
    a = wk.perturb(x)
    torch.manual_seed(5)
    assert torch.equal(wk.perturb(x), a)


@pytest.mark.parametrize("shape", [(6, 3), (5, 2, 3, 3), (4, 1)])
def test_row_offset_gives_each_rank_its_rows_of_the_single_process_draw(shape):
    ranks, batch = 3, shape[0]
    real, fake = torch.randn(ranks * batch, *shape[1:]), torch.randn(ranks * batch, *shape[1:])
    x = torch.randn(ranks * batch, *shape[1:]) * 2 + 1
    single = wk.interpolate(real, fake, seed=77)
    noise = (wk.perturb(x, seed=77) - x) / (0.5 * x.std(correction=0))
    for k in range(ranks):
        rows = slice(k * batch, (k + 1) * batch)
        assert torch.equal(wk.interpolate(real[rows], fake[rows], seed=77, row_offset=k * batch), single[rows])
        local = wk.perturb(x[rows], seed=77, row_offset=k * batch)  # the noise rows; std is the local batch's
        torch.testing.assert_close((local - x[rows]) / (0.5 * x[rows].std(correction=0)), noise[rows])
    assert not torch.equal(wk.interpolate(real[:batch], fake[:batch], seed=77, row_offset=1), single[:batch])


def test_gradient_penalty_row_offset_selects_the_same_rows():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.sum(dim=1)

    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    wk.gradient_penalty(critic, real[4:], fake[4:], seed=5, row_offset=4)
    assert torch.equal(seen[0], wk.interpolate(real, fake, seed=5)[4:])
    wk.gradient_penalty(critic, real[4:], fake[4:], method="dragan", seed=5, row_offset=4)
    assert torch.equal(seen[1], wk.perturb(real[4:], seed=5, row_offset=4))
    wk.gradient_penalty(critic, real[4:], fake[4:], sampling="perturb_both", seed=5, row_offset=4)
    assert torch.equal(seen[2], wk.perturb(torch.cat([real[4:], fake[4:]]), seed=5, row_offset=8))


@pytest.mark.parametrize("op", ["interpolate", "perturb"])
def test_unseeded_draw_is_the_same_on_both_backends(op):
    # seed=None draws from torch's generator the same way in the kernel and in the reference
    real, fake = torch.randn(9, 4), torch.randn(9, 4)
    ours = {"interpolate": lambda **kw: wk.interpolate(real, fake, **kw), "perturb": lambda **kw: wk.perturb(real, **kw)}[op]
    spec = {"interpolate": lambda **kw: ref.interpolate(real, fake, None, **kw),
            "perturb": lambda **kw: ref.perturb(real, 0.5, None, **kw)}[op]
    torch.manual_seed(31)
    expected = spec()
    torch.manual_seed(31)
    torch.testing.assert_close(ours(), expected)  # another seed would give other numbers entirely
    torch.testing.assert_close(ours(generator=torch.Generator().manual_seed(8)),
                               spec(generator=torch.Generator().manual_seed(8)))
    torch.manual_seed(32)
    expected = spec(row_offset=3)
    torch.manual_seed(32)
    torch.testing.assert_close(ours(row_offset=3), expected)


def test_generator_reproduces_and_leaves_the_default_generator_alone():
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    torch.manual_seed(4)
    untouched = torch.rand(4)
    torch.manual_seed(4)
    g = torch.Generator().manual_seed(123)
    first, second = wk.interpolate(real, fake, generator=g), wk.interpolate(real, fake, generator=g)
    assert torch.equal(torch.rand(4), untouched)  # the default generator did not move
    assert not torch.equal(first, second)  # the generator moved
    g.manual_seed(123)
    assert torch.equal(wk.interpolate(real, fake, generator=g), first)
    critic = lambda x: (x**2).sum(dim=1)  # noqa: E731
    penalty = wk.gradient_penalty(critic, real, fake, method="gp", generator=torch.Generator().manual_seed(9))
    assert penalty.item() == wk.gradient_penalty(critic, real, fake, method="gp",
                                                 generator=torch.Generator().manual_seed(9)).item()
    noise = wk.perturb(real, generator=torch.Generator().manual_seed(2))
    assert torch.equal(noise, wk.perturb(real, generator=torch.Generator().manual_seed(2)))


# ---------------------------------------------------------------------------------------
# torch.compile of the public API (gradient_penalty itself: tests/test_critics.py)


@pytest.mark.skipif(wk.backend() != "compiled", reason="the reference's NumPy draws are a graph break")
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_public_ops_compile_fullgraph(backend):
    # every op with its tensor arguments (whose values are checked only outside compile), the
    # default generator and row_offset: one graph, same values and gradients as eager
    def penalties(real, fake, grad, f_real, f_fake, w, scale):
        points = wk.interpolate(real, fake) + wk.interpolate(real, fake, seed=1234, row_offset=6)
        noisy = wk.perturb(real, scale=0.3, seed=5, row_offset=2)
        lp = wk.norm_penalty(grad, one_sided=True, weight=10.0, sample_weight=w, grad_scale=scale)
        pair = wk.pair_penalty(f_real, f_fake, real, fake, kind="transport")
        stats = wk.penalty_stats(grad.detach(), grad_scale=scale)
        return lp + pair + wk.grad_norm(grad).mean() + points.mean() + noisy.mean() + stats.frac_above

    args = [torch.randn(6, 2, 3, requires_grad=True) for _ in range(3)] + [
        torch.randn(6, requires_grad=True), torch.randn(6, 1, requires_grad=True)]
    constants = [torch.rand(6), torch.tensor(4.0)]
    torch.manual_seed(3)
    eager = penalties(*args, *constants)
    torch._dynamo.reset()
    compiled = torch.compile(penalties, fullgraph=True, backend=backend)
    torch.manual_seed(3)
    got = compiled(*args, *constants)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(torch.autograd.grad(got, args), torch.autograd.grad(eager, args))


# ---------------------------------------------------------------------------------------
# bad input


def g34():
    return torch.randn(3, 4)


BAD_CALLS = [
    (lambda: wk.interpolate(g34(), torch.randn(3, 5)), ValueError, "fake must have the shape of real"),
    (lambda: wk.interpolate(g34(), torch.randn(3, 4, dtype=torch.float64)), TypeError, "fake must have the dtype"),
    (lambda: wk.interpolate(torch.ones(3, 4, dtype=torch.int64), g34()), TypeError, "real must be a floating"),
    (lambda: wk.interpolate(torch.tensor(1.0), torch.tensor(1.0)), ValueError, "real must have a batch dimension"),
    (lambda: wk.interpolate(g34(), g34(), seed=1.5), TypeError, "seed must be an int"),
    (lambda: wk.interpolate(g34(), [1, 2]), TypeError, "fake must be a torch.Tensor"),
    (lambda: wk.perturb(g34(), scale=-1.0), ValueError, "scale must be non-negative"),
    (lambda: wk.grad_norm(torch.tensor(2.0)), ValueError, "grad must have a batch dimension"),
    (lambda: wk.norm_penalty(g34(), reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: wk.norm_penalty(g34(), weight=-1.0), ValueError, "weight must be non-negative"),
    (lambda: wk.norm_penalty(g34(), target=-1.0), ValueError, "target must be non-negative"),
    (lambda: wk.norm_penalty(g34(), grad_scale=0.0), ValueError, "grad_scale must be positive"),
    (lambda: wk.norm_penalty(g34(), grad_scale=torch.ones(2)), ValueError, "grad_scale must be a float or a one-element"),
    (lambda: wk.norm_penalty(g34(), grad_scale="x"), TypeError, "grad_scale must be a float"),
    (lambda: wk.norm_penalty(g34(), sample_weight=torch.ones(4)), ValueError, r"sample_weight must have shape \(B,\)"),
    (lambda: wk.norm_penalty(g34(), sample_weight=torch.tensor([1.0, -0.5, 1.0])), ValueError,
     "sample_weight must be non-negative, got -0.5 at sample 1"),
    (lambda: wk.norm_penalty(g34(), grad_scale=torch.tensor(0.0)), ValueError, "grad_scale must be positive"),
    (lambda: wk.norm_penalty(g34(), grad_scale=torch.tensor([-2.0])), ValueError, "grad_scale must be positive"),
    (lambda: wk.penalty_stats(g34(), grad_scale=torch.tensor(-1.0)), ValueError, "grad_scale must be positive"),
    (lambda: wk.interpolate(g34(), g34(), row_offset=-1), ValueError, "row_offset must be a non-negative"),
    (lambda: wk.perturb(g34(), row_offset=1.0), TypeError, "row_offset must be an int"),
    (lambda: wk.interpolate(g34(), g34(), generator=0), TypeError, "generator must be a torch.Generator"),
    (lambda: wk.perturb(g34(), seed=1, generator=torch.Generator()), ValueError, "pass seed or generator, not both"),
    (lambda: wk.perturb(torch.ones(3, 4, device="meta"), generator=torch.Generator()), ValueError,
     r"generator must be a generator of the input's device \(meta\)"),
    (lambda: wk.penalty_stats(torch.ones(3, dtype=torch.int32)), TypeError, "grad must be a floating"),
    (lambda: wk.pair_penalty(torch.ones(3), torch.ones(3), g34(), g34(), kind="ratio"), ValueError, "kind must be one of"),
    (lambda: wk.pair_penalty(torch.ones(4), torch.ones(3), g34(), g34()), ValueError, "f_real must have shape"),
    (lambda: wk.pair_penalty(torch.ones(3), torch.ones(3, 2), g34(), g34()), ValueError, "f_fake must have shape"),
    (lambda: wk.pair_penalty(torch.ones(3), torch.ones(3), g34(), g34(), p=0), ValueError, "p must be a positive"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), method="wgan"), ValueError, "method must be one of"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), sampling="mid"), ValueError, "sampling must be one of"),
    (lambda: wk.gradient_penalty(None, g34(), g34()), TypeError, "critic must be callable"),
    (lambda: wk.gradient_penalty(lambda x: 1.0, g34(), g34()), TypeError, "critic must return a tensor"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(), g34(), g34()), ValueError,
     r"critic's output must have one value per sample, shape \(B,\) or \(B, 1\) with B = 3; got shape \(\), a scalar"),
    (lambda: wk.gradient_penalty(lambda x: x[:, :2], g34(), g34()), ValueError,
     r"critic's output must have one value per sample.*got shape \(3, 2\)"),
    (lambda: wk.gradient_penalty(torch.nn.Linear(2, 1), torch.randn(2), torch.randn(2)), ValueError,  # unbatched
     r"critic's output must have one value per sample.*B = 2; got shape \(1,\), does the critic see a batch"),
    (lambda: wk.gradient_penalty(lambda x: x.detach().sum(1), g34(), g34()), ValueError,
     "critic's output does not depend on its input"),
    (lambda: wk.gradient_penalty(lambda x: torch.zeros(3, requires_grad=True), g34(), g34()), ValueError,
     "critic's output does not depend on its input"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), weight=-1.0), ValueError, "weight must be non-negative"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), target=-1.0), ValueError, "target must be non-negative"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), grad_scale=torch.tensor(0.0)), ValueError,
     "grad_scale must be positive"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), sample_weight=-torch.ones(3)), ValueError,
     "sample_weight must be non-negative"),
    (lambda: wk.gradient_penalty(lambda x: x.sum(1), g34(), g34(), row_offset=-3), ValueError,
     "row_offset must be a non-negative"),
    (lambda: wk.clip_weights_(torch.nn.Linear(2, 2), c=0), ValueError, "c must be a positive"),
    (lambda: wk.clip_weights_("model"), TypeError, "module must be a torch.nn.Module"),
]


@pytest.mark.parametrize("call,error,message", BAD_CALLS, ids=[m for _, _, m in BAD_CALLS])
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_gradient_penalty_checks_its_arguments_before_the_critic_runs():
    calls = []

    def critic(x):
        calls.append(x)
        return x.sum(dim=1)

    bad = [dict(sample_weight=torch.tensor([1.0, -1.0, 1.0])), dict(grad_scale=torch.tensor(-1.0)),
           dict(weight=-1.0), dict(reduction="avg"), dict(seed=1.5), dict(generator="g"), dict(row_offset=-1),
           dict(sample_weight=torch.ones(4))]
    for kwargs in bad:
        with pytest.raises((ValueError, TypeError)):
            wk.gradient_penalty(critic, g34(), g34(), **kwargs)
    assert calls == []


def test_cuda_tensor_values_are_not_read():
    # reading a CUDA tensor's values would sync the device and break CUDA-graph capture (README)
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    g = torch.randn(3, 4, device="cuda")
    w, scale = torch.tensor([1.0, -1.0, 1.0], device="cuda"), torch.tensor(-1.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # a device sync raises
    try:
        wk.norm_penalty(g, sample_weight=w, grad_scale=scale)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_kernels_check_shapes_when_called_directly():
    pytest.importorskip("wgan_kernels._C")
    with pytest.raises(RuntimeError, match="fake must have the shape of real"):
        torch.ops.wgan_kernels.interpolate(g34(), torch.randn(4, 3), 0, 0, None)
    with pytest.raises(RuntimeError, match="sample_weight must have shape"):
        torch.ops.wgan_kernels.norm_penalty(g34(), None, torch.ones(5), 1.0, False, 1.0, 1.0, "mean")
    with pytest.raises(RuntimeError, match="reduction must be"):
        torch.ops.wgan_kernels.norm_penalty(g34(), None, None, 1.0, False, 1.0, 1.0, "avg")


def test_clip_weights():
    layer = torch.nn.Linear(10, 10)
    with torch.no_grad():
        layer.weight.mul_(100)
    wk.clip_weights_(layer, c=0.01)
    assert layer.weight.abs().max() <= 0.01 and layer.bias.abs().max() <= 0.01


# ---------------------------------------------------------------------------------------
# backends


def run_python(code: str, backend: str) -> str:
    env = dict(os.environ, WGAN_KERNELS_BACKEND=backend)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_reference_backend_serves_the_same_api():
    code = (
        "import torch, wgan_kernels as wk\n"
        "torch.manual_seed(0)\n"
        "g = torch.randn(6, 3, requires_grad=True); r, f = torch.randn(6, 3), torch.randn(6, 3)\n"
        "p = wk.norm_penalty(g, one_sided=True, weight=10.0) + wk.pair_penalty(g.sum(1), g.sum(1) * 0, r, f)\n"
        "p.backward()\n"
        "print(wk.backend(), round(p.item(), 4), round(g.grad.abs().sum().item(), 4),"
        " round(wk.interpolate(r, f, seed=3).sum().item(), 4))\n"
    )
    reference = run_python(code, "reference")
    assert reference.startswith("reference ")
    if wk.backend() == "compiled":
        compiled = run_python(code, "compiled")
        assert compiled.startswith("compiled ") and compiled.split()[1:] == reference.split()[1:]


def test_unknown_backend_is_refused():
    env = dict(os.environ, WGAN_KERNELS_BACKEND="fast")
    done = subprocess.run([sys.executable, "-c", "import wgan_kernels"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "WGAN_KERNELS_BACKEND must be one of" in done.stderr


def test_missing_extension_falls_back_to_reference_with_one_warning():
    code = (
        "import sys, warnings\n"
        "sys.modules['wgan_kernels._C'] = None  # makes `from . import _C` fail like a missing build\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import wgan_kernels as wk\n"
        "    import wgan_kernels.functional\n"
        "import torch\n"
        "g = torch.randn(4, 3, requires_grad=True)\n"
        "wk.norm_penalty(g).backward()\n"
        "print(wk.backend(), sum('reference backend' in str(w.message) for w in caught))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WGAN_KERNELS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["reference", "1"]
    env["WGAN_KERNELS_BACKEND"] = "compiled"
    forced = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert forced.returncode != 0 and "compiled extension failed to import" in forced.stderr


# ---------------------------------------------------------------------------------------
# test seeding (tests/conftest.py)


def test_each_test_starts_from_the_seed_of_its_id(request, seeded):
    from conftest import seed_of

    assert seeded == seed_of(request.node.nodeid)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(seeded))
    assert torch.equal(torch.rand(3), expected)
