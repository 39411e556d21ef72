"""The benchmark baselines stay correct: each op's eager composition, reference call and fused
call agree on one small size (benchmarks/baselines.py: check_op). torch.compile is left to the
benchmarks themselves (compiling takes tens of seconds)."""

import pytest
import torch

from benchmarks import baselines


@pytest.mark.parametrize("op", baselines.OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["float32", "bfloat16", "float16"])
def test_baselines_agree(op, dtype):
    baselines.check_op(op, 8, (3, 8, 8), dtype, variants=("eager", "reference", "fused"))


def test_check_catches_a_wrong_op():
    wrong = {"fused": lambda g: baselines.eager_grad_norm(g) * 1.01}
    with pytest.raises(baselines.CheckFailed):
        baselines.check_op("grad_norm", 8, (3, 8, 8), torch.float32, fns=wrong)


def test_bytes_moved_counts_passes():
    assert baselines.bytes_moved("interpolate", 4, (3, 2), torch.float32) == 3 * 4 * 6 * 4
