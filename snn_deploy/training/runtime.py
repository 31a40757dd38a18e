"""Process setup shared by every training command: determinism and the (optional) process group.

Determinism on CPU needs three things: seeded generators everywhere (done by the callers), deterministic kernels
(``torch.use_deterministic_algorithms``), and a fixed intra-op thread count, because a parallel reduction sums
in a thread-count-dependent order. One thread per process is the default: on shared CPUs two OpenMP threads
that wait for each other were measured up to 15x slower per element-wise op; scale out with processes instead.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

BACKEND_TIMEOUT = datetime.timedelta(minutes=30)


def make_deterministic(seed: int, threads: int) -> None:
    """Fix the thread count, select deterministic kernels and seed torch's global generator."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` training processes (size 1: no process group)."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Only the main process prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all processes (float64, so counts stay exact)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Give every process the main process's buffers (BatchNorm running statistics) before evaluation."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def join_world() -> World:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else a single-process world.

    gloo on CPU, nccl when CUDA is available (one GPU per local rank).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=BACKEND_TIMEOUT)
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=device)


def leave_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
