"""What post-training quantization changed: per-layer spike agreement and accuracy, original model vs integer model.

Both models see the same inputs; every LIF module (float, loihi or integer mode; same module path in both, since
quantization replaces neurons in place) is read with a forward hook. A layer's *agreement* is the fraction of its
outputs (neurons x steps x samples) that are equal. Differences compound with depth: a deep layer's disagreement
includes everything upstream layers changed, so the first layer with low agreement is where to look.
Batches are compared one at a time, so memory does not grow with the number of samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snn_deploy.agreement import agreement
from snn_deploy.neurons import FloatLIF, IntegerLIF, QuantizedLIF

CHECK_SCHEMA = 1
_NEURONS = (FloatLIF, QuantizedLIF, IntegerLIF)


@dataclass
class LayerAgreement:
    """Spike counts of one neuron layer in both models and how many outputs differ, summed over batches of
    :func:`snn_deploy.agreement.agreement`."""

    layer: str
    outputs: int = 0
    spikes_before: int = 0
    spikes_after: int = 0
    mismatches: int = 0

    @property
    def agreement(self) -> float:
        return 1.0 - self.mismatches / self.outputs if self.outputs else 1.0


@dataclass
class QuantCheck:
    """Accuracy before and after quantization and per-layer agreement, on the same samples."""

    samples: int = 0
    correct_before: int = 0
    correct_after: int = 0
    prediction_mismatches: int = 0
    layers: list[LayerAgreement] = field(default_factory=list)

    @property
    def accuracy_before(self) -> float:
        return self.correct_before / self.samples if self.samples else 0.0

    @property
    def accuracy_after(self) -> float:
        return self.correct_after / self.samples if self.samples else 0.0

    def to_dict(self) -> dict:
        return {"schema_version": CHECK_SCHEMA, "samples": self.samples,
                "accuracy_before": self.accuracy_before, "accuracy_after": self.accuracy_after,
                "prediction_mismatches": self.prediction_mismatches,
                "layers": [{**asdict(row), "agreement": row.agreement} for row in self.layers]}


def _neuron_outputs(model: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    caught: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: caught.__setitem__(name, out.detach()))
               for name, module in model.named_modules() if isinstance(module, _NEURONS)]
    try:
        with torch.no_grad():
            logits = model.eval()(x.to(dtype))
    finally:
        for h in handles:
            h.remove()
    return caught, logits


def compare_quantized(original: nn.Module, quantized: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                      batch_size: int = 32, time_axis: bool = False,
                      advance: Callable[[int], None] = lambda n: None) -> QuantCheck:
    """Run samples ``x`` (images [N, ...], or frames [T, N, ...] with ``time_axis``) with labels ``y`` through
    both models and count accuracy and per-layer spike agreement."""
    check = QuantCheck()
    rows: dict[str, LayerAgreement] = {}
    dtype = next(original.parameters()).dtype
    n = int(y.numel())
    for start in range(0, n, batch_size):
        xb = x[:, start:start + batch_size] if time_axis else x[start:start + batch_size]
        yb = y[start:start + batch_size]
        before, logits_before = _neuron_outputs(original, xb, dtype)
        after, logits_after = _neuron_outputs(quantized, xb, torch.float64)
        for name, out in before.items():
            if name not in after:
                continue
            row = rows.setdefault(name, LayerAgreement(name))
            found = agreement(out, after[name])
            row.outputs += found.outputs
            row.spikes_before += found.spikes[0]
            row.spikes_after += found.spikes[1]
            row.mismatches += found.mismatches
        pred_before, pred_after = logits_before.argmax(1), logits_after.argmax(1)
        check.samples += int(yb.numel())
        check.correct_before += int((pred_before == yb).sum())
        check.correct_after += int((pred_after == yb).sum())
        check.prediction_mismatches += int((pred_before != pred_after).sum())
        advance(int(yb.numel()))
    check.layers = list(rows.values())
    return check
