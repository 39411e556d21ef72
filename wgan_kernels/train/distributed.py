"""Data-parallel training: rank and world size from torchrun's environment (Dist), the penalty's
sample points drawn on the global batch, and local multi-process CPU runs without torchrun
(launch_local, used by the tests: world_size processes on 127.0.0.1, DDP over gloo)."""

from __future__ import annotations

import datetime
import faulthandler
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import wgan_kernels as wk


class Dist:
    """rank / world size from torchrun's environment; world 1 when not distributed."""

    def __init__(self, device_kind: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous rows of a global batch of n."""
        if n % self.world:
            raise ValueError(f"the global batch {n} must be divisible by the number of processes {self.world}")
        size = n // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def broadcast(self, obj):
        if self.world == 1:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def reduce_metrics(self, means: torch.Tensor, maxima: torch.Tensor):
        if self.world > 1:
            dist.all_reduce(means, op=dist.ReduceOp.SUM)
            means /= self.world
            dist.all_reduce(maxima, op=dist.ReduceOp.MAX)
        return means, maxima

    def max_over_ranks(self, value: int, device: torch.device) -> int:
        """The largest of every rank's value (1 process: the value itself)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def all_true(self, flag: bool, device: torch.device) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.owns_group:
            dist.destroy_process_group()


def global_points(sampling: str, real_global: torch.Tensor, real: torch.Tensor, fake: torch.Tensor, rows: slice,
                  seed: int):
    """This rank's rows of a penalty's sample points as one process would draw them on the global
    batch, so N ranks take the steps of one: interpolates from the rows `rows` of the seed's
    Philox stream (row_offset), perturbations of the global real batch (their amplitude is the std
    of the whole batch). None where the points are the local samples themselves ('real', 'fake')."""
    if sampling == "interpolate":
        return wk.interpolate(real, fake, seed=seed, row_offset=rows.start)
    if sampling == "perturb_real":
        return wk.perturb(real_global, seed=seed)[rows]
    if sampling in ("real", "fake"):
        return None
    raise ValueError(f"no global sampling for {sampling!r}")


# ---------------------------------------------------------------------------------------
# local multi-process runs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, config, threads: int, timeout: float | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's connections on loopback too
    torch.set_num_threads(threads)
    from .trainer import run

    if timeout is None:
        run(config)  # Dist opens and closes the group with torch's default timeout
        return
    # A hung rank prints where it hangs and exits (mp.spawn then stops the others); collectives
    # and the rendezvous give up after the same time instead of torch's 30 minutes.
    faulthandler.dump_traceback_later(timeout, exit=True)
    dist.init_process_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout))
    try:
        run(config)
    finally:
        dist.destroy_process_group()
        faulthandler.cancel_dump_traceback_later()


def launch_local(config, world_size: int = 2, threads: int = 1, timeout: float | None = None) -> None:
    """Runs wgan_kernels.train.run(config) in world_size processes (CPU, gloo). With a timeout
    (seconds) a run that has not ended by then is stopped with an error: each rank still running
    prints its Python stack to stderr and exits, which raises torch's ProcessExitedException here;
    a rank that cannot even do that is killed 30 s later and TimeoutError is raised."""
    context = mp.start_processes(_worker, args=(world_size, free_port(), config, threads, timeout),
                                 nprocs=world_size, join=False, start_method="spawn")
    # the ranks' own watchdogs fire first; this one catches a rank stuck where they cannot see
    deadline = None if timeout is None else time.monotonic() + timeout + 30.0
    while not context.join(timeout=None if deadline is None else max(0.0, deadline - time.monotonic())):
        if deadline is not None and time.monotonic() >= deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
                process.join()
            raise TimeoutError(f"launch_local: the {world_size} ranks did not finish within timeout={timeout} s")
