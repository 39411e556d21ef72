"""The CUDA kernels: registration and opt-in (run anywhere), then, on a GPU with
WGAN_KERNELS_CUDA=1, CUDA against the CPU kernels on the row-splitting and vector paths, the
shared random streams, gradcheck, opcheck, torch.compile, a penalised critic step captured in a
CUDA graph, and a 2-process DDP step with NCCL. Every op is also checked against the reference on
CUDA by test_ops.py and test_autograd.py, which parametrize over testing.DEVICES.

On a GPU run everything at once with benchmarks/gpu_check.sh (docs/CUDA.md)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

import wgan_kernels as wk
from wgan_kernels import _backend
from wgan_kernels import reference as ref

from testing import check_compile_draws_seed_none, check_compile_fullgraph_penalty, close

BUILT_WITH_CUDA = _backend._C is not None and "cuda" in _backend._C.kernel_devices
HAS_GPU = torch.cuda.is_available()

needs_cuda_build = pytest.mark.skipif(not BUILT_WITH_CUDA, reason="extension built without CUDA")
needs_kernels = pytest.mark.skipif(
    not (HAS_GPU and _backend.cuda_kernels_enabled()),
    reason="needs a GPU, a CUDA build and WGAN_KERNELS_CUDA=1 (the CUDA kernels are opt-in)",
)

# ---------------------------------------------------------------------------------------
# without a GPU: the build and the opt-in


@needs_cuda_build
def test_every_op_has_a_cuda_kernel():
    ops = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("wgan_kernels::"))
    assert "wgan_kernels::norm_penalty" in ops and "wgan_kernels::interpolate_backward" in ops
    missing = [op for op in ops if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
    assert not missing, f"no CUDA kernel for {missing}"


def _kernel_devices_with(env_value):
    env = {k: v for k, v in os.environ.items() if k != _backend.CUDA_ENV_VAR}
    if env_value is not None:
        env[_backend.CUDA_ENV_VAR] = env_value
    code = "from wgan_kernels import _backend; print(','.join(sorted(_backend.KERNEL_DEVICES)))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().split(",")


@pytest.mark.skipif(_backend._C is None, reason="needs the compiled extension")
def test_cuda_kernels_are_opt_in():
    # unverified kernels never answer a CUDA call by default
    assert _kernel_devices_with(None) == ["cpu"]
    assert _kernel_devices_with("0") == ["cpu"]
    assert _kernel_devices_with("1") == (["cpu", "cuda"] if BUILT_WITH_CUDA else ["cpu"])


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU")
def test_gpu_run_uses_the_cuda_kernels():
    if not _backend.cuda_kernels_enabled():
        pytest.skip("WGAN_KERNELS_CUDA=1 is not set: CUDA tensors run the reference, the kernels are untested")
    from wgan_kernels import functional

    assert functional._impl(torch.zeros(1, device="cuda")) is functional._compiled


# ---------------------------------------------------------------------------------------
# on a GPU: CUDA kernels against the CPU kernels where the CUDA grid differs from the CPU one

# (rows, sample shape): tiny rows (several per warp), rows one block long, rows split into
# 2..25 segments (8192 elements each), odd lengths (scalar heads and tails)
CUDA_SHAPES = [(1, (1,)), (1000, (2,)), (33, (3, 5)), (5, (3, 17, 19)), (3, (8193,)), (2, (3, 64, 65)),
               (4, (40001,)), (2, (3, 256, 256)), (0, (3,)), (4, (0,))]
# "offset": a contiguous view one element into its storage, so every row starts off a 16-byte
# boundary (the vector path's scalar head)
CUDA_LAYOUTS = ["contiguous", "offset", "channels_last", "noncontiguous"]
CUDA_DTYPES = [(torch.float32, 1e-5), (torch.float64, 1e-12), (torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)]


def _pair(rows, sample, dtype, layout, scale=1.0, seed=0, spread=False):
    """(cpu, cuda) copies of one random tensor, in the given layout on both devices; spread:
    rows scaled from 0.3x to 1.7x."""
    shape = (rows, *sample)
    values = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    if spread:
        values *= torch.linspace(0.3, 1.7, rows).view(rows, *[1] * len(sample))
    values = values.to(dtype)

    def lay(t):
        if layout == "offset":
            storage = torch.empty(t.numel() + 1, dtype=dtype, device=t.device)
            return storage[1:].view(shape).copy_(t)
        if layout == "channels_last":
            return t.contiguous(memory_format=torch.channels_last)
        if layout == "noncontiguous":  # every other element of a wider tensor
            return torch.stack([t, torch.zeros_like(t)], dim=-1)[..., 0]
        return t

    return lay(values), lay(values.cuda())


def _acc_tol(dtype):
    return 1e-10 if dtype == torch.float64 else 2e-5


def _grid():
    for rows, sample in CUDA_SHAPES:
        for layout in CUDA_LAYOUTS:
            if layout == "channels_last" and len(sample) != 3:
                continue
            for dtype, tol in CUDA_DTYPES:
                yield pytest.param(rows, sample, layout, dtype, tol,
                                   id=f"{rows}x{'x'.join(map(str, sample))}-{layout}-{str(dtype)[6:]}")


@needs_kernels
@pytest.mark.parametrize("rows,sample,layout,dtype,tol", list(_grid()))
def test_cuda_matches_cpu_kernels(rows, sample, layout, dtype, tol):
    acc = _acc_tol(dtype)
    numel = 1
    for size in sample:
        numel *= size
    # norms spread around the target 1, so both sides of the one-sided hinge are used
    g_cpu, g_cuda = _pair(rows, sample, dtype, layout, scale=1 / max(1, numel) ** 0.5, spread=True)
    for kwargs in (dict(), dict(one_sided=True, weight=10.0, reduction="none"), dict(target=0.0, reduction="sum"),
                   dict(grad_scale=torch.tensor(4.0), sample_weight=torch.rand(rows))):
        cuda_kwargs = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        a = g_cpu.clone().requires_grad_(True)
        b = g_cuda.clone().requires_grad_(True)
        pa, pb = wk.norm_penalty(a, **kwargs), wk.norm_penalty(b, **cuda_kwargs)
        torch.testing.assert_close(pb.cpu(), pa, atol=acc, rtol=acc, equal_nan=True)
        up = torch.randn_like(pa)
        (ga,) = torch.autograd.grad(pa, a, up)
        (gb,) = torch.autograd.grad(pb, b, up.cuda())
        assert gb.shape == b.shape and gb.dtype == dtype and gb.stride() == torch.empty_like(b).stride()
        close(gb.cpu(), ga, tol, tol)
    torch.testing.assert_close(wk.grad_norm(g_cuda).cpu(), wk.grad_norm(g_cpu), atol=acc, rtol=acc)
    torch.testing.assert_close(torch.stack(list(wk.penalty_stats(g_cuda))).cpu(),
                               torch.stack(list(wk.penalty_stats(g_cpu))), atol=acc, rtol=acc)

    real_cpu, real_cuda = _pair(rows, sample, dtype, layout, scale=0.1, seed=1)
    fake_cpu, fake_cuda = _pair(rows, sample, dtype, layout, scale=0.1, seed=2)
    x_cpu = wk.interpolate(real_cpu, fake_cpu, seed=1234)
    x_cuda = wk.interpolate(real_cuda, fake_cuda, seed=1234)
    assert x_cuda.stride() == torch.empty_like(real_cuda).stride()
    close(x_cuda.cpu(), x_cpu, tol, tol)
    close(wk.perturb(real_cuda, scale=0.7, seed=5).cpu(), wk.perturb(real_cpu, scale=0.7, seed=5),
          max(tol, 1e-5), max(tol, 1e-5))

    f_real = torch.rand(rows, 1) * 0.2
    f_fake = torch.zeros(rows)
    for kind in ("quotient", "transport"):
        inputs_cpu = [t.clone().requires_grad_(True) for t in (f_real, f_fake, real_cpu, fake_cpu)]
        inputs_cuda = [t.cuda().requires_grad_(True) for t in (f_real, f_fake)] + [
            t.clone().requires_grad_(True) for t in (real_cuda, fake_cuda)]
        pa = wk.pair_penalty(*inputs_cpu, kind=kind, p=2.0, reduction="none")
        pb = wk.pair_penalty(*inputs_cuda, kind=kind, p=2.0, reduction="none")
        torch.testing.assert_close(pb.cpu(), pa, atol=acc, rtol=acc)
        up = torch.randn_like(pa)
        for ga, gb in zip(torch.autograd.grad(pa, inputs_cpu, up), torch.autograd.grad(pb, inputs_cuda, up.cuda())):
            close(gb.cpu(), ga, max(tol, 1e-5), max(tol, 1e-5))


@needs_kernels
def test_reductions_are_deterministic():
    g = torch.randn(64, 3, 256, 256, device="cuda")
    first = [wk.grad_norm(g), wk.norm_penalty(g), torch.stack(list(wk.penalty_stats(g)))]
    second = [wk.grad_norm(g), wk.norm_penalty(g), torch.stack(list(wk.penalty_stats(g)))]
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@needs_kernels
def test_large_rows_match_the_reference():
    # B = 64, N = 196608: 24 segments per row, the large size
    g = (torch.randn(64, 3, 256, 256, device="cuda") * 0.003).requires_grad_(True)
    out = wk.norm_penalty(g, one_sided=True, weight=10.0)
    expected = ref.norm_penalty(g, None, None, 1.0, True, 10.0, 1.0, "mean")
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(torch.autograd.grad(out, g)[0], torch.autograd.grad(expected, g)[0])
    x = torch.randn(64, 3, 256, 256, device="cuda", dtype=torch.bfloat16)
    torch.testing.assert_close(wk.grad_norm(x), ref.grad_norm(x), atol=2e-5, rtol=2e-5)


# ---------------------------------------------------------------------------------------
# randomness


@needs_kernels
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7, -5])
@pytest.mark.parametrize("batch", [1, 3, 4, 37, 1000])
def test_int_seed_draws_the_same_on_cpu_and_cuda(seed, batch):
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    t_cpu = wk.interpolate(ones, zeros, seed=seed)
    t_cuda = wk.interpolate(ones.cuda(), zeros.cuda(), seed=seed)
    assert torch.equal(t_cuda.cpu(), t_cpu)  # t * 1 + (1 - t) * 0 == t exactly: bit-identical t_i
    x = torch.zeros(batch, 7)
    x[0, 0] = 1.0  # std > 0
    torch.testing.assert_close(wk.perturb(x.cuda(), scale=1.0, seed=seed).cpu(), wk.perturb(x, scale=1.0, seed=seed),
                               atol=1e-5, rtol=1e-5)


@needs_kernels
@pytest.mark.parametrize("row_offset", [1, 3, 4, 37])
@pytest.mark.parametrize("sample", [(1,), (3,), (2, 5), (4,)])
def test_row_offset_draws_the_same_on_cpu_and_cuda(row_offset, sample):
    # odd offsets times odd sample sizes start the noise inside a Philox quad (the scalar path)
    ones, zeros = torch.ones(6, *sample), torch.zeros(6, *sample)
    t_cpu = wk.interpolate(ones, zeros, seed=3, row_offset=row_offset)
    assert torch.equal(wk.interpolate(ones.cuda(), zeros.cuda(), seed=3, row_offset=row_offset).cpu(), t_cpu)
    assert torch.equal(t_cpu[:-1], wk.interpolate(ones[:-1], zeros[:-1], seed=3, row_offset=row_offset))
    x = torch.randn(6, *sample)
    torch.testing.assert_close(wk.perturb(x.cuda(), seed=3, row_offset=row_offset).cpu(),
                               wk.perturb(x, seed=3, row_offset=row_offset), atol=1e-5, rtol=1e-5)


@needs_kernels
def test_cuda_generator_and_seed_refusal():
    real, fake = torch.randn(8, 5, device="cuda"), torch.randn(8, 5, device="cuda")
    state = torch.cuda.get_rng_state()
    a = wk.interpolate(real, fake, generator=torch.Generator("cuda").manual_seed(3))
    b = wk.interpolate(real, fake, generator=torch.Generator("cuda").manual_seed(3))
    assert torch.equal(a, b) and torch.equal(torch.cuda.get_rng_state(), state)  # the default one untouched
    assert not torch.equal(a, wk.interpolate(real, fake, generator=torch.Generator("cuda").manual_seed(4)))
    with pytest.raises(RuntimeError, match="either seed or generator"):
        torch.ops.wgan_kernels.interpolate(real, fake, 1, 0, torch.Generator("cuda"))
    with pytest.raises(RuntimeError, match="row_offset must be non-negative"):
        torch.ops.wgan_kernels.perturb(real, 0.5, 1, -1, None)


@needs_kernels
def test_backward_output_masks_on_cuda():
    ops = torch.ops.wgan_kernels
    g, t = torch.randn(7, 3, 33, device="cuda"), torch.rand(7, device="cuda")
    both = ops.interpolate_backward(g, t, [True, True])
    only_real = ops.interpolate_backward(g, t, [True, False])
    only_fake = ops.interpolate_backward(g, t, [False, True])
    assert only_real[1] is None and only_fake[0] is None
    assert torch.equal(only_real[0], both[0]) and torch.equal(only_fake[1], both[1])
    real, fake = torch.randn(7, 3, 33, device="cuda"), torch.randn(7, 3, 33, device="cuda")
    f_real, f_fake = torch.rand(7, device="cuda"), torch.zeros(7, 1, device="cuda")
    dist = ops.grad_norm(real - fake)
    up = torch.tensor(1.5, device="cuda")
    args = (up, f_real, f_fake, real, fake, dist, "quotient", 1.0, 1.0, "mean")
    full = ops.pair_penalty_backward(*args, [True, True, True, True])
    for mask in ([True, True, False, False], [False, False, True, False], [False, False, False, True],
                 [True, False, False, True]):
        got = ops.pair_penalty_backward(*args, mask)
        for want, wanted, value in zip(full, mask, got):
            assert (value is None) if not wanted else torch.equal(value, want)


@needs_kernels
def test_seed_none_follows_the_cuda_generator():
    real, fake = torch.randn(16, 3, device="cuda"), torch.randn(16, 3, device="cuda")
    torch.cuda.manual_seed(7)
    a, b = wk.interpolate(real, fake), wk.interpolate(real, fake)
    torch.cuda.manual_seed(7)
    assert torch.equal(wk.interpolate(real, fake), a)
    assert not torch.equal(a, b)  # each call advances the generator
    torch.cuda.manual_seed(7)
    p = wk.perturb(real)
    torch.cuda.manual_seed(7)
    assert torch.equal(wk.perturb(real), p)


# ---------------------------------------------------------------------------------------
# autograd, opcheck, torch.compile


@needs_kernels
def test_gradcheck_split_rows():
    # rows longer than one segment (8192 elements); fast mode keeps it to a few launches
    g = (torch.randn(3, 8200, dtype=torch.float64, device="cuda") * 0.02).requires_grad_(True)
    for kwargs in (dict(), dict(one_sided=True, reduction="none"), dict(target=0.0, reduction="sum")):
        assert torch.autograd.gradcheck(lambda a: wk.norm_penalty(a, **kwargs), (g,), fast_mode=True)
    assert torch.autograd.gradcheck(wk.grad_norm, (g,), fast_mode=True)
    a, b = g.detach().clone().requires_grad_(True), (g.detach() * 0.5).requires_grad_(True)
    f = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    h = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: wk.pair_penalty(*t, kind="quotient", reduction="none"), (f, h, a, b),
                                    fast_mode=True)


def _cuda_opcheck_cases():
    """test_autograd's opcheck cases with every tensor (and generator) moved to CUDA."""
    from test_autograd import _opcheck_cases

    def to_cuda(x):
        if isinstance(x, torch.Tensor):
            return x.detach().cuda().requires_grad_(x.requires_grad)
        if isinstance(x, torch.Generator):
            return torch.Generator("cuda").manual_seed(x.initial_seed())
        return x

    return [(op, tuple(to_cuda(a) for a in args), utils) for op, args, utils in _opcheck_cases()]


