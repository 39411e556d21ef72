"""Timing, machine description and copy bandwidth, shared by report.py and the step benchmarks."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import time
from typing import Callable

import torch


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _quantile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def measure(fn: Callable[[], object], device="cpu", *, warmup: int = 2, reps: int = 15,
            min_sample_s: float = 2e-3, max_total_s: float = 3.0, min_samples: int = 3) -> dict:
    """Median, p20 and p80 seconds per call of fn after warm-up (one call when a call takes
    over 50 ms, else 2 + warmup).

    Each sample runs fn `inner` times back to back (inner chosen so one sample lasts at least
    min_sample_s, which keeps timer overhead out of microsecond ops); at most `reps` samples and
    about max_total_s in all (at least min_samples samples). CUDA: timed with CUDA events around each
    sample, after a synchronize."""
    cuda = torch.device(device).type == "cuda"
    synchronize(device)
    start = time.perf_counter()
    fn()  # first warm-up call, also sizes the samples
    synchronize(device)
    once = max(time.perf_counter() - start, 1e-7)
    if once < 0.05:  # slow calls are warm after one call; cheap ones get more
        for _ in range(warmup):
            fn()
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        once = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(min_sample_s / once))
    samples: list[float] = []
    budget_start = time.perf_counter()
    while len(samples) < reps:
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            samples.append(begin.elapsed_time(end) / 1e3 / inner)
        else:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter() - t0) / inner)
        if len(samples) >= min_samples and time.perf_counter() - budget_start > max_total_s:
            break
    samples.sort()
    return {
        "median_s": statistics.median(samples),
        "p20_s": _quantile(samples, 0.2),
        "p80_s": _quantile(samples, 0.8),
        "samples": len(samples),
        "inner": inner,
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def machine_info(device) -> dict:
    info = {
        "device": str(device),
        "device_name": device_name(device),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import wgan_kernels as wk

        info["wgan_kernels"] = getattr(wk, "__version__", "?")
        info["wgan_kernels_backend"] = wk.backend()
    except Exception as error:  # pragma: no cover
        info["wgan_kernels"] = f"import failed: {error}"
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:  # which code was measured
        import subprocess

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10).stdout.rstrip()
        info["git_commit"] = git("rev-parse", "--short", "HEAD").strip()
        info["git_dirty_paths"] = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
        import wgan_kernels._C as ext

        info["extension_built"] = datetime.datetime.fromtimestamp(os.path.getmtime(ext.__file__)).isoformat(timespec="seconds")
    except Exception:
        pass
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(torch.device(device))
        info["memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


def copy_bandwidth(device="cpu", nbytes: int = 256 * 2**20, dtype=torch.float32, **measure_kwargs) -> dict:
    """dst.copy_(src) on nbytes buffers: bytes moved = 2 * nbytes (read + write)."""
    n = nbytes // torch.empty((), dtype=dtype).element_size()
    src = torch.ones(n, dtype=dtype, device=device)
    dst = torch.empty_like(src)
    timing = measure(lambda: dst.copy_(src), device, **measure_kwargs)
    timing["bytes"] = 2 * n * src.element_size()
    timing["gb_per_s"] = timing["bytes"] / timing["median_s"] / 1e9
    return timing
