"""Philox4x32-10 in NumPy: the specification of the random streams of interpolate and perturb.

csrc/philox.h implements the same function for the kernels; a draw is a pure function of
(seed, offset, counter index), so a given seed gives the same numbers on every backend and device.
The counter index walks a stream (samples of interpolate, elements of perturb); `first` starts
the draw further along it (the ops' row_offset). The Philox counter offset is 0 except for CUDA's
generator path (csrc/philox.h).
"""

from __future__ import annotations

import numpy as np

INTERPOLATE_STREAM = 0
PERTURB_STREAM = 0x243F6A88

_MASK32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)


def to_uint64(value: int) -> int:
    """Map any Python int to the 64-bit word the kernels see (two's complement)."""
    return int(value) & 0xFFFFFFFFFFFFFFFF


def philox4x32_10(index: np.ndarray, offset: int, seed: int, stream: int) -> tuple[np.ndarray, ...]:
    """Four uint32 words per counter index; counter = (index, offset), key = (seed lo, seed hi ^ stream)."""
    index = np.asarray(index, dtype=np.uint64)
    offset, seed = to_uint64(offset), to_uint64(seed)
    c0 = (index & _MASK32).astype(np.uint32)
    c1 = (index >> np.uint64(32)).astype(np.uint32)
    c2 = np.full_like(c0, offset & 0xFFFFFFFF)
    c3 = np.full_like(c0, offset >> 32)
    k0 = np.uint32(seed & 0xFFFFFFFF)
    k1 = np.uint32((seed >> 32) ^ stream)
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0 = _M0 * c0.astype(np.uint64)
            p1 = _M1 * c2.astype(np.uint64)
            c0, c1, c2, c3 = (
                (p1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0,
                (p1 & _MASK32).astype(np.uint32),
                (p0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1,
                (p0 & _MASK32).astype(np.uint32),
            )
            k0 = np.uint32((int(k0) + int(_W0)) & 0xFFFFFFFF)
            k1 = np.uint32((int(k1) + int(_W1)) & 0xFFFFFFFF)
    return c0, c1, c2, c3


def uniform(bits: np.ndarray) -> np.ndarray:
    """24 random bits -> float32 in [0, 1)."""
    return (bits >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def interpolation_weights(batch: int, seed: int, offset: int = 0, first: int = 0) -> np.ndarray:
    """t_i ~ U[0, 1) for samples i = first..first+batch-1, one float32 each: word i % 4 of the
    draw at counter i // 4."""
    begin = first // 4
    words = philox4x32_10(np.arange(begin, (first + batch + 3) // 4), offset, seed, INTERPOLATE_STREAM)
    skip = first - 4 * begin
    return uniform(np.stack(words, axis=1).reshape(-1)[skip:skip + batch])


def normals(count: int, seed: int, offset: int = 0, first: int = 0) -> np.ndarray:
    """Standard normals (float32) for stream elements e = first..first+count-1; element e comes
    from quad e // 4 by Box-Muller."""
    begin = first // 4
    r0, r1, r2, r3 = philox4x32_10(np.arange(begin, (first + count + 3) // 4), offset, seed, PERTURB_STREAM)
    scale = np.float32(1.0 / 16777216.0)
    two_pi = np.float32(6.2831853071795864769)
    u1a = ((r0 >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * scale
    u1b = ((r2 >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * scale
    ra = np.sqrt(np.float32(-2.0) * np.log(u1a))
    rb = np.sqrt(np.float32(-2.0) * np.log(u1b))
    a = two_pi * uniform(r1)
    b = two_pi * uniform(r3)
    out = np.stack([ra * np.cos(a), ra * np.sin(a), rb * np.cos(b), rb * np.sin(b)], axis=1)
    skip = first - 4 * begin
    return out.reshape(-1)[skip:skip + count].astype(np.float32)
