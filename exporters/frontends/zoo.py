"""Lowering: an integer-mode model of the zoo -> :class:`~snn_deploy.graph.Graph`.

One function per building block, dispatched on its class, mirrors that block's ``forward``: units become a
:class:`ConvNode` and a :class:`LIFNode`; residual additions become :class:`SumNode`; a max-pool of spikes becomes
an OR (a depthwise all-ones convolution into a LIF with zero threshold and no memory); Q-K attention's mask
becomes standard nodes (a block-ones convolution into the attention LIF, and an AND: mask and k into a LIF with
threshold between 1 and 2); SSA's product becomes a :class:`SpikeProductNode`. Node names are the PyTorch module
paths, so every LIF node can be compared with the module that produced it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import (
    ConvNode, ConvRole, Graph, InputNode, LIFNode, Node, ReadoutNode, Shape, SpikeProductNode, SumNode, conv_output_hw,
)
from snn_deploy.models.attention import QKChannelAttention, QKTokenAttention, SpikingSelfAttention
from snn_deploy.models.blocks import Block, SpikingMLP
from snn_deploy.models.embed import SPS, ShortcutEmbed
from snn_deploy.models.networks import QKFormer, Spikformer, SpikingNetwork
from snn_deploy.models.units import QuantizedInput, UnitHost
from snn_deploy.neurons import IntegerLIF, QuantizedLIF, neuron_mode

NO_MEMORY_DV = L.DECAY_UNITY - 1
"""dv = 4095 keeps trunc(v / 4096) of the voltage: zero for the small voltages of OR / AND relay neurons."""


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _pointwise_kernel(layer: nn.Module) -> tuple[np.ndarray, dict]:
    """Weights of a Conv2d / Conv1d / Linear as a torch-orientation 2-D kernel with its geometry."""
    w = layer.weight.detach().to(torch.float64)
    if isinstance(layer, nn.Conv2d):
        geometry = dict(stride=tuple(layer.stride), padding=tuple(layer.padding), groups=layer.groups)
        if tuple(layer.dilation) != (1, 1):
            raise UserError(f"dilated convolutions are not supported by the Loihi lowering ({tuple(layer.dilation)})")
    elif isinstance(layer, nn.Conv1d):
        w, geometry = w.unsqueeze(-1), dict(stride=(1, 1), padding=(0, 0), groups=layer.groups)
    elif isinstance(layer, nn.Linear):
        w, geometry = w[:, :, None, None], dict(stride=(1, 1), padding=(0, 0), groups=1)
    else:
        raise UserError(f"cannot lower synaptic layer of type {type(layer).__name__}")
    if not torch.equal(w, torch.round(w)):
        raise UserError("layer weights are not integers: quantize the model first (snn-deploy quantize)")
    return w.to(torch.int64).numpy(), geometry


def _multiplier_as_weight(multiplier: int, where: str) -> tuple[int, int]:
    """An integer current multiplier as (8-bit weight, exponent)."""
    exp = 0
    while multiplier > (1 << L.WEIGHT_BITS) - 1 and multiplier % 2 == 0:
        multiplier //= 2
        exp += 1
    if multiplier > (1 << L.WEIGHT_BITS) - 1:
        raise UserError(f"{where}: current multiplier {multiplier << exp} has no 8-bit weight with an exponent")
    return multiplier, exp


class Lowering:
    """Accumulates nodes while walking a model's forward structure."""

    def __init__(self, model: SpikingNetwork) -> None:
        self.model = model
        self.nodes: list[Node] = []
        self.shapes: dict[str, Shape] = {}

    def add(self, node: Node) -> str:
        self.nodes.append(node)
        self.shapes[node.name] = node.shape
        return node.name

    # --- units ---------------------------------------------------------------------------------------------------
    def conv(self, name: str, source: str, weight: np.ndarray, *, graded: bool, stride=(1, 1), padding=(0, 0),
             groups: int = 1, weight_exp: int = 0, role: ConvRole = "synapse") -> str:
        shape = self.shapes[source]
        hw = conv_output_hw(shape[1:], weight.shape[2:], stride, padding)
        return self.add(ConvNode(name, (source,), (weight.shape[0], *hw), weight=weight, stride=tuple(stride),
                                 padding=tuple(padding), groups=groups, weight_exp=weight_exp, graded=graded,
                                 role=role))

    def lif(self, name: str, sources: tuple[str, ...], *, du: int, dv: int, vth: int, bias_mant=None, bias_exp=None) -> str:
        shape = self.shapes[sources[0]]
        channels = shape[0]
        mant = np.zeros(channels, dtype=np.int64) if bias_mant is None else np.asarray(bias_mant, dtype=np.int64)
        exp = np.zeros(channels, dtype=np.int64) if bias_exp is None else np.asarray(bias_exp, dtype=np.int64)
        return self.add(LIFNode(name, sources, shape, du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp))

    def spike_maxpool(self, name: str, source: str, pool: nn.MaxPool2d) -> str:
        """OR over each window: depthwise all-ones sum pool into a LIF that fires on any input (exact)."""
        channels = self.shapes[source][0]
        k = (pool.kernel_size,) * 2 if isinstance(pool.kernel_size, int) else tuple(pool.kernel_size)
        s = (pool.stride,) * 2 if isinstance(pool.stride, int) else tuple(pool.stride)
        p = (pool.padding,) * 2 if isinstance(pool.padding, int) else tuple(pool.padding)
        summed = self.conv(f"{name}.sum", source, np.ones((channels, 1, *k), dtype=np.int64), graded=False,
                           stride=s, padding=p, groups=channels, role="spike_pool")
        return self.lif(name, (summed,), du=L.DECAY_UNITY - 1, dv=NO_MEMORY_DV, vth=0)

    def unit(self, host: UnitHost, prefix: str, key: str, source: str) -> str:
        spec = host.unit_specs[key]
        layer, neuron = getattr(host, spec.layer), getattr(host, spec.neuron)
        layer_name = _join(prefix, spec.layer)
        if not isinstance(neuron, IntegerLIF):
            raise UserError(f"{_join(prefix, spec.neuron)} is not an integer neuron: quantize the model first")
        if spec.pool is not None and spec.pool_before_neuron:
            raise UserError(f"{_join(prefix, spec.pool)}: max-pool of analog BatchNorm output cannot be deployed; "
                            "export with --rewrite maxpool-after-lif")
        if isinstance(layer, QuantizedInput):
            layer = layer.layer
        weight, geometry = _pointwise_kernel(layer)
        exp = int(math.log2(neuron.input_multiplier))
        if 1 << exp != neuron.input_multiplier:
            raise UserError(f"{_join(prefix, spec.neuron)}: input multiplier {neuron.input_multiplier} is not 2^e")
        current = self.conv(layer_name, source, weight, graded=spec.input != "spikes", weight_exp=exp, **geometry)
        params = neuron.core.params
        spikes = self.lif(_join(prefix, spec.neuron), (current,), du=params.du, dv=params.dv, vth=params.vth,
                          bias_mant=neuron.bias_mant.numpy(), bias_exp=neuron.bias_exp.numpy())
        if spec.pool is not None:
            spikes = self.spike_maxpool(_join(prefix, spec.pool), spikes, getattr(host, spec.pool))
        return spikes

    def add_sum(self, name: str, sources: tuple[str, ...]) -> str:
        return self.add(SumNode(name, sources, self.shapes[sources[0]]))

    # --- blocks --------------------------------------------------------------------------------------------------
    def module(self, module: nn.Module, prefix: str, source: str) -> str:
        for cls, method in _DISPATCH:
            if isinstance(module, cls):
                return method(self, module, prefix, source)
        raise UserError(f"{prefix or 'model'}: no Loihi lowering for {type(module).__name__}")

    def sps(self, module: SPS, prefix: str, source: str) -> str:
        x = source
        for key in module.unit_specs:
            if key != "rpe":
                x = self.unit(module, prefix, key, x)
        rpe = self.unit(module, prefix, "rpe", x)
        return self.add_sum(_join(prefix, "rpe_add"), (x, rpe))

    def shortcut_embed(self, module: ShortcutEmbed, prefix: str, source: str) -> str:
        x = feat = source
        for i, key in enumerate(module.keys):
            x = self.unit(module, prefix, key, x)
            if i == module.shortcut_from:
                feat = x
        shortcut = self.unit(module, prefix, "proj_res", feat)
        return self.add_sum(_join(prefix, "shortcut_add"), (x, shortcut))

    def block(self, module: Block, prefix: str, source: str) -> str:
        attn = self.module(getattr(module, module.attn_name), _join(prefix, module.attn_name), source)
        x = self.add_sum(_join(prefix, "attn_add"), (source, attn))
        mlp = self.module(module.mlp, _join(prefix, "mlp"), x)
        return self.add_sum(_join(prefix, "mlp_add"), (x, mlp))

    def mlp(self, module: SpikingMLP, prefix: str, source: str) -> str:
        return self.unit(module, prefix, module.names[1], self.unit(module, prefix, module.names[0], source))

    def _attention_lif(self, neuron: nn.Module, name: str) -> QuantizedLIF:
        if not isinstance(neuron, QuantizedLIF):
            raise UserError(f"{name} is not an integer attention neuron: quantize the model first")
        return neuron

    def ssa(self, module: SpikingSelfAttention, prefix: str, source: str) -> str:
        if module.legacy:
            raise UserError(f"{prefix}: legacy_ssa reproduces a published defect and cannot be deployed")
        q, k, v = (self.unit(module, prefix, key, source) for key in ("q", "k", "v"))
        neuron = self._attention_lif(module.attn_lif, _join(prefix, "attn_lif"))
        multiplier = neuron.current_scale * module.scale
        if abs(multiplier - round(multiplier)) > 1e-9:
            raise UserError(f"{prefix}: attention current multiplier {multiplier} is not an integer; re-quantize")
        product = self.add(SpikeProductNode(_join(prefix, "product"), (q, k, v), self.shapes[q], heads=module.heads,
                                            multiplier=round(multiplier)))
        params = neuron.core.params
        attn = self.lif(_join(prefix, "attn_lif"), (product,), du=params.du, dv=params.dv, vth=params.vth)
        return self.unit(module, prefix, "proj", attn)

    def qk_token(self, module: QKTokenAttention, prefix: str, source: str) -> str:
        """Q-K attention as LIF + synapses, linear in tokens x channels: token attention (QKTA) sums q over each
        head's channels per token (a 1 x 1 conv), channel attention (QKCA) sums q over all tokens per channel (a
        depthwise conv whose kernel is the token map) and broadcasts the channel's mask back to every token (a
        depthwise conv of the same kernel from the 1 x 1 map, padded by the map less one: every output position's
        window holds the one input); the mask then ANDs k."""
        q, k = (self.unit(module, prefix, key, source) for key in ("q", "k"))
        channels, heads = self.shapes[q][0], module.heads
        h, w = self.shapes[q][1:]
        head_of = np.arange(channels) // (channels // heads)
        neuron = self._attention_lif(module.attn_lif, _join(prefix, "attn_lif"))
        multiplier = neuron.current_scale
        if abs(multiplier - round(multiplier)) > 1e-9:
            raise UserError(f"{prefix}: attention current multiplier {multiplier} is not an integer; re-quantize")
        weight, exp = _multiplier_as_weight(round(multiplier), prefix)
        params = neuron.core.params
        if isinstance(module, QKChannelAttention):
            tokens = np.ones((channels, 1, h, w), dtype=np.int64)
            summed = self.conv(_join(prefix, "attn_sum"), q, tokens * weight, graded=False, weight_exp=exp,
                               groups=channels)
            mask = self.lif(_join(prefix, "attn_lif"), (summed,), du=params.du, dv=params.dv, vth=params.vth)
            mask_c = self.conv(_join(prefix, "mask_expand"), mask, tokens, graded=False, padding=(h - 1, w - 1),
                               groups=channels)
        else:
            head_sum = (head_of[None, :] == np.arange(heads)[:, None]).astype(np.int64)[:, :, None, None] * weight
            summed = self.conv(_join(prefix, "attn_sum"), q, head_sum, graded=False, weight_exp=exp)
            mask = self.lif(_join(prefix, "attn_lif"), (summed,), du=params.du, dv=params.dv, vth=params.vth)
            expand = (head_of[:, None] == np.arange(heads)[None, :]).astype(np.int64)[:, :, None, None]
            mask_c = self.conv(_join(prefix, "mask_expand"), mask, expand, graded=False)
        k_relay = self.conv(_join(prefix, "k_relay"), k, np.eye(channels, dtype=np.int64)[:, :, None, None],
                            graded=False)
        masked = self.lif(_join(prefix, "mask_and"), (mask_c, k_relay), du=L.DECAY_UNITY - 1, dv=NO_MEMORY_DV, vth=1)
        return self.unit(module, prefix, "proj", masked)

    def spikformer(self, model: Spikformer, source: str) -> str:
        x = self.module(model.patch_embed, "patch_embed", source)
        for i, blk in enumerate(model.block):
            x = self.module(blk, f"block.{i}", x)
        return x

    def qkformer(self, model: QKFormer, source: str) -> str:
        x = source
        for embed_name, stage_name in model.stage_names:
            x = self.module(getattr(model, embed_name), embed_name, x)
            for i, blk in enumerate(getattr(model, stage_name)):
                x = self.module(blk, f"{stage_name}.{i}", x)
        return x


