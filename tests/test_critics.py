"""gradient_penalty with every critic a user brings: compiled, with attention, with BatchNorm,
(B,) or (B, 1) outputs, under no_grad / inference_mode, and gradient_penalty under torch.compile.
Each case is compared with the eager critic (values and parameter gradients)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import wgan_kernels as wk
from wgan_kernels import functional, reference as ref


def mlp_critic(width=16, out=1):
    return torch.nn.Sequential(
        torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, width), torch.nn.Tanh(),
        torch.nn.Linear(width, out),
    )


def scaled_up(critic, factor=3.0):
    """Larger weights, so that some gradient norms exceed 1 and LP is not zero."""
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(factor)
    return critic


def penalty_and_grads(critic, params, real, fake, **kwargs):
    penalty = wk.gradient_penalty(critic, real, fake, **kwargs)
    return penalty, torch.autograd.grad(penalty, params, materialize_grads=True)


def eager_recipe(critic, points, weight=10.0):
    """The hand-written WGAN-LP penalty at given points."""
    points = points.detach().requires_grad_(True)
    out = critic(points)
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    return weight * (torch.relu(grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def assert_same(got, expected, rtol=1e-5, atol=1e-6):
    """Same penalty and parameter gradients, up to float32 rounding relative to the largest entry."""
    (penalty, grads), (expected_penalty, expected_grads) = got, expected
    assert expected_penalty.item() > 0
    torch.testing.assert_close(penalty, expected_penalty, rtol=rtol, atol=atol)
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol * max(1.0, b.abs().max().item()))


# ---------------------------------------------------------------------------------------
# torch.compile'd critics: the penalty pass runs the eager original


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_critic_equals_eager_critic(backend):
    critic = scaled_up(mlp_critic())
    params = list(critic.parameters())
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    expected = penalty_and_grads(critic, params, real, fake, seed=5)
    compiled = torch.compile(critic, backend=backend)
    compiled(real)  # the compiled critic also serves the critic loss
    assert_same(penalty_and_grads(compiled, params, real, fake, seed=5), expected)


def test_compiled_function_and_compiled_submodule_critics():
    critic = scaled_up(mlp_critic())
    params = list(critic.parameters())
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    expected = penalty_and_grads(critic, params, real, fake, seed=2)
    compiled_function = torch.compile(lambda x: critic(x), backend="aot_eager")
    assert_same(penalty_and_grads(compiled_function, params, real, fake, seed=2), expected)
    wrapper = torch.nn.Sequential(torch.compile(critic, backend="aot_eager"))  # compiled part inside
    assert_same(penalty_and_grads(wrapper, params, real, fake, seed=2), expected)
    wrapper(real)  # outside the penalty pass the compiled part still runs compiled


# ---------------------------------------------------------------------------------------
# attention: the penalty pass uses the math backend, the one with a double backward


class AttentionCritic(torch.nn.Module):
    """Tokens (B, T, D) -> one value per sample through one multi-head attention layer."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, 1)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (y.reshape(b, t, self.heads, -1).transpose(1, 2) for y in self.qkv(x).chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        return self.out(torch.tanh(attended)).sum(dim=(1, 2))


def test_attention_critic_has_a_double_backward_and_matches_math_attention():
    critic = scaled_up(AttentionCritic(), 3.0)
    params = list(critic.parameters())
    real, fake = torch.randn(4, 5, 8), torch.randn(4, 5, 8)
    points = wk.interpolate(real, fake, seed=9)
    # the default (fused) CPU attention has no double backward: the hand-written recipe fails
    with pytest.raises(RuntimeError, match="derivative for .*attention.* is not implemented"):
        torch.autograd.grad(eager_recipe(critic, points), params)
    with sdpa_kernel(SDPBackend.MATH):
        expected_penalty = eager_recipe(critic, points)
    expected = expected_penalty, torch.autograd.grad(expected_penalty, params, materialize_grads=True)
    assert_same(penalty_and_grads(critic, params, real, fake, seed=9), expected)
    # and the user's backend choice outside the penalty pass is untouched
    assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()


# ---------------------------------------------------------------------------------------
# output shapes


