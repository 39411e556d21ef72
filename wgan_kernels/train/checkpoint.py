"""Atomic checkpoints readable with torch.load(weights_only=True): only tensors, plain Python
types and state dicts go in."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


def rng_state(noise_generator: torch.Generator, sampler, device: torch.device) -> dict:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "noise": noise_generator.get_state(),
        "data": sampler.state(),
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, noise_generator: torch.Generator, sampler, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    noise_generator.set_state(state["noise"])
    sampler.load_state(state["data"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_atomic(obj: dict, path: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the old one, so a
    kill at any moment leaves either the old or the new checkpoint, never a torn one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load(path: str, device: torch.device) -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"checkpoint {path!r} is corrupt or unreadable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            "Delete it to start the run over, or restore a good copy."
        ) from None
    required = ("iteration", "generator", "critic", "opt_generator", "opt_critic", "rng")
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise RuntimeError(f"checkpoint {path!r} is not a wgan-train checkpoint (expected keys {', '.join(required)})")
    return state
