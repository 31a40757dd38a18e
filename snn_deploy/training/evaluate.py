"""Accuracy and mean loss of a model on a split, summed over processes."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from snn_deploy.data.base import Samples
from snn_deploy.training.batches import eval_batches, model_input
from snn_deploy.training.runtime import World


@dataclass(frozen=True)
class Score:
    correct: int
    total: int
    loss: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def evaluate(model: nn.Module, samples: Samples, *, kind: str, batch_size: int, world: World) -> Score:
    """Top-1 accuracy and mean cross-entropy over all of ``samples`` (each process scores its shard)."""
    was_training = model.training
    model.eval()
    dtype = next(model.parameters()).dtype  # integer-mode models compute in float64
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for x, y in eval_batches(samples, batch_size=batch_size, world=world):
            x, y = x.to(world.device, dtype), y.to(world.device)
            logits = model(model_input(x, kind))
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += int(y.numel())
    model.train(was_training)
    correct_all, total_all, loss_all = world.sum([correct, total, loss_sum])
    return Score(int(correct_all), int(total_all), loss_all / max(total_all, 1))


def deployed(model: nn.Module) -> nn.Module:
    """The integer model ``snn-deploy export`` builds from ``model`` without ``--calibrate`` (BatchNorm folded,
    8-bit weights, inputs in [0, 1]), on the CPU; ``model`` is left as it is."""
    from snn_deploy.quant import quantize

    copied = copy.deepcopy(model).cpu()
    quantize(copied)
    return copied
