"""Op-level benchmarks for pytest-benchmark: `pytest benchmarks --benchmark-only`.

Baselines and inputs come from benchmarks/baselines.py (the same ones report.py times); each case
checks correctness against the reference before it is timed. Group by op and size with
`--benchmark-group-by=param:op,param:size` (the default grouping below) to read the variants
side by side.
"""

import pytest
import torch

from benchmarks import baselines

SIZES = {"64x2": (64, (2,)), "256x3x32x32": (256, (3, 32, 32)), "64x3x256x256": (64, (3, 256, 256))}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_COMPILED = {}


def _compiled(op):
    if op not in _COMPILED:
        _COMPILED[op] = baselines.compile_eager(op)
    return _COMPILED[op]


@pytest.mark.parametrize("variant", baselines.VARIANTS)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", baselines.OPS)
def test_op(benchmark, op, size, dtype, variant):
    batch, shape = SIZES[size]
    why = baselines.variant_available(op, variant, batch, shape)
    if why:
        pytest.skip(why)
    fns = baselines.op_functions(op, (variant,), compiled=_compiled(op) if variant == "compile" else None)
    if batch * baselines.numel_per_sample(shape) <= 1 << 22:
        baselines.check_op(op, batch, shape, DTYPES[dtype], fns=fns)
    run = baselines.runner(op, fns[variant], baselines.make_inputs(op, batch, shape, DTYPES[dtype]))
    benchmark.group = f"{op} {size} {dtype}"
    benchmark.extra_info["bytes_moved"] = baselines.bytes_moved(op, batch, shape, DTYPES[dtype])
    benchmark.pedantic(run, warmup_rounds=2, rounds=10, iterations=1)