_DISPATCH = [
    (SPS, Lowering.sps),
    (ShortcutEmbed, Lowering.shortcut_embed),
    (Block, Lowering.block),
    (SpikingMLP, Lowering.mlp),
    (SpikingSelfAttention, Lowering.ssa),
    (QKTokenAttention, Lowering.qk_token),
]


def _input_layer(model: nn.Module) -> QuantizedInput:
    layers = [m for m in model.modules() if isinstance(m, QuantizedInput)]
    if len(layers) != 1:
        raise UserError(f"expected exactly one quantized input layer, found {len(layers)}: quantize the model first")
    return layers[0]


def lower(model: SpikingNetwork) -> Graph:
    """The deployed graph of an integer-mode model (see :func:`snn_deploy.quant.quantize`)."""
    if neuron_mode(model) != "integer":
        raise UserError("the model is not quantized (neuron mode must be 'integer'): run snn-deploy quantize, or "
                        "export with --calibrate")
    config = model.config
    lowering = Lowering(model)
    quant_in = _input_layer(model)
    source = lowering.add(InputNode("input", (), (config.in_channels, config.img_size, config.img_size),
                                    scale=quant_in.scale, payload_bits=quant_in.payload_bits, signed=quant_in.signed))
    if isinstance(model, Spikformer):
        features = lowering.spikformer(model, source)
    elif isinstance(model, QKFormer):
        features = lowering.qkformer(model, source)
    else:
        raise UserError(f"no Loihi lowering for {type(model).__name__}")
    head = model.head
    lowering.add(ReadoutNode("head", (features,), lowering.shapes[features],
                             weight=head.weight.detach().to(torch.float64).numpy(),
                             bias=head.bias.detach().to(torch.float64).numpy()))
    return Graph(lowering.nodes, T=config.T)
