"""Helpers for the model-zoo tests (not a test module)."""

from __future__ import annotations

import torch
from torch import nn

from snn_deploy.models.attention import SpikingSelfAttention
from snn_deploy.neurons import FloatLIF, QuantizedLIF

SSA_DRIVE = 1.0
"""BatchNorm bias given to SSA's q, k, v so their spikes are dense enough for q (k^T v) / 8 to reach the
attention threshold; at initialisation the attention neuron would otherwise stay silent."""


def calibrate(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Make a freshly initialised model spike everywhere, then return it in eval mode.

    In eval mode a new network (running mean 0, variance 1) barely spikes, which would make output comparisons
    vacuous. We drive SSA's q/k/v (see SSA_DRIVE) and set every BatchNorm's running statistics to those of
    ``inputs``, so each layer sees unit-variance currents.
    """
    for module in model.modules():
        if isinstance(module, SpikingSelfAttention):
            for key in ("q", "k", "v"):
                getattr(module, module.unit_specs[key].bn).bias.data.fill_(SSA_DRIVE)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch gives exactly its statistics
    model.train()
    with torch.no_grad():
        model(inputs)
    for bn in norms:
        bn.momentum = 0.1
    return model.eval()


def spike_rates(model: nn.Module, inputs: torch.Tensor) -> dict[str, float]:
    """Firing rate of every neuron module of ``model`` for ``inputs`` (to show a test is not vacuous)."""
    rates = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=name: rates.__setitem__(n, float(o.float().mean())))
             for name, m in model.named_modules() if isinstance(m, (FloatLIF, QuantizedLIF))]
    with torch.no_grad():
        model(inputs)
    for hook in hooks:
        hook.remove()
    return rates
