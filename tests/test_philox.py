"""The random streams: Philox4x32-10 known answers, the kernels' draws equal the NumPy
specification bit for bit, row_offset, and seed=None drawn from PyTorch's generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wgan_kernels as wk
from wgan_kernels import _philox
from wgan_kernels import reference as ref

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


# ---------------------------------------------------------------------------------------
# row_offset: rank k of a data-parallel job gets rows kB..kB+B-1 of the single-process draw


@pytest.mark.parametrize("batch", [3, 5])
@pytest.mark.parametrize("sample_shape", [(1,), (3, 5), (2, 3, 7)])
def test_interpolate_row_offset_gives_rows_of_one_draw(batch, sample_shape):
    real = torch.randn(4 * batch, *sample_shape)
    fake = torch.randn(4 * batch, *sample_shape)
    whole = wk.interpolate(real, fake, seed=123)
    for k in range(4):
        rows = slice(k * batch, (k + 1) * batch)
        part = wk.interpolate(real[rows], fake[rows], seed=123, row_offset=k * batch)
        assert torch.equal(part, whole[rows]), k
        torch.testing.assert_close(part, ref.interpolate(real[rows], fake[rows], 123, k * batch), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("batch", [3, 5])
@pytest.mark.parametrize("sample_shape", [(1,), (3, 5), (2, 3, 7)])
def test_perturb_row_offset_gives_rows_of_one_draw(batch, sample_shape):
    x = torch.randn(4 * batch, *sample_shape)
    # perturb's amplitude is std(x) of the whole batch: compare the noise z = (out - x) / std
    noise = lambda out, inp: (out - inp) / inp.std(correction=0)  # noqa: E731
    whole = noise(wk.perturb(x, scale=1.0, seed=99), x)
    for k in range(4):
        rows = slice(k * batch, (k + 1) * batch)
        part = noise(wk.perturb(x[rows], scale=1.0, seed=99, row_offset=k * batch), x[rows])
        torch.testing.assert_close(part, whole[rows], atol=2e-5, rtol=2e-5)
        torch.testing.assert_close(
            wk.perturb(x[rows], scale=0.5, seed=99, row_offset=k * batch),
            ref.perturb(x[rows], 0.5, 99, k * batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("row_offset", [0, 1, 6, 2**40 + 3])
def test_row_offset_draws_equal_the_specification(row_offset):
    t = torch.ops.wgan_kernels.interpolate(torch.ones(7, 1), torch.zeros(7, 1), 5, row_offset, None)[1]
    assert np.array_equal(t.numpy(), _philox.interpolation_weights(7, 5, first=row_offset))
    # the specification's own row_offset: a slice of the longer draw
    if row_offset < 100:
        assert np.array_equal(_philox.interpolation_weights(7, 5, first=row_offset),
                              _philox.interpolation_weights(row_offset + 7, 5)[row_offset:])
        np.testing.assert_array_equal(_philox.normals(9, 5, first=row_offset * 3),
                                      _philox.normals(row_offset * 3 + 9, 5)[row_offset * 3:])
    x = torch.zeros(3, 3)
    x[0, 0] = 1.0
    out = wk.perturb(x, scale=1.0, seed=5, row_offset=row_offset)
    noise = ((out - x) / x.std(correction=0)).flatten().numpy()
    np.testing.assert_allclose(noise, _philox.normals(9, 5, first=row_offset * 3), rtol=1e-5, atol=1e-5)


def test_negative_row_offset_is_refused():
    x = torch.randn(2, 3)
    for op in (lambda: torch.ops.wgan_kernels.interpolate(x, x, 1, -1, None),
               lambda: torch.ops.wgan_kernels.perturb(x, 0.5, 1, -2, None)):
        with pytest.raises(RuntimeError, match="row_offset must be non-negative"):
            op()


# ---------------------------------------------------------------------------------------
# seed=None: drawn from the generator, the same draw on the compiled and the reference backend


def _backends():
    from wgan_kernels import _backend

    if _backend._C is None:
        pytest.skip("needs the compiled extension")
    from wgan_kernels import _ops

    return _ops, ref


@pytest.mark.parametrize("op", ["interpolate", "perturb"])
def test_seed_none_equal_on_both_backends_after_manual_seed(op):
    compiled, reference = _backends()
    x, y = torch.randn(6, 3, 5), torch.randn(6, 3, 5)
    args = (x, y) if op == "interpolate" else (x, 0.5)
    outs = []
    for impl in (compiled, reference, compiled):
        torch.manual_seed(2024)
        first = getattr(impl, op)(*args, None)
        second = getattr(impl, op)(*args, None, 3)  # the generator moved on: another draw
        after = torch.rand(())  # and both backends moved it by the same amount
        outs.append((first, second, after))
    for (a1, a2, a3), (b1, b2, b3) in zip(outs, outs[1:]):
        torch.testing.assert_close(a1, b1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a2, b2, atol=1e-5, rtol=1e-5)
        assert torch.equal(a3, b3)
    assert not torch.allclose(outs[0][0][3:], outs[0][1][:3])  # two draws, two streams


@pytest.mark.parametrize("op", ["interpolate", "perturb"])
def test_seed_none_equal_on_both_backends_with_a_generator(op):
    compiled, reference = _backends()
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    args = (x, y) if op == "interpolate" else (x, 0.5)
    default_state = torch.get_rng_state()
    got = getattr(compiled, op)(*args, None, 0, torch.Generator().manual_seed(7))
    want = getattr(reference, op)(*args, None, 0, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(torch.get_rng_state(), default_state)  # the default generator was not used
    other = getattr(compiled, op)(*args, None, 0, torch.Generator().manual_seed(8))
    assert not torch.allclose(got, other)
    # the draw is random64() % 2^63 of the generator, i.e. what random_() on an int64 draws
    seed = int(torch.empty((), dtype=torch.int64).random_(generator=torch.Generator().manual_seed(7)))
    torch.testing.assert_close(got, getattr(compiled, op)(*args, seed), atol=0, rtol=0)


def test_seed_and_generator_together_are_refused():
    x = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="either seed or generator"):
        torch.ops.wgan_kernels.interpolate(x, x, 1, 0, torch.Generator())
    with pytest.raises(ValueError, match="either seed or generator"):
        ref.interpolate(x, x, 1, 0, torch.Generator())
