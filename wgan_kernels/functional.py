"""The public penalty API. Inputs are validated here (errors name the argument), then the
compiled kernels run, or the plain-PyTorch reference where no kernel exists for the device.
Formulas and conventions: README.md, "The penalties".
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from . import _backend, reference

if _backend._C is not None:
    from . import _ops as _compiled
else:
    _compiled = None

REDUCTIONS = ("mean", "sum", "none")
PAIR_KINDS = ("quotient", "transport")
SAMPLINGS = ("interpolate", "perturb_real", "perturb_both", "real", "fake")


class Preset(NamedTuple):
    sampling: str
    target: float
    one_sided: bool


# method -> where the gradient is taken and what the penalty is (README: "The penalties").
METHODS = {
    "gp": Preset("interpolate", 1.0, False),  # WGAN-GP eq. (6)
    "lp": Preset("interpolate", 1.0, True),  # WGAN-LP eq. (8)
    "dragan": Preset("perturb_real", 1.0, False),  # DRAGAN
    "r1": Preset("real", 0.0, False),  # Mescheder et al. 2018, weight * mean n^2
    "r2": Preset("fake", 0.0, False),
}


class PenaltyStats(NamedTuple):
    """Per-batch diagnostics of the per-sample gradient norms n_i (unscaled), as 0-dim tensors.
    part_above + part_below is the mean of (n_i - target)^2 (the GP term); part_above alone is
    the LP term (WGAN-LP figure 6)."""

    mean_norm: torch.Tensor
    max_norm: torch.Tensor
    min_norm: torch.Tensor
    frac_above: torch.Tensor
    part_above: torch.Tensor
    part_below: torch.Tensor


assert PenaltyStats._fields == reference.STAT_NAMES


def backend() -> str:
    """'compiled' when the C++ extension is loaded, 'reference' otherwise."""
    return _backend.backend()


def _impl(t: torch.Tensor):
    if _compiled is not None and t.device.type in _backend.KERNEL_DEVICES:
        return _compiled
    return reference


# ---------------------------------------------------------------------------------------
# validation


def _check_batched(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension (shape (B, ...)), got a 0-dim tensor")


def _check_like(t, name: str, ref: torch.Tensor, ref_name: str) -> None:
    _check_batched(t, name)
    if t.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, got {tuple(t.shape)}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {t.dtype}")
    if t.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {t.device}")


def _check_per_sample(t, name: str, batch: int, device: torch.device) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() not in (1, 2) or t.shape[0] != batch or t.numel() != batch:
        raise ValueError(f"{name} must have shape (B,) or (B, 1) with B = {batch}, got {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{name} must be on device {device}, got {t.device}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must be a real-valued tensor, got dtype {t.dtype}")


def _check_choice(value, name: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def _check_non_negative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return float(value)


def _loss_scale(grad_scale):
    """grad_scale -> (float part, tensor part) of the loss scale the gradient carries."""
    if grad_scale is None:
        return 1.0, None
    if isinstance(grad_scale, torch.Tensor):
        if grad_scale.numel() != 1:
            raise ValueError(f"grad_scale must be a float or a one-element tensor, got shape {tuple(grad_scale.shape)}")
        return 1.0, grad_scale.detach()
    if isinstance(grad_scale, bool) or not isinstance(grad_scale, (int, float)):
        raise TypeError(f"grad_scale must be a float, a one-element tensor or None, got {type(grad_scale).__name__}")
    if not grad_scale > 0:
        raise ValueError(f"grad_scale must be positive, got {grad_scale}")
    return float(grad_scale), None


_UINT64 = 1 << 64


def _seed_and_offset(seed, device: torch.device, impl) -> tuple[int, int]:
    """An explicit seed selects a fixed stream (offset 0); None draws a fresh seed from PyTorch's
    generator of the device, so torch.manual_seed reproduces the result."""
    if seed is None:
        if impl is _compiled and device.type == "cpu":
            return _backend._C.draw_cpu_seed(), 0
        return int(torch.empty((), dtype=torch.int64, device=device).random_()), 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    seed %= _UINT64  # any int -> the 64-bit word the kernels use, as a signed int64
    return (seed - _UINT64 if seed >= _UINT64 // 2 else seed), 0


# ---------------------------------------------------------------------------------------
# ops


def interpolate(real: torch.Tensor, fake: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
    """x_hat_i = t_i * real_i + (1 - t_i) * fake_i with one t_i ~ U[0, 1) per sample, drawn in
    the kernel. Differentiable in real and fake."""
    _check_batched(real, "real")
    _check_like(fake, "fake", real, "real")
    impl = _impl(real)
    s, offset = _seed_and_offset(seed, real.device, impl)
    return impl.interpolate(real, fake, s, offset)


def perturb(x: torch.Tensor, *, scale: float = 0.5, seed: int | None = None) -> torch.Tensor:
    """x + scale * std(x) * z (DRAGAN; WGAN-LP appendix D.4): std is the population standard
    deviation over all elements of x, z ~ N(0, 1) independently per element. The amplitude is
    not differentiated, so d out / d x is the identity."""
    _check_batched(x, "x")
    scale = _check_non_negative(scale, "scale")
    impl = _impl(x)
    s, offset = _seed_and_offset(seed, x.device, impl)
    return impl.perturb(x, scale, s, offset)


def grad_norm(grad: torch.Tensor) -> torch.Tensor:
    """(B,) L2 norms of each sample over all non-batch dims, in float32 (float64 for float64).
    Differentiable; the gradient at a zero sample is 0."""
    _check_batched(grad, "grad")
    return _impl(grad).grad_norm(grad)


def norm_penalty(
    grad: torch.Tensor,
    *,
    target: float = 1.0,
    one_sided: bool = False,
    weight: float = 1.0,
    grad_scale: float | torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """weight * mean_i(w_i * term_i) with term_i = (n_i - target)^2, or max(0, n_i - target)^2
    when one_sided, n_i = ||grad_i|| / grad_scale. GP: defaults; LP: one_sided=True; R1/R2:
    target=0. reduction 'sum' drops the 1/B, 'none' returns the (B,) weighted terms."""
    _check_batched(grad, "grad")
    target = _check_non_negative(target, "target")
    weight = _check_non_negative(weight, "weight")
    _check_choice(reduction, "reduction", REDUCTIONS)
    scale, scale_tensor = _loss_scale(grad_scale)
    if sample_weight is not None:
        _check_per_sample(sample_weight, "sample_weight", grad.shape[0], grad.device)
    return _impl(grad).norm_penalty(
        grad, scale_tensor, sample_weight, target, bool(one_sided), weight, scale, reduction
    )


def penalty_stats(
    grad: torch.Tensor, *, target: float = 1.0, grad_scale: float | torch.Tensor | None = None
) -> PenaltyStats:
    """Diagnostics of the per-sample norms in one pass (see PenaltyStats). A size-0 batch gives zeros."""
    _check_batched(grad, "grad")
    target = _check_non_negative(target, "target")
    scale, scale_tensor = _loss_scale(grad_scale)
    with torch.no_grad():
        stats = _impl(grad).penalty_stats(grad, scale_tensor, target, scale)
    return PenaltyStats(*stats.unbind())


def pair_penalty(
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    kind: str = "quotient",
    weight: float = 1.0,
    p: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """WGAN-LP's penalties on pairs (real_i, fake_i) with critic values f_real, f_fake ((B,) or
    (B, 1)) and d_i = ||real_i - fake_i||^p: 'quotient' (eq. 7) max(0, |f_r - f_f| / d - 1)^2,
    'transport' (eq. 9) max(0, f_r - f_f - d)^2. No double backward needed."""
    _check_batched(real, "real")
    _check_like(fake, "fake", real, "real")
    batch = real.shape[0]
    for t, name in ((f_real, "f_real"), (f_fake, "f_fake")):
        _check_per_sample(t, name, batch, real.device)
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    _check_choice(kind, "kind", PAIR_KINDS)
    _check_choice(reduction, "reduction", REDUCTIONS)
    weight = _check_non_negative(weight, "weight")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"p must be a positive number, got {p!r}")
    return _impl(real).pair_penalty(f_real, f_fake, real, fake, kind, weight, float(p), reduction)


def _sample_points(real, fake, sampling: str, seed, perturb_scale: float) -> torch.Tensor:
    real, fake = real.detach(), fake.detach()
    if sampling == "interpolate":
        return interpolate(real, fake, seed=seed)
    if sampling == "perturb_real":
        return perturb(real, scale=perturb_scale, seed=seed)
    if sampling == "perturb_both":
        return perturb(torch.cat([real, fake]), scale=perturb_scale, seed=seed)
    return real if sampling == "real" else fake


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    method: str = "lp",
    weight: float = 10.0,
    seed: int | None = None,
    sampling: str | None = None,
    target: float | None = None,
    one_sided: bool | None = None,
    perturb_scale: float = 0.5,
    grad_scale: float | torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
    reduction: str = "mean",
    return_stats: bool = False,
):
    """The drop-in penalty: samples the points (per `method`, see METHODS), evaluates the critic,
    takes the input gradient with create_graph=True and returns the fused penalty, ready to add
    to the critic loss. `sampling`, `target` and `one_sided` override the method's preset.

    With a GradScaler pass grad_scale=scaler.get_scale() (or the scale tensor): the critic output
    is multiplied by it before the gradient is taken, and the penalty unscales inside the op.
    return_stats=True also returns PenaltyStats of the same gradient.
    """
    _check_choice(method, "method", tuple(METHODS))
    preset = METHODS[method]
    sampling = preset.sampling if sampling is None else sampling
    _check_choice(sampling, "sampling", SAMPLINGS)
    _check_batched(real, "real")
    _check_like(fake, "fake", real, "real")
    if not callable(critic):
        raise TypeError(f"critic must be callable (a module or function), got {type(critic).__name__}")
    target = preset.target if target is None else target
    one_sided = preset.one_sided if one_sided is None else one_sided
    _loss_scale(grad_scale)  # validate before the critic runs

    points = _sample_points(real, fake, sampling, seed, perturb_scale).requires_grad_(True)
    out = critic(points)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"critic must return a tensor, got {type(out).__name__}")
    if grad_scale is not None:
        out = out * grad_scale
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    penalty = norm_penalty(
        grad, target=target, one_sided=one_sided, weight=weight, grad_scale=grad_scale,
        sample_weight=sample_weight, reduction=reduction,
    )
    if return_stats:
        return penalty, penalty_stats(grad.detach(), target=target, grad_scale=grad_scale)
    return penalty


@torch.no_grad()
def clip_weights_(module: torch.nn.Module, c: float = 0.01) -> torch.nn.Module:
    """The original WGAN baseline: clamp every parameter of module to [-c, c] in place."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"c must be a positive number, got {c!r}")
    for parameter in module.parameters():
        parameter.clamp_(-c, c)
    return module
