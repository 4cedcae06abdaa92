"""The few collective operations the engine needs, as no-ops when running as one process.

Under ``torchrun`` (WORLD_SIZE > 1) the process group is created here: gloo on CPU, NCCL on CUDA.
Every rank calls every collective in the same order on every step, whatever its data, so a rank
whose batch lacks desirable or undesirable examples never leaves the others waiting.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when we created the process group (and so must destroy it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum across processes (returns a new tensor on the input's device)."""
        if not self.enabled:
            return tensor.clone()
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def any(self, flag: bool, device) -> bool:
        return bool(self.max_int(int(flag), device))

    def max_int(self, value: int, device) -> int:
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup(device_kind: str) -> Dist:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
        owns = True
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, owns_group=owns)
