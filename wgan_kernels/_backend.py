"""Chooses between the compiled extension and the plain-PyTorch reference.

WGAN_KERNELS_BACKEND=compiled|reference forces one; the default (auto) uses the compiled
extension when it imports and otherwise warns once and falls back to the reference.

CUDA kernels are opt-in until they have passed the test suite on a GPU (docs/CUDA.md): an
extension built with CUDA runs them only when WGAN_KERNELS_CUDA=1 is set at import; otherwise
CUDA tensors run the reference.
"""

from __future__ import annotations

import os
import warnings

ENV_VAR = "WGAN_KERNELS_BACKEND"
_CHOICES = ("auto", "compiled", "reference")


def _load():
    choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(_CHOICES)}, got {choice!r}")
    if choice == "reference":
        return None
    try:
        import torch  # noqa: F401  (the extension links against torch's libraries)

        from . import _C
    except ImportError as error:
        if choice == "compiled":
            raise ImportError(
                f"wgan_kernels: {ENV_VAR}=compiled but the compiled extension failed to import ({error}). "
                "Build it with `pip install --no-build-isolation -e .`."
            ) from error
        warnings.warn(
            f"wgan_kernels: compiled extension not available ({error}); using the plain-PyTorch "
            "reference backend. Build it with `pip install --no-build-isolation -e .`.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return _C


CUDA_ENV_VAR = "WGAN_KERNELS_CUDA"


def _kernel_devices(extension) -> frozenset:
    """Device types whose tensors run the compiled kernels; other devices use the reference."""
    if extension is None:
        return frozenset()
    devices = set(extension.kernel_devices)
    if os.environ.get(CUDA_ENV_VAR, "0").strip() != "1":
        devices.discard("cuda")  # compiled but not yet verified on a GPU: opt-in
    return frozenset(devices)


_C = _load()
KERNEL_DEVICES = _kernel_devices(_C)


def backend() -> str:
    """'compiled' when the C++ extension is loaded, 'reference' otherwise. CUDA tensors use the
    compiled kernels only when cuda_kernels_enabled()."""
    return "compiled" if _C is not None else "reference"


def cuda_kernels_enabled() -> bool:
    """True when CUDA tensors run the compiled CUDA kernels: the extension was built with CUDA
    and WGAN_KERNELS_CUDA=1 was set at import (the kernels are unverified on a GPU so far)."""
    return "cuda" in KERNEL_DEVICES
