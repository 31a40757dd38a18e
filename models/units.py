"""The one synaptic unit every model is made of: conv-or-linear -> BatchNorm -> LIF (optional max-pool).

The official Spikformer / QKFormer code names the three modules of a unit as siblings (``q_conv``, ``q_bn``,
``q_lif``), so a trained checkpoint maps 1:1 onto our state dict only if we do the same. A :class:`UnitHost`
therefore registers the modules under those flat names and remembers each unit as a :class:`UnitSpec`; one
method (:meth:`UnitHost.unit`) runs any unit, so the time/batch merging, pooling placement and neuron call are
written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from snn_deploy.fixedpoint import limits as L
from snn_deploy.neurons import make_lif

INPUT_KINDS = ("analog", "spikes", "integer")
"""What a unit's layer receives: analog values (pixels, event counts), binary spikes, or the integer residual
stream (a sum of binary spike tensors)."""

POINTWISE_KINDS = ("conv1d", "conv2d", "linear")
"""Layer types the official files use for token-wise (1x1) layers; they differ only in weight shape."""


@dataclass(frozen=True)
class UnitSpec:
    """Attribute names of one unit inside its host module, in the order the forward pass uses them."""

    layer: str
    bn: str
    neuron: str
    input: str
    pool: str | None = None
    pool_before_neuron: bool = False


def pointwise(kind: str, in_features: int, out_features: int, bias: bool) -> nn.Module:
    """A 1x1 token-mixing-free layer of the official file's type (weights [o, i], [o, i, 1] or [o, i, 1, 1])."""
    if kind == "conv1d":
        return nn.Conv1d(in_features, out_features, kernel_size=1, bias=bias)
    if kind == "conv2d":
        return nn.Conv2d(in_features, out_features, kernel_size=1, bias=bias)
    if kind == "linear":
        return nn.Linear(in_features, out_features, bias=bias)
    raise ValueError(f"unknown pointwise layer kind {kind!r}; choose one of {', '.join(POINTWISE_KINDS)}")


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """The stems' 3x3 convolution: stride 1, padding 1, no bias (BatchNorm follows)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


class QuantizedInput(nn.Module):
    """The analog input layer of an integer-mode model: ``layer(clip(round(x * scale)))``, so it sees the graded
    integer payloads the hardware receives (see :func:`snn_deploy.quant.quantize`)."""

    def __init__(self, layer: nn.Module, scale: float, signed: bool, payload_bits: int) -> None:
        super().__init__()
        self.layer, self.scale, self.signed, self.payload_bits = layer, float(scale), bool(signed), int(payload_bits)

    @property
    def payload_range(self) -> tuple[int, int]:
        return L.payload_range(self.payload_bits, self.signed)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x.to(torch.float64) * self.scale).clamp(*self.payload_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.quantize(x))


def apply_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a Conv2d, Conv1d or Linear on a [N, C, H, W] feature map and return [N, C', H', W']."""
    if isinstance(layer, QuantizedInput):
        return apply_layer(layer.layer, layer.quantize(x))
    if isinstance(layer, nn.Conv2d):
        return layer(x)
    n, _, h, w = x.shape
    tokens = x.flatten(2)
    if isinstance(layer, nn.Conv1d):
        y = layer(tokens)
    elif isinstance(layer, nn.Linear):
        y = layer(tokens.transpose(1, 2)).transpose(1, 2)
    else:
        raise TypeError(f"unsupported synaptic layer {type(layer).__name__}")
    return y.reshape(n, -1, h, w)


def layer_suffix(layer: nn.Module) -> str:
    """``linear`` for nn.Linear, else ``conv``: the official files' naming (``q_linear`` / ``q_conv``)."""
    return "linear" if isinstance(layer, nn.Linear) else "conv"


class UnitHost(nn.Module):
    """A module that owns units under official flat attribute names and runs them on [T, B, C, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        self.unit_specs: dict[str, UnitSpec] = {}

    def add_unit(self, key: str, layer: nn.Module, channels: int, *, mode: str, input: str,
                 threshold: float = 1.0, pool: str | None = None, pool_before_neuron: bool = False,
                 names: tuple[str, str, str] | None = None) -> None:
        """Register ``layer`` -> BatchNorm -> LIF as unit ``key``; ``pool`` names a MaxPool(3, 2, 1) if any.

        ``names`` overrides the default attribute names ``{key}_conv|linear``, ``{key}_bn``, ``{key}_lif``.
        """
        if input not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {input!r}; choose one of {', '.join(INPUT_KINDS)}")
        layer_name, bn_name, lif_name = names or (f"{key}_{layer_suffix(layer)}", f"{key}_bn", f"{key}_lif")
        setattr(self, layer_name, layer)
        setattr(self, bn_name, nn.BatchNorm2d(channels))
        if pool is not None:
            setattr(self, pool, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        setattr(self, lif_name, make_lif(mode, threshold))
        pool_first = pool is not None and pool_before_neuron
        self.unit_specs[key] = UnitSpec(layer_name, bn_name, lif_name, input, pool, pool_first)

    def unit(self, key: str, x: torch.Tensor, *, neuron_over_time_batch: bool = False) -> torch.Tensor:
        """Run unit ``key`` on x [T, B, C, H, W]; conv and BN see T and B merged, the neuron sees [T, B, ...].

        ``neuron_over_time_batch`` reproduces QKFormer's published defect: the neuron gets [T*B, ...] and so
        integrates across samples of the batch (only for accuracy comparisons with the official numbers).
        """
        spec = self.unit_specs[key]
        t, b = x.shape[:2]
        y = getattr(self, spec.bn)(apply_layer(getattr(self, spec.layer), x.flatten(0, 1)))
        pool = getattr(self, spec.pool) if spec.pool is not None else None
        if pool is not None and spec.pool_before_neuron:
            y = pool(y)
        neuron = getattr(self, spec.neuron)
        if neuron_over_time_batch:
            y = neuron(y).reshape(t, b, *y.shape[1:])
        else:
            y = neuron(y.reshape(t, b, *y.shape[1:]))
        if pool is not None and not spec.pool_before_neuron:
            y = pool(y.flatten(0, 1))
            y = y.reshape(t, b, *y.shape[1:])
        return y
