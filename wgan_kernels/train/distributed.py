"""Local multi-process runs without torchrun (used by the tests): spawns world_size CPU
processes that rendezvous on 127.0.0.1 and train with DDP over gloo."""

from __future__ import annotations

import os
import socket
import sys

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, config, threads: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's connections on loopback too
    torch.set_num_threads(threads)
    from .trainer import run

    run(config)


def launch_local(config, world_size: int = 2, threads: int = 1) -> None:
    """Runs wgan_kernels.train.run(config) in world_size processes (CPU, gloo)."""
    mp.spawn(_worker, args=(world_size, free_port(), config, threads), nprocs=world_size, join=True)
