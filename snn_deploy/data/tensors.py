"""Data-set samples as one batch of model input: what calibration, evaluation, verification and simulation read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from snn_deploy.data.catalog import open_splits
from snn_deploy.errors import UserError


class InputSpec(Protocol):
    """What :func:`dataset_tensors` reads from a model config (or builds from a bundle's input node)."""

    in_channels: int
    img_size: int
    T: int


@dataclass(frozen=True)
class Input:
    """An :class:`InputSpec` without a model config: a bundle's input shape and run length."""

    in_channels: int
    img_size: int
    T: int


def dataset_tensors(config: InputSpec, dataset: str, split: str, count: int, data_dir: Path | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` samples of a split as model input (images [N, C, H, W]; event frames [T, N, 2, H, W])
    and their labels, in split order (no augmentation)."""
    splits = open_splits(dataset, size=config.img_size, T=config.T, data_dir=data_dir)
    samples = getattr(splits, split)
    n = min(count, len(samples))
    if n == 0:
        raise UserError(f"data set {dataset!r} has no {split} samples")
    x = torch.stack([samples.sample(i, None) for i in range(n)])
    if x.dim() == 5:  # [N, T, C, H, W] event frames -> time first
        x = x.transpose(0, 1).contiguous()
    expected = (config.in_channels, config.img_size, config.img_size)
    if tuple(x.shape[-3:]) != expected:
        raise UserError(f"data set {dataset!r} gives samples shaped {tuple(x.shape[-3:])}, the model expects "
                        f"{expected}; pick the data set the model was built for")
    return x, samples.labels[:n].clone()
