"""Chooses between the compiled extension and the plain-PyTorch reference.

WGAN_KERNELS_BACKEND=compiled|reference forces one; the default (auto) uses the compiled
extension when it imports and otherwise warns once and falls back to the reference.
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


_C = _load()
# Device types with compiled kernels; other devices use the reference.
KERNEL_DEVICES = frozenset(_C.kernel_devices) if _C is not None else frozenset()


def backend() -> str:
    """'compiled' when the C++ extension is loaded, 'reference' otherwise."""
    return "compiled" if _C is not None else "reference"