@needs_kernels
def test_opcheck_on_cuda():
    from test_autograd import run_opcheck

    for case in _cuda_opcheck_cases():
        run_opcheck(*case)


@needs_kernels
def test_torch_compile_fullgraph_on_cuda():
    check_compile_fullgraph_penalty("cuda")


@needs_kernels
def test_torch_compile_draws_seed_none_at_run_time_on_cuda():
    check_compile_draws_seed_none("cuda")


# ---------------------------------------------------------------------------------------
# a penalised critic step in a CUDA graph


def _critic_and_optimizer():
    from wgan_kernels.train.models import MLPCritic

    torch.manual_seed(0)
    critic = MLPCritic(data_dim=2).cuda()
    return critic, torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9), capturable=True)


def _penalised_step(critic, optimizer, real, fake):
    """WGAN-LP critic step: the points from the CUDA generator (seed=None), a double backward."""
    optimizer.zero_grad(set_to_none=False)
    points = wk.interpolate(real, fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    loss = critic(fake).mean() - critic(real).mean() + wk.norm_penalty(grad, one_sided=True, weight=10.0)
    loss.backward()
    optimizer.step()
    return points.detach(), loss.detach()


@needs_kernels
def test_penalised_critic_step_in_a_cuda_graph():
    critic, optimizer = _critic_and_optimizer()
    real, fake = torch.randn(256, 2, device="cuda"), torch.randn(256, 2, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as CUDA graph capture requires
        for _ in range(3):
            _penalised_step(critic, optimizer, real, fake)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_points, static_loss = _penalised_step(critic, optimizer, real, fake)
    # capture runs nothing: the eager copy starts where the replays start
    eager_critic = copy.deepcopy(critic)
    eager_optimizer = torch.optim.Adam(eager_critic.parameters(), lr=1e-4, betas=(0.5, 0.9), capturable=True)
    eager_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))

    torch.cuda.manual_seed(123)
    replayed = []
    for _ in range(4):
        graph.replay()
        replayed.append((static_points.clone(), static_loss.clone()))
    torch.cuda.manual_seed(123)
    eager = [_penalised_step(eager_critic, eager_optimizer, real, fake) for _ in range(4)]

    for (points_g, loss_g), (points_e, loss_e) in zip(replayed, eager):
        assert torch.equal(points_g, points_e)  # the same t_i: replays draw what eager steps draw
        torch.testing.assert_close(loss_g, loss_e, atol=1e-5, rtol=1e-4)
    assert not torch.equal(replayed[0][0], replayed[1][0])  # each replay draws new t_i
    for p_g, p_e in zip(critic.parameters(), eager_critic.parameters()):
        torch.testing.assert_close(p_g, p_e, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------
# a 2-process DDP step with NCCL


def _ddp_worker(rank, world, init_file, batch):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from wgan_kernels.train.models import MLPCritic

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        critic = MLPCritic(data_dim=2).cuda()
        single = copy.deepcopy(critic)
        model = DDP(critic, device_ids=[rank])
        gen = torch.Generator().manual_seed(1)
        real_all = torch.randn(world * batch, 2, generator=gen).cuda()
        fake_all = torch.randn(world * batch, 2, generator=gen).cuda()
        rows = slice(rank * batch, (rank + 1) * batch)

        def step(module, real, fake, row_offset):
            points = wk.interpolate(real, fake, seed=99, row_offset=row_offset).requires_grad_(True)
            (grad,) = torch.autograd.grad(module(points).sum(), points, create_graph=True)
            loss = module(fake).mean() - module(real).mean() + wk.norm_penalty(grad, one_sided=True, weight=10.0)
            loss.backward()

        step(model, real_all[rows], fake_all[rows], rank * batch)  # gradients averaged over the ranks
        step(single, real_all, fake_all, 0)  # the whole batch in one process
        for p_ddp, p_single in zip(critic.parameters(), single.parameters()):
            torch.testing.assert_close(p_ddp.grad, p_single.grad, atol=1e-5, rtol=1e-4)
    finally:
        dist.destroy_process_group()


@needs_kernels
def test_ddp_step_with_nccl(tmp_path):
    import torch.distributed as dist

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 GPUs (NCCL refuses two ranks on one GPU)")
    if not dist.is_nccl_available():
        pytest.skip("NCCL not available")
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), 32), nprocs=2, join=True)
