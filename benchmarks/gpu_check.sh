#!/usr/bin/env bash
# One-command verification of the CUDA kernels on a machine with a GPU (docs/CUDA.md):
#
#   bash benchmarks/gpu_check.sh            # from the repository root; about 8 minutes on one H100
#
# builds the extension for this GPU, runs the tests with the CUDA kernels enabled
# (WGAN_KERNELS_CUDA=1), compute-sanitizer memcheck and racecheck on a short subset, and the CUDA
# benchmarks. Everything goes under $OUT (default ./gpu-check-out): summary.txt (one line per
# step with its exit code and seconds), env.txt, a log per step, junit XML of the tests and the
# benchmark tables (bench/<gpu-name>-quick.md and .json). Each step has a time limit, and a
# failing step does not stop the later ones (except the build). Needs no network. Exit code 0
# only if every step that ran passed.
#
# GPU_CHECK_STEPS picks the groups, in this order (default: all four):
#   build     pip install -e . (or an in-place build) for this GPU's architecture only
#   test      tests/test_cuda.py, then the op tests on CUDA (test_ops, test_autograd, ...)
#   sanitize  compute-sanitizer memcheck and racecheck on a subset that reaches every kernel path
#   bench     python -m benchmarks.report --device cuda --quick (GPU_CHECK_FULL_BENCH=1: full grid)
# so a short device session can split the work, e.g. GPU_CHECK_STEPS="build test" and then, on
# the same (still warm) machine, GPU_CHECK_STEPS="sanitize bench" (the in-tree build is kept).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
STEPS=" ${GPU_CHECK_STEPS:-build test sanitize bench} "
mkdir -p "$OUT"
# PYTHONPATH: the package imports from this tree even when the build is an in-place one
export WGAN_KERNELS_CUDA=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
status=0

wants() { [[ "$STEPS" == *" $1 "* ]]; }

step() {  # step NAME TIMEOUT_S COMMAND...: runs COMMAND into $OUT/NAME.log
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(($(date +%s) - start))s" | tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

echo "steps:$STEPS($(date -u +%H:%M:%S))" >>"$OUT/summary.txt"
{
  date -u
  nvidia-smi || true
  nvcc --version || true
  "$PY" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  for module in numpy pytest setuptools ninja scipy matplotlib; do  # the tests need numpy and pytest
    "$PY" -c "import $module; print('$module', getattr($module, '__version__', '?'))" 2>&1 | tail -1
  done
  git log -1 --oneline 2>/dev/null || true
} >"$OUT/env.txt" 2>&1

if wants build; then
  ARCH=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$ARCH} MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if ! step build 300 "$PY" -m pip install --no-build-isolation --no-deps --no-index -e .; then
    # without pip's editable machinery (or an old pip): build the extension in place
    step build_inplace 300 "$PY" setup.py build_ext --inplace || { tail -40 "$OUT"/build*.log; exit 1; }
  fi
fi
step import 60 "$PY" -c "
import torch, wgan_kernels as wk
from wgan_kernels import _backend
assert _backend.cuda_kernels_enabled(), 'CUDA kernels not enabled'
g = torch.randn(4, 3, device='cuda')
print(wk.backend(), sorted(_backend.KERNEL_DEVICES), wk.norm_penalty(g).item())
" || { cat "$OUT/import.log"; exit 1; }

PYTEST=("$PY" -m pytest -q -rs -p no:cacheprovider)
if wants test; then
  # the CUDA-specific tests, then every op test parametrized over the devices, on CUDA only
  step test_cuda 200 "${PYTEST[@]}" tests/test_cuda.py --junitxml="$OUT/test_cuda.xml"
  step test_ops_cuda 180 "${PYTEST[@]}" --continue-on-collection-errors -k "cuda" \
    tests/test_ops.py tests/test_autograd.py tests/test_philox.py tests/test_api.py --junitxml="$OUT/test_ops_cuda.xml"
fi

if wants sanitize; then
  # every kernel path: tiny rows, misaligned rows (the vector path's scalar head), rows split
  # into segments (the last-block reductions), channels_last
  SUBSET="matches_cpu_kernels and float32 and (1000x2-contiguous or 3x8193-offset or 2x3x64x65-channels_last)"
  if command -v compute-sanitizer >/dev/null; then
    # without the caching allocator, so that memcheck sees every allocation's bounds
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 step memcheck 120 compute-sanitizer --tool memcheck --error-exitcode 1 \
      --print-limit 20 "${PYTEST[@]}" tests/test_cuda.py -k "$SUBSET"
    step racecheck 120 compute-sanitizer --tool racecheck --error-exitcode 1 --print-limit 20 \
      "${PYTEST[@]}" tests/test_cuda.py -k "$SUBSET"
  else
    echo "compute-sanitizer rc=missing" | tee -a "$OUT/summary.txt"
    status=1
  fi
fi

if wants bench; then
  if [ "${GPU_CHECK_FULL_BENCH:-0}" = "1" ]; then BENCH=(--all-sizes); else BENCH=(--quick); fi
  step bench 240 "$PY" -m benchmarks.report --device cuda "${BENCH[@]}" --out-dir "$OUT/bench"
fi

echo "overall rc=$status" | tee -a "$OUT/summary.txt"
exit "$status"