def test_critic_output_b_and_b1_agree():
    critic = scaled_up(mlp_critic())
    params = list(critic.parameters())
    real, fake = torch.randn(7, 3), torch.randn(7, 3)
    column = penalty_and_grads(critic, params, real, fake, seed=4)  # (B, 1)
    flat = penalty_and_grads(lambda x: critic(x).squeeze(1), params, real, fake, seed=4)  # (B,)
    assert_same(flat, column)


@pytest.mark.parametrize("bad_output", [lambda o: o.mean(), lambda o: o.reshape(1, -1), lambda o: o[:-1],
                                        lambda o: torch.cat([o, o], dim=1)], ids=["mean", "1xB", "B-1", "Bx2"])
def test_critic_output_of_another_shape_is_refused(bad_output):
    critic = mlp_critic()
    with pytest.raises(ValueError, match=r"critic's output must have one value per sample, shape \(B,\) or \(B, 1\)"):
        wk.gradient_penalty(lambda x: bad_output(critic(x)), torch.randn(5, 3), torch.randn(5, 3))


# ---------------------------------------------------------------------------------------
# BatchNorm


def batchnorm_critic():
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_batchnorm_critic_warns_once_per_critic():
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    first, second = batchnorm_critic(), batchnorm_critic()
    with pytest.warns(UserWarning, match="critic has BatchNorm"):
        wk.gradient_penalty(first, real, fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wk.gradient_penalty(first, real, fake)
        wk.gradient_penalty(mlp_critic(), real, fake)  # no BatchNorm, no warning
        wk.gradient_penalty(second.eval(), real, fake)  # running statistics: nothing mixes, no warning
    with pytest.warns(UserWarning, match="critic has BatchNorm"):
        wk.gradient_penalty(torch.nn.Sequential(second.train()), real, fake)


# ---------------------------------------------------------------------------------------
# no_grad and inference_mode: the penalty's value


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("sampling", ["interpolate", "real"])
def test_penalty_value_without_grad_mode(mode, sampling):
    critic = scaled_up(mlp_critic())
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    expected, expected_stats = wk.gradient_penalty(critic, real, fake, seed=3, sampling=sampling, return_stats=True)
    with mode():
        if mode is torch.inference_mode:  # inputs made in inference mode are inference tensors
            real, fake = real.clone(), fake.clone()
        got, stats = wk.gradient_penalty(critic, real, fake, seed=3, sampling=sampling, return_stats=True)
    assert got.grad_fn is None and not got.requires_grad
    assert all(p.grad is None for p in critic.parameters())
    torch.testing.assert_close(got, expected.detach())
    torch.testing.assert_close(torch.stack(list(stats)), torch.stack(list(expected_stats)))


# ---------------------------------------------------------------------------------------
# gradient_penalty inside torch.compile


@pytest.mark.parametrize("backend,ops", [("aot_eager", "default"), ("inductor", "default"), ("aot_eager", "reference")])
def test_gradient_penalty_under_torch_compile(backend, ops, monkeypatch):
    # the critic's double backward runs eagerly (a graph break: fullgraph is not possible);
    # sampling and the penalty are compiled (the reference's NumPy draws run eagerly)
    if ops == "reference":
        monkeypatch.setattr(functional, "_compiled", None)
    torch._dynamo.reset()
    critic = scaled_up(mlp_critic())
    params = list(critic.parameters())
    real, fake, w = torch.randn(8, 3), torch.randn(8, 3), torch.rand(8) + 0.5

    def step(real, fake, w):
        return wk.gradient_penalty(critic, real, fake, method="gp", seed=21, sample_weight=w, grad_scale=torch.tensor(8.0))

    expected = step(real, fake, w)
    expected = expected, torch.autograd.grad(expected, params, materialize_grads=True)
    got = torch.compile(step, backend=backend)(real, fake, w)
    assert_same((got, torch.autograd.grad(got, params, materialize_grads=True)), expected)


def test_reference_backend_gives_the_same_penalty():
    critic = scaled_up(mlp_critic())
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    points = ref.interpolate(real, fake, 13)
    torch.testing.assert_close(wk.gradient_penalty(critic, real, fake, seed=13), eager_recipe(critic, points))
