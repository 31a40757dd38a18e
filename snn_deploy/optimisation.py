"""How a training command optimises: the one settings type the data sets' defaults, ``train``, ``pretrain`` and
the training loop share (AdamW, linear warm-up then cosine decay, see :mod:`snn_deploy.training.schedule`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Optimisation:
    """Epochs, batch (split into ``micro_batches`` for memory), learning rate, AdamW weight decay, warm-up epochs
    and label smoothing (classification only)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int
    label_smoothing: float = 0.0
    micro_batches: int = 1

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
