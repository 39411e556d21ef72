"""The random streams: Philox4x32-10 known answers, and the kernels' draws equal the NumPy
specification bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wgan_kernels as wk
from wgan_kernels import _philox

# Known-answer vectors of Philox4x32-10 (Salmon et al. 2011, Random123's kat_vectors):
# (counter words, key words) -> output words.
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    index = counter[0] | counter[1] << 32
    offset = counter[2] | counter[3] << 32
    seed = key[0] | key[1] << 32
    words = _philox.philox4x32_10(np.array([index], dtype=np.uint64), offset, seed, stream=0)
    assert tuple(int(w[0]) for w in words) == expected


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7, -5, 2**64 - 1])
@pytest.mark.parametrize("batch", [1, 3, 4, 37])
def test_interpolate_draws_equal_the_specification(seed, batch):
    t = wk.interpolate(torch.ones(batch, 1), torch.zeros(batch, 1), seed=seed)[:, 0]
    expected = _philox.interpolation_weights(batch, _philox.to_uint64(seed))
    assert np.array_equal(t.numpy(), expected)


def test_negative_seed_is_its_64_bit_word():
    real, fake = torch.randn(9, 2), torch.randn(9, 2)
    assert torch.equal(wk.interpolate(real, fake, seed=-1), wk.interpolate(real, fake, seed=2**64 - 1))


@pytest.mark.parametrize("count", [2, 5, 4096])
def test_perturb_noise_equals_the_specification(count):
    x = torch.zeros(count, 1)
    x[0] = 1.0  # std(x) > 0, so noise = (out - x) / (scale * std)
    out = wk.perturb(x, scale=1.0, seed=77)
    noise = ((out - x) / x.std(correction=0)).flatten().numpy()
    np.testing.assert_allclose(noise, _philox.normals(count, 77), rtol=1e-5, atol=1e-5)
