"""Data sources: the toy 2-D sets of WGAN-GP / WGAN-LP, generated in code, and image sets
(scikit-learn's bundled digits, CIFAR-10 python pickles, any .npy/.npz array).

Every sampler draws from its own numpy RandomState, so all ranks of a distributed run draw the
same global batch, and the state goes into checkpoints for exact resume.
"""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F

TOY_SETS = ("8gaussians", "25gaussians", "swissroll")
IMAGE_SETS = ("digits", "cifar10", "npy")
DATA_SETS = TOY_SETS + IMAGE_SETS
NPZ_KEYS = ("images", "x", "data")  # the array a .npz holds the images in (else its only array)


class ToySampler:
    """Fresh samples from a 2-D toy distribution on every call (the papers' protocol)."""

    is_image = False

    def __init__(self, name: str, seed: int):
        if name not in TOY_SETS:
            raise ValueError(f"unknown toy data set {name!r}; choose one of {', '.join(TOY_SETS)}")
        self.name = name
        self.rng = np.random.RandomState(seed)
        self.shape = (2,)

    def sample(self, n: int) -> torch.Tensor:
        rng = self.rng
        if self.name == "8gaussians":
            angles = np.arange(8) * (2 * np.pi / 8)
            centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            points = centres[rng.randint(0, 8, size=n)] + 0.02 * rng.randn(n, 2)
            points = points / 1.414
        elif self.name == "25gaussians":
            grid = np.array([(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)], dtype=np.float64)
            points = grid[rng.randint(0, 25, size=n)] + 0.05 * rng.randn(n, 2)
            points = points / 2.828
        else:
            from sklearn.datasets import make_swiss_roll

            points = make_swiss_roll(n_samples=n, noise=0.25, random_state=rng)[0][:, [0, 2]] / 7.5
        return torch.from_numpy(points.astype(np.float32))

    def state(self) -> dict:
        return _rng_state(self.rng)

    def load_state(self, state: dict) -> None:
        _set_rng_state(self.rng, state)


class ImageSampler:
    """Uniform minibatches (with replacement) from an in-memory (N, C, S, S) float tensor in [-1, 1]."""

    is_image = True

    def __init__(self, images: torch.Tensor, seed: int):
        self.images = images
        self.rng = np.random.RandomState(seed)
        self.shape = tuple(images.shape[1:])

    def sample(self, n: int) -> torch.Tensor:
        return self.images[torch.from_numpy(self.rng.randint(0, len(self.images), size=n))]

    def state(self) -> dict:
        return _rng_state(self.rng)

    def load_state(self, state: dict) -> None:
        _set_rng_state(self.rng, state)


def _rng_state(rng: np.random.RandomState) -> dict:
    # plain types and tensors only, so torch.load(weights_only=True) can read it back
    kind, keys, pos, has_gauss, cached = rng.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_rng_state(rng: np.random.RandomState, state: dict) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    rng.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["cached"]))


# ---------------------------------------------------------------------------------------
# image loading: everything becomes float32 (N, C, H, W) in [-1, 1]


