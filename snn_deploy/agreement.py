"""Spike agreement of two runs of one layer: how many outputs differ, and where first.

The one definition ``quantize`` (original vs quantized model, :mod:`snn_deploy.quant_check`) and ``verify``
(backend vs reference backend, :mod:`snn_deploy.sims.runs.verify`) report. Outputs are [T, B, ...] (steps, samples,
neurons); any two dtypes compare by value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Agreement:
    """One layer, two runs: output and spike counts of each, the differing outputs, the first difference."""

    outputs: int
    spikes: tuple[int, int]
    mismatches: int
    first: tuple[int, int] | None
    """(step, sample) of the first differing output, or None."""

    @property
    def fraction(self) -> float:
        """Share of equal outputs (1 for an empty layer)."""
        return 1.0 - self.mismatches / self.outputs if self.outputs else 1.0


def agreement(a: torch.Tensor, b: torch.Tensor) -> Agreement:
    """Compare the outputs ``a`` and ``b`` of one layer, [T, B, ...] each."""
    diff = a.to(torch.float64) != b.to(torch.float64)
    mismatches = int(diff.sum())
    first = None
    if mismatches:
        idx = diff.reshape(*diff.shape[:2], -1).any(-1).nonzero() if diff.dim() > 1 else diff.nonzero()
        first = (int(idx[0, 0]), int(idx[0, 1]) if idx.shape[1] > 1 else 0)
    return Agreement(int(a.numel()), (int(a.sum()), int(b.sum())), mismatches, first)
