"""Step-level benchmarks for pytest-benchmark: one penalised critic update, eager recipe vs
wk.gradient_penalty (and the update without a penalty), for the toy MLP and the CIFAR ResNet
critic. Same setups as report.py (benchmarks/step.py)."""

import pytest

from benchmarks import step


@pytest.mark.parametrize("variant", list(step.STEPS))
@pytest.mark.parametrize("kind", list(step.SETUPS))
def test_step(benchmark, kind, variant):
    step.check_steps(kind)
    critic, opt, real, fake, source = step.make_setup(kind)
    benchmark.group = f"step {kind}"
    benchmark.extra_info["critic"] = source
    rounds = 3 if kind == "resnet" else 10
    benchmark.pedantic(step.STEPS[variant], args=(critic, opt, real, fake), warmup_rounds=1, rounds=rounds, iterations=1)


@pytest.mark.parametrize("variant", ["eager", "fused"])
@pytest.mark.parametrize("kind", list(step.SETUPS))
def test_penalty_ops(benchmark, kind, variant):
    _, _, real, fake, _ = step.make_setup(kind)
    benchmark.group = f"penalty ops {kind}"
    benchmark.pedantic(step.penalty_ops(variant, real, fake), warmup_rounds=2, rounds=20, iterations=1)
