"""Every Lipschitz regulariser of the library by one name, for training loops: the names, what
each one's loss contains, and one call that computes the chosen penalty for a critic step.

    pen = critic_penalty("lp", critic, real, fake, f_real, f_fake, weight=10.0)
    loss = f_fake.mean() - f_real.mean() + pen.loss

The names and presets come from wgan_kernels.METHODS and PAIR_KINDS (wgan_kernels/functional.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .functional import METHODS, PAIR_KINDS, PenaltyStats, gradient_penalty, interpolate, pair_penalty, penalty_stats

GRADIENT_PENALTIES = tuple(METHODS)  # on the critic's input gradient (a double backward)
PAIR_PENALTIES = tuple(PAIR_KINDS)  # on the critic values of the pairs (real_i, fake_i)
CLIP = "clip"  # the original WGAN: clamp the critic's weights after each step, no loss term
PENALTIES = (*GRADIENT_PENALTIES, *PAIR_PENALTIES, CLIP)


class Penalty(NamedTuple):
    """One critic step's penalty. `above` and `below` are the mean term's parts (without the
    weight) from per-sample norms above and below the target (WGAN-LP figure 6); the loss holds
    the parts that parts_in_loss(name) names, the other one is a diagnostic."""

    loss: torch.Tensor  # weight * mean term: add it to the critic loss
    above: torch.Tensor
    below: torch.Tensor
    norms: PenaltyStats | None  # statistics of the gradient norms (gradient penalties only)


def parts_in_loss(name: str) -> tuple[str, ...]:
    """Which of Penalty.above / Penalty.below the loss of penalty `name` contains."""
    if name == CLIP:
        return ()
    if name in PAIR_PENALTIES:
        return ("above",)  # one-sided: a pair contributes only above the bound
    preset = METHODS[name]
    if preset.one_sided or preset.target == 0:  # norms are never below a target of 0
        return ("above",)
    return ("above", "below")


def critic_penalty(
    name: str,
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    f_real: torch.Tensor | None = None,
    f_fake: torch.Tensor | None = None,
    *,
    weight: float,
    seed: int | None = None,
    points: torch.Tensor | None = None,
    grad_scale: float | torch.Tensor | None = None,
    pair_p: float = 1.0,
) -> Penalty | None:
    """The penalty `name` (one of PENALTIES) for one critic step, or None for 'clip' (clamp the
    weights after the optimizer step with wk.clip_weights_).

    Gradient penalties draw their points from real and fake with `seed` (wk.gradient_penalty),
    or take the given `points` (a data-parallel run draws them on the global batch). Pair
    penalties pair real_i with fake_i and use the critic values f_real, f_fake that the critic
    loss computes anyway (wk.pair_penalty, exponent pair_p)."""
    if name in GRADIENT_PENALTIES:
        if points is not None:
            real = fake = points
        sampling = "real" if points is not None else None
        loss, stats = gradient_penalty(critic, real, fake, method=name, weight=weight, seed=seed, sampling=sampling,
                                       grad_scale=grad_scale, return_stats=True)
        return Penalty(loss, stats.part_above, stats.part_below, stats)
    if name in PAIR_PENALTIES:
        if f_real is None or f_fake is None:
            raise ValueError(f"penalty {name!r} needs the critic values f_real and f_fake")
        term = pair_penalty(f_real, f_fake, real, fake, kind=name, p=pair_p)
        detached = term.detach()
        return Penalty(weight * term, detached, torch.zeros_like(detached), None)
    if name == CLIP:
        return None
    raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}, got {name!r}")


def gradient_norms(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, *,
                   seed: int | None = None) -> PenaltyStats:
    """Statistics of the critic's input-gradient norms at interpolates of real and fake, from a
    plain first-order gradient (no double backward): the diagnostic for steps whose penalty does
    not compute them (clip, pair penalties, lazy regularisation)."""
    points = interpolate(real.detach(), fake.detach(), seed=seed).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).float().sum(), points)
    return penalty_stats(grad)
