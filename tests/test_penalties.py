"""wgan_kernels.penalties: every regulariser by name, with the library's numbers."""

from __future__ import annotations

import pytest
import torch

import wgan_kernels as wk
from wgan_kernels.functional import PAIR_KINDS
from wgan_kernels.penalties import CLIP, PENALTIES, critic_penalty, gradient_norms, parts_in_loss


def critic_and_batch(batch=6, dim=5):
    critic = torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        critic[2].weight.mul_(20.0)  # gradient norms around 1 and above: every penalty is non-zero
    real, fake = torch.randn(batch, dim), torch.randn(batch, dim)
    return critic, real, fake


def test_names_come_from_the_library():
    assert PENALTIES == (*wk.METHODS, *PAIR_KINDS, CLIP)
    assert parts_in_loss("gp") == ("above", "below") and parts_in_loss("lp") == ("above",)
    assert parts_in_loss("r1") == ("above",) and parts_in_loss("quotient") == ("above",) and parts_in_loss(CLIP) == ()


@pytest.mark.parametrize("name", list(wk.METHODS))
def test_gradient_penalties_match_gradient_penalty(name):
    critic, real, fake = critic_and_batch()
    pen = critic_penalty(name, critic, real, fake, weight=3.0, seed=7)
    expected = wk.gradient_penalty(critic, real, fake, method=name, weight=3.0, seed=7)
    torch.testing.assert_close(pen.loss, expected)
    parts = pen.above + (pen.below if "below" in parts_in_loss(name) else 0)
    torch.testing.assert_close(3.0 * parts, pen.loss.detach(), rtol=1e-5, atol=1e-7)
    (grad,) = torch.autograd.grad(pen.loss, list(critic.parameters())[0])  # differentiable in the critic
    assert grad.abs().sum() > 0 and pen.norms.max_norm >= pen.norms.min_norm


def test_given_points_replace_the_sampling():
    critic, real, fake = critic_and_batch()
    points = wk.interpolate(real, fake, seed=11)
    pen = critic_penalty("lp", critic, real, fake, weight=2.0, points=points)
    torch.testing.assert_close(pen.loss, wk.gradient_penalty(critic, real, fake, method="lp", weight=2.0, seed=11))


@pytest.mark.parametrize("kind", PAIR_KINDS)
def test_pair_penalties_match_pair_penalty(kind):
    critic, real, fake = critic_and_batch()
    f_real, f_fake = critic(real).squeeze(1), critic(fake).squeeze(1) * 5
    pen = critic_penalty(kind, critic, real, fake, f_real, f_fake, weight=4.0, pair_p=2.0)
    torch.testing.assert_close(pen.loss, wk.pair_penalty(f_real, f_fake, real, fake, kind=kind, weight=4.0, p=2.0))
    torch.testing.assert_close(4.0 * pen.above, pen.loss.detach())
    assert pen.below == 0 and pen.norms is None
    with pytest.raises(ValueError, match="f_real"):
        critic_penalty(kind, critic, real, fake, weight=1.0)


def test_clip_has_no_loss_term_and_unknown_names_are_refused():
    critic, real, fake = critic_and_batch()
    assert critic_penalty(CLIP, critic, real, fake, weight=1.0) is None
    with pytest.raises(ValueError, match="penalty must be one of"):
        critic_penalty("wgan", critic, real, fake, weight=1.0)


def test_gradient_norms_are_first_order_norms_at_interpolates():
    critic, real, fake = critic_and_batch()
    stats = gradient_norms(critic, real, fake, seed=5)
    points = wk.interpolate(real, fake, seed=5).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points)
    norms = grad.norm(dim=1)
    torch.testing.assert_close(stats.max_norm, norms.max())
    torch.testing.assert_close(stats.mean_norm, norms.mean())
