"""Batches for training and evaluation, sharded over processes the way DistributedSampler shards them.

Every epoch draws one permutation from ``seed + epoch`` (torch's DistributedSampler); global batch ``i`` is
positions ``i*B .. (i+1)*B`` of it and process ``r`` of ``W`` takes every W-th of those, starting at ``r``. A
single process with ``micro_batches = W`` splits each global batch the same way, so N processes and one process
with N micro-batches see the same samples in the same BatchNorm groups. The last incomplete global batch is
dropped, so all micro-batches have equal size and the gradient is the plain mean over the global batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from snn_deploy.data.base import Samples
from snn_deploy.errors import UserError
from snn_deploy.training.runtime import World


class EpochView(Dataset):
    """``(input, label)`` of a split; a training view augments sample ``i`` with a generator from (seed, epoch, i)."""

    def __init__(self, samples: Samples, *, seed: int, augment: bool) -> None:
        self.samples, self.seed, self.augment, self.epoch = samples, seed, augment, 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.augment else None
        return self.samples.sample(i, rng), self.samples.labels[i]


def check_batch(batch_size: int, world: World, micro_batches: int, train_size: int) -> None:
    """The global batch must split evenly into processes x micro-batches and fit the training split."""
    parts = world.size * micro_batches
    if batch_size % parts:
        raise UserError(f"--batch-size {batch_size} does not split into {world.size} process(es) x {micro_batches} "
                        f"micro-batch(es); use a multiple of {parts}")
    if batch_size > train_size:
        raise UserError(f"--batch-size {batch_size} is larger than the {train_size} training samples; use a smaller "
                        f"batch")


def train_batches(view: EpochView, *, epoch: int, batch_size: int, world: World) -> DataLoader:
    """This process's share of every full global batch of ``epoch`` (see the module docstring)."""
    view.epoch = epoch
    sampler = DistributedSampler(view, num_replicas=world.size, rank=world.rank, shuffle=True, seed=view.seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    return DataLoader(view, batch_size=batch_size // world.size, sampler=sampler, drop_last=True, num_workers=0)


def micro_split(x: torch.Tensor, y: torch.Tensor, parts: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Micro-batch ``j`` takes every ``parts``-th sample starting at ``j`` (the process sharding, in one process)."""
    for j in range(parts):
        yield x[j::parts], y[j::parts]


def eval_batches(samples: Samples, *, batch_size: int, world: World) -> DataLoader:
    """This process's shard (indices r, r + W, ...) of a split, in order, without padding or augmentation."""
    view = EpochView(samples, seed=0, augment=False)
    shard = torch.utils.data.Subset(view, range(world.rank, len(view), world.size))
    return DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=0)


def model_input(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Batch as the networks take it: images [B, C, H, W] as is, event frames [B, T, ...] -> [T, B, ...]."""
    return x.transpose(0, 1).contiguous() if kind == "events" else x
