"""Spike-driven attention: Spiking Self-Attention (Spikformer) and Q-K attention (QKFormer). No softmax.

Every product here is between spike tensors (0/1), so it is a count, not a floating-point similarity. Inputs and
outputs are [T, B, C, H, W]; tokens are the H*W positions.
"""

from __future__ import annotations

import torch

from snn_deploy.fixedpoint import spike_product
from snn_deploy.models.units import UnitHost, pointwise
from snn_deploy.neurons import make_lif

ATTN_THRESHOLD = 0.5
"""Threshold of the attention neuron (``attn_lif``) in every official file."""


class SpikingSelfAttention(UnitHost):
    """SSA: q, k, v spikes; per head ``q @ (k^T @ v) * scale`` -> attention LIF (0.5) -> proj unit.

    The product is :func:`snn_deploy.fixedpoint.spike_product` (``k^T v`` first: linear in the token count, and
    equal to ``(q k^T) v`` exactly because all operands are small integers).
    """

    def __init__(self, dim: int, heads: int, *, mode: str, scale: float = 0.125, layer: str = "conv1d",
                 qkv_bias: bool = False, input: str = "integer", legacy: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads, self.scale, self.legacy = heads, float(scale), bool(legacy)
        for key in ("q", "k", "v"):
            self.add_unit(key, pointwise(layer, dim, dim, qkv_bias), dim, mode=mode, input=input)
        self.attn_lif = make_lif(mode, ATTN_THRESHOLD)
        self.add_unit("proj", pointwise(layer, dim, dim, True), dim, mode=mode, input="spikes")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, h, w = x.shape
        q, k, v = (self.unit(key, x).flatten(3) for key in ("q", "k", "v"))
        y = spike_product(q, k, v, self.heads) * self.scale
        y = self.attn_lif(y).reshape(t, b, c, h, w)
        return self.unit("proj", y, neuron_over_time_batch=self.legacy)


class QKTokenAttention(UnitHost):
    """QKTA: per head, the channel sum of q drives the attention LIF; its spike masks the tokens of k.

    Linear in the token count and free of any scale: the mask is binary and multiplies binary k.
    """

    def __init__(self, dim: int, heads: int, *, mode: str, layer: str = "conv1d", input: str = "integer") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        for key in ("q", "k"):
            self.add_unit(key, pointwise(layer, dim, dim, False), dim, mode=mode, input=input)
        self.attn_lif = make_lif(mode, ATTN_THRESHOLD)
        self.add_unit("proj", pointwise(layer, dim, dim, True), dim, mode=mode, input="spikes")

    def mask(self, q: torch.Tensor) -> torch.Tensor:
        """Query spikes [T, B, C, H, W] -> token mask [T, B, heads, 1, H, W] (channel sum per head)."""
        t, b, c, h, w = q.shape
        return self.attn_lif(q.reshape(t, b, self.heads, c // self.heads, h, w).sum(3, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, h, w = x.shape
        q, k = self.unit("q", x), self.unit("k", x)
        y = self.mask(q) * k.reshape(t, b, self.heads, c // self.heads, h, w)
        return self.unit("proj", y.reshape(t, b, c, h, w))


class QKChannelAttention(QKTokenAttention):
    """QKCA (the QKFormer paper's channel variant): the token sum of q drives the LIF, which masks channels of k."""

    def mask(self, q: torch.Tensor) -> torch.Tensor:
        """Query spikes [T, B, C, H, W] -> channel mask [T, B, heads, C/heads, 1, 1] (sum over all tokens)."""
        t, b, c = q.shape[:3]
        return self.attn_lif(q.flatten(3).sum(3)).reshape(t, b, self.heads, c // self.heads, 1, 1)
