"""Spiking MLP and the residual transformer block shared by all three families."""

from __future__ import annotations

import torch
from torch import nn

from snn_deploy.models.units import UnitHost, pointwise


class SpikingMLP(UnitHost):
    """Two pointwise units D -> hidden -> D, each followed by BatchNorm and LIF (biases as in the official code).

    ``names`` are the official unit prefixes: ``fc1``/``fc2`` (Spikformer, QKFormer ImageNet) or ``mlp1``/``mlp2``
    (QKFormer CIFAR and DVS files).
    """

    def __init__(self, dim: int, hidden: int, *, mode: str, layer: str = "conv2d",
                 names: tuple[str, str] = ("fc1", "fc2")) -> None:
        super().__init__()
        self.names = names
        self.add_unit(names[0], pointwise(layer, dim, hidden, True), hidden, mode=mode, input="integer")
        self.add_unit(names[1], pointwise(layer, hidden, dim, True), dim, mode=mode, input="spikes")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(self.names[1], self.unit(self.names[0], x))


class Block(nn.Module):
    """``x = x + attn(x); x = x + mlp(x)``: the residual stream is a sum of spike tensors (integer counts).

    The attention module is registered under its official attribute name (``attn``, ``tssa`` or ``ssa``).
    """

    def __init__(self, attn: nn.Module, mlp: SpikingMLP, attn_name: str = "attn") -> None:
        super().__init__()
        self.attn_name = attn_name
        self.add_module(attn_name, attn)
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + getattr(self, self.attn_name)(x)
        return x + self.mlp(x)
