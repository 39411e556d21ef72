"""The public penalty API. Inputs are validated here (errors name the argument), then the
compiled kernels run, or the plain-PyTorch reference where no kernel exists for the device.
Formulas and conventions: README.md, "The penalties".
"""

from __future__ import annotations

import sys
import warnings
import weakref
from typing import Callable, NamedTuple

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

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
    """'compiled' when the C++ extension is loaded, 'reference' otherwise. CUDA tensors use the
    compiled CUDA kernels only with WGAN_KERNELS_CUDA=1 set at import (they are not yet verified
    on a GPU; docs/CUDA.md), else the reference: see _backend.cuda_kernels_enabled()."""
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


def _checks_values(t: torch.Tensor) -> bool:
    """Whether the values of a tensor argument are checked: only for CPU tensors outside
    torch.compile (reading a CUDA tensor's values syncs the device and breaks CUDA-graph capture;
    reading a traced tensor's values breaks the graph)."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def _check_sample_weight(t, batch: int, device: torch.device) -> None:
    _check_per_sample(t, "sample_weight", batch, device)
    if _checks_values(t) and bool((t < 0).any()):
        worst = int(t.reshape(-1).argmin())
        raise ValueError(f"sample_weight must be non-negative, got {t.reshape(-1)[worst].item()} at sample {worst}")


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
        if _checks_values(grad_scale) and not grad_scale.item() > 0:
            raise ValueError(f"grad_scale must be positive, got {grad_scale.item()}")
        return 1.0, grad_scale.detach()
    if isinstance(grad_scale, bool) or not isinstance(grad_scale, (int, float)):
        raise TypeError(f"grad_scale must be a float, a one-element tensor or None, got {type(grad_scale).__name__}")
    if not grad_scale > 0:
        raise ValueError(f"grad_scale must be positive, got {grad_scale}")
    return float(grad_scale), None


_UINT64 = 1 << 64


def _check_randomness(seed, row_offset, generator, device: torch.device):
    """Validates the random-stream arguments; an int seed becomes the 64-bit word the kernels
    use, as a signed int64."""
    if isinstance(row_offset, bool) or not isinstance(row_offset, int):
        raise TypeError(f"row_offset must be an int, got {type(row_offset).__name__}")
    if not 0 <= row_offset < _UINT64 // 2:
        raise ValueError(f"row_offset must be a non-negative int64, got {row_offset}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if seed is not None:
            raise ValueError("generator is drawn from only when seed is None: pass seed or generator, not both")
        gen_device = generator.device
        if gen_device.type != device.type or (
            gen_device.index is not None and device.index is not None and gen_device.index != device.index
        ):
            raise ValueError(f"generator must be a generator of the input's device ({device}), got {gen_device}")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    seed %= _UINT64
    return seed - _UINT64 if seed >= _UINT64 // 2 else seed


# ---------------------------------------------------------------------------------------
# ops


def interpolate(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    seed: int | None = None,
    row_offset: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_hat_i = t_i * real_i + (1 - t_i) * fake_i with one t_i ~ U[0, 1) per sample, drawn in
    the kernel. Differentiable in real and fake.

    An int seed selects a fixed Philox stream and the batch gets its rows row_offset..row_offset+B-1
    (rank k of a data-parallel job with local batch B passes k * B to get its rows of the
    single-process draw); seed=None draws a seed from `generator`, or the device's default
    generator, so torch.manual_seed reproduces the result."""
    _check_batched(real, "real")
    _check_like(fake, "fake", real, "real")
    seed = _check_randomness(seed, row_offset, generator, real.device)
    return _impl(real).interpolate(real, fake, seed, row_offset, generator)


def perturb(
    x: torch.Tensor,
    *,
    scale: float = 0.5,
    seed: int | None = None,
    row_offset: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x + scale * std(x) * z (DRAGAN; WGAN-LP appendix D.4): std is the population standard
    deviation over all elements of x, z ~ N(0, 1) independently per element. The amplitude is
    not differentiated, so d out / d x is the identity. seed, row_offset and generator select
    z's rows of the random stream as in interpolate."""
    _check_batched(x, "x")
    scale = _check_non_negative(scale, "scale")
    seed = _check_randomness(seed, row_offset, generator, x.device)
    return _impl(x).perturb(x, scale, seed, row_offset, generator)


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
        _check_sample_weight(sample_weight, grad.shape[0], grad.device)
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


def _sample_points(real, fake, sampling: str, perturb_scale: float, seed, row_offset: int, generator):
    real, fake = real.detach(), fake.detach()
    randomness = dict(seed=seed, row_offset=row_offset, generator=generator)
    if sampling == "interpolate":
        return interpolate(real, fake, **randomness)
    if sampling == "perturb_real":
        return perturb(real, scale=perturb_scale, **randomness)
    if sampling == "perturb_both":  # 2B rows: rank k of a data-parallel job passes row_offset k*B
        return perturb(torch.cat([real, fake]), scale=perturb_scale, **{**randomness, "row_offset": 2 * row_offset})
    return real if sampling == "real" else fake


def _compiled_module_type():
    """torch.compile's module wrapper; torch._dynamo is imported by the first torch.compile call,
    so while it is not, no critic can be compiled."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return None if eval_frame is None else eval_frame.OptimizedModule


def _eager_original(critic):
    """The eager original of a torch.compile'd critic: compile cannot take a double backward."""
    compiled = _compiled_module_type()
    if compiled is not None and isinstance(critic, compiled):
        return critic._orig_mod
    return getattr(critic, "_torchdynamo_orig_callable", critic)  # a compiled function


class _CriticParts(NamedTuple):
    batchnorms: tuple  # the critic's BatchNorm modules
    compiled_parts: bool  # has torch.compile'd submodules


_CRITIC_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> _CriticParts
_WARNED_BATCHNORM: weakref.WeakSet = weakref.WeakSet()


def _critic_parts(critic) -> _CriticParts:
    if not isinstance(critic, torch.nn.Module):
        return _CriticParts((), False)
    parts = _CRITIC_PARTS.get(critic)
    if parts is None:
        compiled = _compiled_module_type()
        modules = list(critic.modules())
        parts = _CriticParts(
            tuple(m for m in modules if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)),
            compiled is not None and any(isinstance(m, compiled) for m in modules),
        )
        _CRITIC_PARTS[critic] = parts
    return parts


