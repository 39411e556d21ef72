"""Run every benchmark once and print / save one report.

    python -m benchmarks.report [--quick] [--device cpu|cuda]      # from the repository root
    python path/to/repo/benchmarks/report.py [--quick] ...          # from any directory

Op level (eager, torch.compile, reference, fused; correctness checked first), step level,
memory (subprocesses on CPU) and the machine's copy bandwidth, in one process. Writes
benchmarks/results/<device-name-slug>[-quick].json and .md. Ratios are time ratios
fused / baseline: below 1 means the fused op is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if not __package__:  # run as a file: make `benchmarks` importable from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import benchmarks  # noqa: F401

    __package__ = "benchmarks"

import torch

from . import baselines, memory, step, timing

PROG = "python -m benchmarks.report"

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

BATCHES = (64, 256, 1024)
SHAPES = ((2,), (3, 32, 32), (3, 64, 64), (3, 256, 256))
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
QUICK_SIZES = ((64, (2,)), (256, (3, 32, 32)), (64, (3, 256, 256)))
# The default CPU grid leaves out B=1024 x 3x256x256 (805 MB per float32 tensor; the memory
# benchmark uses it) and runs bfloat16 and float16 at two sizes, to finish in ~15 minutes on 2 cores.
# --all-sizes runs the full product (and every dtype at every size); CUDA runs it by default.
CPU_SKIP = ((1024, (3, 256, 256)),)
CPU_SECOND_DTYPE_SIZES = ((256, (3, 32, 32)), (64, (3, 256, 256)))
MAX_TENSOR_BYTES = 1.5e9
CHECK_MAX_NUMEL = 1 << 23  # every size up to this is checked against the reference before timing


# Issue 9's GPU targets, checked per op row on CUDA: at >= 100 MB per input tensor the fused op
# moves >= 85% of the copy bandwidth; small batches (B x 2, B <= 1024) run >= 4x faster than
# eager; the fused op is never slower than torch.compile.
TARGET_LARGE_BYTES = 100e6
TARGET_COPY_SHARE = 0.85
TARGET_SMALL_SPEEDUP = 4.0
CUDA_QUICK_EXTRA = ((256, (3, 256, 256)),)
GRAPH_STEP = "mlp"  # the toy critic step is also timed as a CUDA-graph replay


def gpu_targets(row: dict, shape, dtype) -> dict:
    """{target: met} for the targets that apply to this op row."""
    met = {}
    tensor_bytes = row["batch"] * baselines.numel_per_sample(shape) * torch.empty((), dtype=dtype).element_size()
    if tensor_bytes >= TARGET_LARGE_BYTES and "fused_share_of_copy_bw" in row:
        met[f">={TARGET_COPY_SHARE:.0%} copy BW"] = row["fused_share_of_copy_bw"] >= TARGET_COPY_SHARE
    if tuple(shape) == (2,) and row["batch"] <= 1024 and "fused/eager" in row:
        met[f">={TARGET_SMALL_SPEEDUP:g}x eager"] = row["fused/eager"] <= 1 / TARGET_SMALL_SPEEDUP
    if "fused/compile" in row:
        met["<=compile"] = row["fused/compile"] <= 1.0
    return met


def available_bytes(device: str) -> float:
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return 0.8 * free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable"):
                    return 0.6 * int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8e9


def grid(quick: bool, device: str, all_sizes: bool = False):
    sizes = QUICK_SIZES if quick else tuple((b, s) for s in SHAPES for b in BATCHES)
    if quick and device == "cuda":  # one size above the bandwidth target's 100 MB
        sizes += CUDA_QUICK_EXTRA
    trim = not all_sizes and device == "cpu"
    cases = []
    for dtype in DTYPES:
        for batch, shape in sizes:
            if quick and dtype != torch.float32 and (batch, shape) != (256, (3, 32, 32)):
                continue
            if trim and not quick and ((batch, shape) in CPU_SKIP or
                                       (dtype != torch.float32 and (batch, shape) not in CPU_SECOND_DTYPE_SIZES)):
                continue
            cases.append((dtype, batch, shape))
    return cases


def dname(dtype) -> str:
    return str(dtype).replace("torch.", "")


def sname(shape) -> str:
    return "x".join(map(str, shape))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------


def run_ops(args, device: str, copy_gbps: float) -> list[dict]:
    budget = available_bytes(device)
    mkw = dict(warmup=2, reps=7 if args.quick else 15, max_total_s=0.4 if args.quick else 1.0)
    rows = []
    ops = args.ops or baselines.OPS
    for op in ops:
        torch._dynamo.reset()
        compiled = baselines.compile_eager(op, dynamic=not args.static_compile)
        for dtype, batch, shape in grid(args.quick, device, args.all_sizes):
            row = {"op": op, "dtype": dname(dtype), "batch": batch, "shape": sname(shape),
                   "numel": batch * baselines.numel_per_sample(shape)}
            if not baselines.fits(op, batch, shape, dtype, MAX_TENSOR_BYTES, budget):
                row["skipped"] = "does not fit in memory"
                rows.append(row)
                continue
            if args.static_compile:
                torch._dynamo.reset()
                compiled = baselines.compile_eager(op, dynamic=False)
            fns = baselines.op_functions(op, compiled=compiled)
            inputs = baselines.make_inputs(op, batch, shape, dtype, device)
            runs = {v: baselines.runner(op, fn, inputs) for v, fn in fns.items()}
            # compile (first call) timed apart from the warm timings
            t0 = time.perf_counter()
            try:
                runs["compile"]()
                timing.synchronize(device)
                row["compile_first_call_s"] = time.perf_counter() - t0
            except Exception as error:  # a baseline that cannot compile is reported, not fatal
                row["compile_error"] = f"{type(error).__name__}: {error}"[:300]
                del runs["compile"]
                fns.pop("compile")
            if row["numel"] <= CHECK_MAX_NUMEL:
                try:
                    baselines.check_op(op, batch, shape, dtype, device, fns=fns)
                    row["check"] = "ok"
                except baselines.CheckFailed as error:
                    row["check"] = f"FAILED: {error}"
                    log(f"  CHECK FAILED {error}")
            else:
                row["check"] = "not checked at this size (checked at the smaller sizes)"
            for variant, run in runs.items():
                why = baselines.variant_available(op, variant, batch, shape)
                if why:
                    row[f"{variant}_skipped"] = why
                    continue
                row[variant] = timing.measure(run, device, **mkw)
            if op == "interpolate":
                src = inputs["real"]
                row["clone"] = timing.measure(lambda: src.clone(), device, **mkw)
            nbytes = baselines.bytes_moved(op, batch, shape, dtype)
            row["bytes_moved"] = nbytes
            if "fused" in row:
                gbps = nbytes / row["fused"]["median_s"] / 1e9
                row["fused_gb_per_s"] = gbps
                row["fused_share_of_copy_bw"] = gbps / copy_gbps
            for base in ("eager", "compile", "reference", "clone"):
                if "fused" in row and base in row:
                    row[f"fused/{base}"] = row["fused"]["median_s"] / row[base]["median_s"]
            if device == "cuda":
                row["targets"] = gpu_targets(row, shape, dtype)
            rows.append(row)
            log(f"{op:14s} {dname(dtype):8s} B={batch:<5d} {sname(shape):10s} "
                + " ".join(f"{v}={row[v]['median_s'] * 1e3:.3f}ms" for v in ("eager", "compile", "reference", "fused") if v in row)
                + f" check={row.get('check', '-')[:40]}")
            del inputs, runs, fns
    return rows


def run_steps(args, device: str) -> list[dict]:
    rows = []
    for kind in step.SETUPS:
        # the ResNet step takes seconds on a small CPU: few samples; --quick also shrinks its batch
        slow = kind == "resnet" and device == "cpu"
        batch = 16 if (slow and args.quick) else None
        mkw = dict(warmup=1, reps=5 if args.quick else 10, max_total_s=4.0 if args.quick else 15.0,
                   min_samples=2 if slow else 3)
        try:
            step.check_steps(kind, device)
            check = "ok"
        except baselines.CheckFailed as error:
            check = f"FAILED: {error}"
        critic, opt, real, fake, source = step.make_setup(kind, device, batch=batch)
        row = {"critic": kind, "source": source, "batch": real.shape[0], "shape": sname(real.shape[1:]), "check": check}
        for variant, fn in step.STEPS.items():
            row[f"step_{variant}"] = timing.measure(lambda: fn(critic, opt, real, fake), device, **mkw)
        for variant in ("eager", "fused"):
            row[f"penalty_ops_{variant}"] = timing.measure(step.penalty_ops(variant, real, fake), device,
                                                           warmup=2, reps=15, max_total_s=1.0)
            row[f"penalty_share_{variant}"] = row[f"penalty_ops_{variant}"]["median_s"] / row[f"step_{variant}"]["median_s"]
        row["fused/eager"] = row["step_fused"]["median_s"] / row["step_eager"]["median_s"]
        row["eager/no_penalty"] = row["step_eager"]["median_s"] / row["step_no_penalty"]["median_s"]
        if device == "cuda" and kind == GRAPH_STEP:
            for variant in ("eager", "fused"):
                try:
                    replay = step.graph_replay(kind, variant, device, batch=batch)
                    row[f"graph_{variant}"] = timing.measure(replay, device, **mkw)
                except Exception as error:  # reported, not fatal
                    row[f"graph_{variant}_error"] = f"{type(error).__name__}: {error}"[:300]
            if "graph_fused" in row:
                row["graph_fused/eager"] = row["graph_fused"]["median_s"] / row["step_eager"]["median_s"]
        rows.append(row)
        log(f"step {kind}: eager {row['step_eager']['median_s'] * 1e3:.2f} ms, fused {row['step_fused']['median_s'] * 1e3:.2f} ms, "
            f"penalty share eager {row['penalty_share_eager']:.1%} fused {row['penalty_share_fused']:.1%}")
    return rows


def run_memory(args, device: str) -> dict:
    batch, shape = (64, (3, 256, 256)) if args.quick else (1024, (3, 256, 256))
    dtype = torch.float32
    budget = available_bytes(device)
    out = {"batch": batch, "shape": sname(shape), "dtype": dname(dtype), "ops": {}}
    for op in args.ops or baselines.OPS:
        if not baselines.fits(op, batch, shape, dtype, MAX_TENSOR_BYTES, budget):
            out["ops"][op] = {"skipped": "does not fit"}
            continue
        entry = {}
        for variant in memory.VARIANTS:
            if device == "cuda":
                entry[variant] = memory.measure_here(op, variant, batch, shape, dtype, device)
                torch.cuda.empty_cache()
            else:
                entry[variant] = memory.measure_subprocess(op, variant, batch, shape, dtype, device)
        if all("extra_peak_bytes" in entry[v] for v in memory.VARIANTS) and entry["eager"]["extra_peak_bytes"] > 0:
            entry["fused/eager"] = entry["fused"]["extra_peak_bytes"] / entry["eager"]["extra_peak_bytes"]
        out["ops"][op] = entry
        log(f"memory {op}: " + ", ".join(f"{v} +{entry[v].get('extra_peak_bytes', float('nan')) / 2**20:.0f} MiB" for v in memory.VARIANTS))
    return out


# ---------------------------------------------------------------------------------------
# formatting


def _ms(entry) -> str:
    if not isinstance(entry, dict) or "median_s" not in entry:
        return "-"
    return f"{entry['median_s'] * 1e3:.3g} [{entry['p20_s'] * 1e3:.3g}, {entry['p80_s'] * 1e3:.3g}]"


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _copy_share(row) -> str:
    """The fused op's share of the copy bandwidth, starred above 100% (see the table's note)."""
    share = row.get("fused_share_of_copy_bw")
    if share is None:
        return "-"
    return f"{100 * share:.0f}%" + ("*" if share > 1 else "")


def markdown(result: dict) -> str:
    info = result["machine"]
    lines = [f"# wgan_kernels benchmarks: {info['device_name']}", ""]
    lines += [f"- command: `{result['command']}`", f"- date: {info['date']}",
              f"- device: {info['device']} ({info['device_name']}), {info['cpu_cores']} CPU cores, "
              f"{info.get('memory_gib', '?')} GiB, torch threads {info['torch_threads']}",
              f"- torch {info['torch']}, CUDA {info['cuda']}, Python {info['python']}, "
              f"wgan_kernels {info.get('wgan_kernels')} ({info.get('wgan_kernels_backend')}), git {info.get('git_commit', '?')}"
              f"{' with local changes in ' + ', '.join(info['git_dirty_paths']) if info.get('git_dirty_paths') else ''}, "
              f"extension built {info.get('extension_built', '?')}",
              f"- copy bandwidth (dst.copy_(src), {result['copy']['bytes'] / 2**20:.0f} MiB moved): "
              f"**{result['copy']['gb_per_s']:.2f} GB/s**",
              f"- load average (1, 5, 15 min) at start: {info.get('load_average')}, at end: {result.get('load_average_end')} "
              "(above the core count means other processes competed for the cores: expect noise)",
              f"- wall time of this report: {result['wall_s']:.0f} s"]
    mem = result.get("memory")
    not_run = [part for part, ran in (("op level", result["ops"]), ("step level", result["steps"]),
                                      ("memory", mem and mem.get("ops"))) if not ran]
    if not_run:
        lines.append(f"- not run in this report: {', '.join(not_run)}")
    lines.append("")
    if result["ops"]:
        lines += _op_section(result)
    if any("targets" in row for row in result["ops"]):
        lines += _targets_section(result)
    if result["steps"]:
        lines += _step_section(result)
    if mem and mem.get("ops"):
        lines += _memory_section(mem)
    return "\n".join(lines) + "\n"


def _op_section(result: dict) -> list[str]:
    lines = ["## Op level", "",
              "Times in ms: median [p20, p80] after warm-up. Ratios are fused time / baseline time "
              "(< 1: fused is faster). BW: the fused op's bytes that must move (baselines.TENSOR_PASSES) "
              "per second, and as a share of the copy bandwidth measured above. * above 100%: not a measurement "
              "error; the inputs stayed in the CPU caches between repetitions (sizes of a few MB), or the op only "
              "reads (grad_norm, penalty_stats), which goes faster than the copy's read plus write. "
              "compile s: first call of torch.compile at "
              "that size (compile or recompile + one run), excluded from its timing; "
              f"compile mode: {'static (dynamic=False, one compile per size)' if result.get('static_compile') else 'dynamic=True (one graph per op, dtype and rank, reused across sizes)'}. "
              "check: ok = every variant agreed with the reference at this size before timing; n/c = size too large "
              "to check (checked at the smaller ones).", "",
              "| op | dtype | B | shape | eager | compile | reference | fused | fused/eager | fused/compile "
              "| fused/reference | fused GB/s | % copy BW | compile s | check |",
              "|" + "---|" * 15]
    for row in result["ops"]:
        if "skipped" in row:
            lines.append(f"| {row['op']} | {row['dtype']} | {row['batch']} | {row['shape']} | skipped: {row['skipped']} |" + " |" * 10)
            continue
        ref = _ms(row.get("reference")) if "reference" in row else "skipped" if "reference_skipped" in row else "-"
        check = row.get("check", "-")
        check = "ok" if check == "ok" else ("FAILED" if check.startswith("FAILED") else "n/c")
        lines.append(
            f"| {row['op']} | {row['dtype']} | {row['batch']} | {row['shape']} | {_ms(row.get('eager'))} | "
            f"{_ms(row.get('compile'))} | {ref} | {_ms(row.get('fused'))} | {_ratio(row.get('fused/eager'))} | "
            f"{_ratio(row.get('fused/compile'))} | {_ratio(row.get('fused/reference'))} | "
            f"{row.get('fused_gb_per_s', 0):.2f} | {_copy_share(row)} | "
            f"{row.get('compile_first_call_s', float('nan')):.1f} | {check} |")
    clones = [r for r in result["ops"] if "clone" in r]
    if clones:
        lines += ["", "Floor for interpolate: `real.clone()` (reads 1, writes 1 tensor; interpolate reads 2, writes 1).", "",
                  "| dtype | B | shape | clone ms | interpolate fused ms | fused/clone |", "|---|---|---|---|---|---|"]
        for r in clones:
            lines.append(f"| {r['dtype']} | {r['batch']} | {r['shape']} | {_ms(r['clone'])} | {_ms(r.get('fused'))} | {_ratio(r.get('fused/clone'))} |")
    failed = [r for r in result["ops"] if str(r.get("check", "")).startswith("FAILED")]
    if failed:
        lines += ["", "### Correctness failures", ""] + [f"- {r['check']}" for r in failed]
    return lines + [""]


def _targets_section(result: dict) -> list[str]:
    rows = [r for r in result["ops"] if r.get("targets")]
    lines = ["## GPU targets (issue 9)", "",
             f"Per op row: at >= {TARGET_LARGE_BYTES / 1e6:.0f} MB per input tensor, >= {TARGET_COPY_SHARE:.0%} of the "
             f"copy bandwidth; at B x 2 with B <= 1024, >= {TARGET_SMALL_SPEEDUP:g}x faster than eager; never slower "
             "than torch.compile.", "",
             f"- met: {sum(all(r['targets'].values()) for r in rows)} of {len(rows)} rows", "",
             "| op | dtype | B | shape | % copy BW | fused/eager | fused/compile | missed |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        missed = [name for name, ok in r["targets"].items() if not ok]
        lines.append(f"| {r['op']} | {r['dtype']} | {r['batch']} | {r['shape']} | {_copy_share(r)} | "
                     f"{_ratio(r.get('fused/eager'))} | {_ratio(r.get('fused/compile'))} | {', '.join(missed) or '-'} |")
    return lines + [""]


def _step_section(result: dict) -> list[str]:
    lines = ["## Step level", "",
              "One critic update (interpolation sampling, 3 critic forwards, input gradient with create_graph, "
              "penalty, backward, Adam step; generator not run). penalty ops: interpolate + norm_penalty forward "
              "and backward alone on a gradient of the step's size; share = penalty ops / step.", "",
              "| critic | B | shape | no penalty ms | eager step ms | fused step ms | fused/eager | eager/no penalty "
              "| penalty ops eager ms | penalty ops fused ms | penalty share eager | penalty share fused | check |",
              "|" + "---|" * 13]
    for r in result["steps"]:
        lines.append(
            f"| {r['critic']} ({r['source']}) | {r['batch']} | {r['shape']} | {_ms(r['step_no_penalty'])} | {_ms(r['step_eager'])} | "
            f"{_ms(r['step_fused'])} | {_ratio(r['fused/eager'])} | {_ratio(r['eager/no_penalty'])} | "
            f"{_ms(r['penalty_ops_eager'])} | {_ms(r['penalty_ops_fused'])} | {r['penalty_share_eager']:.1%} | "
            f"{r['penalty_share_fused']:.1%} | {r['check'] if r['check'] == 'ok' else 'FAILED'} |")
    graphs = [r for r in result["steps"] if any(k.startswith("graph_") for k in r)]
    if graphs:
        lines += ["", "The same steps captured in one CUDA graph (`torch.cuda.graph`, Adam with capturable=True) "
                  "and replayed, against the eager step (not captured).", "",
                  "| critic | B | eager step ms | eager graph replay ms | fused graph replay ms | fused graph / eager step |",
                  "|---|---|---|---|---|---|"]
        for r in graphs:
            lines.append(f"| {r['critic']} | {r['batch']} | {_ms(r['step_eager'])} | "
                         f"{_ms(r.get('graph_eager')) if 'graph_eager' in r else r.get('graph_eager_error', '-')} | "
                         f"{_ms(r.get('graph_fused')) if 'graph_fused' in r else r.get('graph_fused_error', '-')} | "
                         f"{_ratio(r.get('graph_fused/eager'))} |")
    return lines + [""]


def _memory_section(mem: dict) -> list[str]:
    lines = [f"## Memory (B={mem['batch']}, {mem['shape']}, {mem['dtype']})", ""]
    if mem.get("command"):
        lines += [f"Re-measured with `{mem['command']}` on {mem.get('date')}.", ""]
    lines += ["Extra peak memory of one call over its inputs (CPU: ru_maxrss delta in a fresh process per variant; "
              "backward ops include their gradients).", "",
              "| op | inputs MiB | eager extra MiB | fused extra MiB | fused/eager |", "|---|---|---|---|---|"]
    for op, e in mem["ops"].items():
        if "skipped" in e:
            lines.append(f"| {op} | skipped: {e['skipped']} | | | |")
            continue

        def mib(v):
            return f"{e[v]['extra_peak_bytes'] / 2**20:.0f}" if "extra_peak_bytes" in e[v] else e[v].get("error", "?")

        inp = e["eager"].get("input_bytes", 0) / 2**20
        lines.append(f"| {op} | {inp:.0f} | {mib('eager')} | {mib('fused')} | {_ratio(e.get('fused/eager'))} |")
    return lines + [""]


def _write(result: dict, base: str) -> None:
    with open(base + ".json", "w") as f:  # raw numbers first, whatever happens to the formatting
        json.dump(result, f, indent=1, default=str)
    text = markdown(result)
    print(text)
    with open(base + ".md", "w") as f:
        f.write(text)
    log(f"wrote {base}.json and .md")


def update_memory(args, device: str, command: str) -> int:
    base = os.path.join(args.out_dir, timing.slug(timing.device_name(device)) + ("-quick" if args.quick else ""))
    with open(base + ".json") as f:
        result = json.load(f)
    result["memory"] = run_memory(args, device)
    result["memory"]["command"] = command
    result["memory"]["date"] = timing.machine_info(device)["date"]
    _write(result, base)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three sizes, fewer samples (about 4 minutes on 2 cores)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--ops", nargs="*", choices=baselines.OPS, help="only these ops (default: all)")
    parser.add_argument("--static-compile", action="store_true",
                        help="torch.compile(dynamic=False) afresh for every size (slow: one compile per size)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for the whole run (default: torch's choice); 1 is steadier "
                             "on a machine whose cores other processes also use")
    parser.add_argument("--all-sizes", action="store_true", help="on CPU too, every size and dtype of the grid")
    parser.add_argument("--update-memory", action="store_true",
                        help="re-measure only the memory section and merge it into the existing results file")
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out-dir", default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    if args.device == "cuda":
        from wgan_kernels import _backend

        if not _backend.cuda_kernels_enabled():  # else "fused" would time the reference
            parser.error(f"--device cuda times the CUDA kernels: set {_backend.CUDA_ENV_VAR}=1 (docs/CUDA.md)")
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    command = f"{PROG} " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "quick": args.quick, "static_compile": args.static_compile, "machine": timing.machine_info(device)}
    log(f"device: {result['machine']['device_name']}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    copy_bytes = (128 if args.quick else 256) * 2**20
    if args.update_memory:
        return update_memory(args, device, command.strip())
    result["copy"] = timing.copy_bandwidth(device, copy_bytes, reps=10, max_total_s=2.0)
    log(f"copy bandwidth: {result['copy']['gb_per_s']:.2f} GB/s")
    result["ops"] = run_ops(args, device, result["copy"]["gb_per_s"])
    result["steps"] = [] if args.skip_steps else run_steps(args, device)
    result["memory"] = None if args.skip_memory else run_memory(args, device)
    result["wall_s"] = time.perf_counter() - start
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, timing.slug(result["machine"]["device_name"]) + ("-quick" if args.quick else ""))
    _write(result, base)
    failed = [r for r in result["ops"] if str(r.get("check", "")).startswith("FAILED")]
    failed += [r for r in result["steps"] if r["check"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