def _to_nchw(array: np.ndarray, source: str) -> np.ndarray:
    """Accepts (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        if array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
            array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(
            f"{source}: expected images shaped (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 "
            f"channels, got an array of shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{source}: the array holds no images")
    if array.shape[2] != array.shape[3]:
        raise ValueError(f"{source}: expected square images, got {array.shape[2]}x{array.shape[3]}")
    return array


def _scale(array: np.ndarray, source: str, max_value: float | None = None) -> np.ndarray:
    """Maps integer images (0..255) or floats in [0, 1] or [-1, 1] to [-1, 1]."""
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise ValueError(f"{source}: expected a numeric image array, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{source}: the images contain NaN or inf")
    low, high = float(array.min()), float(array.max())
    if max_value is None:
        if low >= -1.0 and high <= 1.0:
            if low < 0:
                return array  # already in [-1, 1]
            max_value = 1.0
        else:
            max_value = 255.0
    if low < 0 or high > max_value:
        raise ValueError(f"{source}: expected values in [0, {max_value:g}], got [{low:g}, {high:g}]")
    return array / max_value * 2.0 - 1.0


def load_digits_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images  # (1797, 8, 8), values 0..16
    return _scale(images[:, None], "digits", max_value=16.0)


def load_cifar10_images(path: str) -> np.ndarray:
    """The python-pickle layout: a directory (or its parent) holding data_batch_1 .. data_batch_5."""
    if not path:
        raise ValueError("--data cifar10 needs --data-path: the directory with data_batch_1 .. data_batch_5")
    if not os.path.exists(path):
        raise FileNotFoundError(f"CIFAR-10 path {path!r} does not exist; expected a directory with data_batch_1 .. data_batch_5")
    if not os.path.isdir(path):
        raise ValueError(f"CIFAR-10 path {path!r} is not a directory; expected a directory with data_batch_1 .. data_batch_5")
    directory = path
    if not os.path.exists(os.path.join(directory, "data_batch_1")):
        nested = os.path.join(path, "cifar-10-batches-py")
        if os.path.exists(os.path.join(nested, "data_batch_1")):
            directory = nested
    batches = [os.path.join(directory, f"data_batch_{i}") for i in range(1, 6)]
    present = [b for b in batches if os.path.exists(b)]
    if not present:
        raise FileNotFoundError(
            f"CIFAR-10 path {path!r} holds no data_batch_1 .. data_batch_5 (python-pickle layout of "
            "cifar-10-python.tar.gz)"
        )
    arrays = []
    for batch in present:
        try:
            with open(batch, "rb") as handle:
                entry = pickle.load(handle, encoding="bytes")
            data = np.asarray(entry[b"data"] if b"data" in entry else entry["data"])
        except Exception as error:  # any unpickling or key problem: say what was expected
            raise ValueError(
                f"CIFAR-10 file {batch!r} is malformed: expected a pickled dict with b'data' "
                f"(N x 3072 uint8) and b'labels' ({type(error).__name__}: {error})"
            ) from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"CIFAR-10 file {batch!r}: expected b'data' of shape (N, 3072), got {data.shape}")
        arrays.append(data.reshape(-1, 3, 32, 32))
    return _scale(np.concatenate(arrays), f"CIFAR-10 {path!r}", max_value=255.0)


def load_array_images(path: str) -> np.ndarray:
    """A .npy array, or a .npz archive (the first of NPZ_KEYS it has, or its only array)."""
    if not path:
        raise ValueError("--data npy needs --data-path: a .npy or .npz file of images")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image array {path!r} does not exist or is not a file; expected a .npy or .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"image array {path!r} is not a readable .npy/.npz file ({type(error).__name__}: {error})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.keys())
            key = next((k for k in NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                names = ", ".join(repr(k) for k in NPZ_KEYS)
                raise ValueError(f"{path!r}: expected an array named {names} (or a single array), found {keys}")
            array = loaded[key]
    else:
        array = loaded
    return _scale(_to_nchw(array, repr(path)), repr(path))


def fit_size(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resizes square images to `size` (default: the data's size if a power of two >= 8, else
    the next one), as the ResNet halves and doubles the resolution."""
    current = images.shape[-1]
    if size is None:
        size = max(8, 2 ** math.ceil(math.log2(current)))
    if size < 8 or size & (size - 1):
        raise ValueError(f"--image-size must be a power of two >= 8, got {size}")
    if size != current:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < current)
        images = images.clamp_(-1.0, 1.0)
    return images.contiguous()


def make_sampler(name: str, path: str | None, seed: int, image_size: int | None = None):
    if name in TOY_SETS:
        return ToySampler(name, seed)
    if name == "digits":
        array = load_digits_images()
    elif name == "cifar10":
        array = load_cifar10_images(path)
    elif name == "npy":
        array = load_array_images(path)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATA_SETS)}")
    images = fit_size(torch.from_numpy(np.ascontiguousarray(array)), image_size)
    return ImageSampler(images, seed)