def _warn_batchnorm_once(critic, batchnorms) -> None:
    if critic in _WARNED_BATCHNORM or not any(m.training for m in batchnorms):
        return
    _WARNED_BATCHNORM.add(critic)
    warnings.warn(
        f"critic has BatchNorm ({type(batchnorms[0]).__name__}) in training mode: the penalty pass normalises "
        "the penalty points with their own batch statistics, so each sample's input gradient depends on the "
        "other samples, and it updates the running statistics. WGAN-GP's critic uses layer norm or none.",
        UserWarning,
        stacklevel=5,  # the caller of gradient_penalty (through torch.compiler.disable's wrapper)
    )


def _check_critic_output(out, points: int) -> None:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"critic must return a tensor, got {type(out).__name__}")
    if out.shape not in ((points,), (points, 1)):
        hint = (
            "a scalar: does the critic reduce over the batch (e.g. out.mean())?" if out.dim() == 0
            else "does the critic see a batch (B, ...) of samples, and are real and fake batched?"
        )
        raise ValueError(
            f"critic's output must have one value per sample, shape (B,) or (B, 1) with B = {points}; "
            f"got shape {tuple(out.shape)}, {hint}"
        )


@torch.compiler.disable  # compile cannot take a double backward: the critic runs eagerly (README)
def _input_gradient(critic, points: torch.Tensor, grad_scale, create_graph: bool) -> torch.Tensor:
    """The critic's input gradient at points, differentiable in the critic's parameters if
    create_graph. Leaves inference mode for the pass (autograd cannot run in it)."""
    if torch.is_inference_mode_enabled():
        with torch.inference_mode(False):
            return _input_gradient(critic, points.clone(), grad_scale, create_graph)
    critic = _eager_original(critic)
    parts = _critic_parts(critic)
    if parts.batchnorms:
        _warn_batchnorm_once(critic, parts.batchnorms)
    points = points.detach().requires_grad_(True)
    # The math attention backend is the one with a double backward.
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        if parts.compiled_parts:
            with torch.compiler.set_stance("force_eager"):
                out = critic(points)
        else:
            out = critic(points)
        _check_critic_output(out, points.shape[0])
        total = out.sum() if grad_scale is None else out.sum() * grad_scale
    grad = None
    if total.requires_grad:
        (grad,) = torch.autograd.grad(total, points, create_graph=create_graph, allow_unused=True)
    if grad is None:
        raise ValueError("critic's output does not depend on its input (does it detach it, or run under no_grad?)")
    return grad


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    method: str = "lp",
    weight: float = 10.0,
    seed: int | None = None,
    row_offset: int = 0,
    generator: torch.Generator | None = None,
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
    to the critic loss. `sampling`, `target` and `one_sided` override the method's preset; seed,
    row_offset and generator select the random points as in interpolate / perturb.

    The critic must return one value per sample, (B,) or (B, 1). The penalty pass evaluates a
    torch.compile'd critic's eager original (compile cannot differentiate twice) and uses the
    math attention backend (the only one with a double backward). Under torch.no_grad() or
    torch.inference_mode() it returns the penalty's value.

    sampling="perturb_both" perturbs real and fake: term_i is the mean of the terms at the two
    perturbed samples real_i and fake_i, so the result has B terms like every other sampling
    (its noise: the 2B rows of cat([real, fake]) from stream row 2 * row_offset).

    With a GradScaler pass grad_scale=scaler.get_scale() (or the scale tensor): the critic output
    is multiplied by it before the gradient is taken, and the penalty unscales inside the op.
    return_stats=True also returns PenaltyStats of the same gradient (2B norms for perturb_both).
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
    # everything the penalty checks, before the critic runs
    _check_non_negative(target, "target")
    weight = _check_non_negative(weight, "weight")
    _check_choice(reduction, "reduction", REDUCTIONS)
    _loss_scale(grad_scale)
    batch = real.shape[0]
    if sample_weight is not None:
        _check_sample_weight(sample_weight, batch, real.device)

    points = _sample_points(real, fake, sampling, perturb_scale, seed, row_offset, generator)
    # under torch.no_grad() or inference_mode(): only the penalty's value
    grad = _input_gradient(critic, points, grad_scale, create_graph=torch.is_grad_enabled())
    penalty_args = dict(target=target, one_sided=one_sided, grad_scale=grad_scale)
    if sampling == "perturb_both":  # 2B points: term_i = (term at real_i + term at fake_i) / 2
        if sample_weight is not None:
            sample_weight = sample_weight.reshape(-1).repeat(2)
        if reduction == "mean":  # the mean over the 2B points
            penalty = norm_penalty(grad, weight=weight, sample_weight=sample_weight, **penalty_args)
        else:
            half = norm_penalty(grad, weight=weight / 2, sample_weight=sample_weight, reduction=reduction, **penalty_args)
            penalty = half if reduction == "sum" else half.reshape(2, batch).sum(0)
    else:
        penalty = norm_penalty(grad, weight=weight, sample_weight=sample_weight, reduction=reduction, **penalty_args)
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
