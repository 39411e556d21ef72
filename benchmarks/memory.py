"""Peak memory of one op call, eager vs fused.

CPU: each (op, variant) runs in a fresh subprocess (`python -m benchmarks.memory ...`) that
creates the inputs in place, records the RSS high-water mark (getrusage ru_maxrss), runs the
op once and records it again: the difference is the op's extra peak memory over its inputs.
CUDA: torch.cuda.max_memory_allocated over the call, minus the memory held before it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys

import torch

from . import baselines

VARIANTS = ("eager", "fused")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_here(op: str, variant: str, batch: int, shape, dtype, device="cpu") -> dict:
    fn = baselines.op_functions(op, (variant,))[variant]
    inputs = baselines.make_inputs(op, batch, shape, dtype, device)
    run = baselines.runner(op, fn, inputs)
    input_bytes = sum(t.numel() * t.element_size() for t in inputs.values())
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = run()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
        return {"input_bytes": input_bytes, "extra_peak_bytes": peak - before, "method": "cuda max_memory_allocated"}
    before = _maxrss_bytes()
    result = run()
    peak = _maxrss_bytes()
    del result
    return {"input_bytes": input_bytes, "extra_peak_bytes": peak - before, "rss_before": before,
            "method": "ru_maxrss delta in a fresh process"}


def measure_subprocess(op: str, variant: str, batch: int, shape, dtype, device="cpu", timeout: float = 300) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", op, variant, str(batch),
           "x".join(map(str, shape)), str(dtype).replace("torch.", ""), device]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("op", choices=baselines.OPS)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("batch", type=int)
    parser.add_argument("shape", help="per-sample shape, e.g. 3x256x256")
    parser.add_argument("dtype", default="float32")
    parser.add_argument("device", default="cpu")
    args = parser.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split("x"))
    print(json.dumps(measure_here(args.op, args.variant, args.batch, shape, getattr(torch, args.dtype), args.device)))


if __name__ == "__main__":
    main()
