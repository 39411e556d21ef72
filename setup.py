"""Builds wgan_kernels with its compiled extension wgan_kernels._C.

Install without build isolation, so the extension is compiled against the torch you already have
(torch is deliberately not a build requirement: an isolated build would download another one):

    pip install --no-build-isolation -e ".[train,test]"

Extras: train (the trainer, the experiments and their plots), tensorboard, test.

CUDA sources (csrc/cuda/*.cu) are compiled when torch has CUDA and nvcc is found (no GPU is
needed to build); WGAN_KERNELS_CPU_ONLY=1 forces a CPU-only build. TORCH_CUDA_ARCH_LIST picks
the GPU architectures (default below: current data-centre GPUs).
"""

import glob
import os
import runpy

from setuptools import find_packages, setup

try:
    import torch
except ModuleNotFoundError:
    raise SystemExit(
        "wgan_kernels compiles against the torch you already have: install torch first (for a CPU-only "
        "machine: pip install torch --index-url https://download.pytorch.org/whl/cpu), then "
        "pip install --no-build-isolation -e ."
    ) from None
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

DEFAULT_CUDA_ARCHS = "8.0;9.0"
# what wgan-train and wgan_kernels.experiments import beyond torch and numpy, listed once in
# wgan_kernels/train/extras.py (which also names the extra to install when one is missing)
HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_REQUIRES = sorted(runpy.run_path(os.path.join(HERE, "wgan_kernels", "train", "extras.py"))["TRAIN_EXTRA"].values())


def use_cuda() -> bool:
    if os.environ.get("WGAN_KERNELS_CPU_ONLY", "0") == "1":
        return False
    return torch.version.cuda is not None and CUDA_HOME is not None and bool(glob.glob("csrc/cuda/*.cu"))


def extension():
    sources = ["csrc/ops.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    # at::parallel_for is header-only OpenMP: without -fopenmp every kernel runs on one thread.
    # Linking libgomp.so.1 resolves to the copy torch has already loaded.
    cxx_flags = ["-O3", "-fno-math-errno", "-fopenmp"]
    link_flags = ["-fopenmp"]
    if not use_cuda():
        return CppExtension(
            "wgan_kernels._C", sources, extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags
        )
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
    return CUDAExtension(
        "wgan_kernels._C",
        sources + sorted(glob.glob("csrc/cuda/*.cu")),
        define_macros=[("WITH_CUDA", None)],
        include_dirs=cuda_library_includes(),
        # no --use_fast_math: the kernels are memory-bound, and exact division and sqrt keep the
        # results within rounding of the CPU kernels (and NaN/inf behaving the same)
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]},
        extra_link_args=link_flags,
    )


def cuda_library_includes() -> list:
    """ATen's CUDA headers include cusparse.h and cublas_v2.h, which a bare toolkit may lack; the
    nvidia-* wheels that come with a CUDA build of torch have them."""
    if all(os.path.exists(os.path.join(CUDA_HOME, "include", h)) for h in ("cusparse.h", "cublas_v2.h")):
        return []
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(
        folder
        for root in nvidia.__path__
        for folder in glob.glob(os.path.join(root, "*", "include"))
        if glob.glob(os.path.join(folder, "cusparse.h")) or glob.glob(os.path.join(folder, "cublas_v2.h"))
    )


setup(
    name="wgan_kernels",
    version="0.1.0",
    description="Fused Lipschitz-penalty ops (WGAN-GP, WGAN-LP and relatives) for PyTorch",
    packages=find_packages(include=["wgan_kernels", "wgan_kernels.*"]),
    python_requires=">=3.10",
    # The ops need only torch and numpy; the trainer, the experiments and their plots need [train].
    install_requires=["torch>=2.4", "numpy"],
    extras_require={
        "train": TRAIN_REQUIRES,
        "tensorboard": ["tensorboard"],
        # scipy: tests/test_api.py checks the random streams' distributions with scipy.stats;
        # pytest-timeout: a hung test fails with its stack (pyproject.toml) instead of stalling CI
        "test": ["pytest", "pytest-benchmark", "pytest-timeout", "scipy"],
    },
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    # a script, not a console_scripts entry point: it sets OpenMP's spinning before torch loads
    scripts=["scripts/wgan-train"],
    zip_safe=False,
)
