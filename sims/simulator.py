"""Tick-by-tick integer simulator of a deployed graph: batched, vectorised, exact.

Every node is evaluated once per step in topological order with the arithmetic of
:mod:`snn_deploy.fixedpoint` (LIF: :func:`~snn_deploy.fixedpoint.lif_step` on float64 tensors, which hold every
Loihi integer exactly; synapses: convolution of integers in float32 where the sums provably stay below 2^24,
else float64, then the weight exponent). The run is functional (zero latency per
node), which is what the integer PyTorch model computes; a timed build (Lava) shows node ``n``'s step ``t`` at
step ``t + depth(n)`` (:meth:`Graph.depths`), and the simulator's latency model reports that depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.exporters.graph import (
    ConvNode, Graph, InputNode, LIFNode, Node, ReadoutNode, SpikeProductNode, SumNode, conv_row_l1,
)
from snn_deploy.fixedpoint import LIFParams, LIFState, lif_step
from snn_deploy.fixedpoint import limits as L


@dataclass
class SimResult:
    """Outputs of one batch: recorded spikes [T, B, *shape] (uint8) per LIF node, logits, and activity counts."""

    spikes: dict[str, torch.Tensor]
    logits: torch.Tensor
    spike_counts: dict[str, np.ndarray]
    """Per LIF node: spikes emitted at each step, summed over the batch ([T] int64)."""
    synaptic_ops: dict[str, np.ndarray]
    """Per synapse node (conv, spike product): synaptic operations at each step, summed over the batch ([T])."""
    overflow: dict[str, int] = field(default_factory=dict)
    """Per conv node: currents outside Lava's 24-bit Conv accumulator (where Lava would wrap)."""

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(1)


def input_sequence(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    """Float inputs [B, C, H, W] (repeated T times) or [T, B, C, H, W] -> integer payloads [T, B, C, H, W]."""
    node = graph.input
    if x.dim() == 4:
        x = x.unsqueeze(0).expand(graph.T, *x.shape)
    if x.dim() != 5 or tuple(x.shape[2:]) != node.shape:
        raise ValueError(f"input shape {tuple(x.shape)} does not fit the graph's input {node.shape} "
                         "(expected [B, C, H, W] or [T, B, C, H, W])")
    return torch.from_numpy(node.encode(x.detach().cpu().numpy()))


class ConvKernel:
    """A conv node prepared once: weights as float tensors and the border-aware fan-out of every input position.

    Sums are exact in float32 while ``max|x| * max_row_l1 < 2^24`` (every partial sum is an integer below that);
    larger inputs switch to float64 (exact below 2^53).
    """

    FLOAT32_EXACT = 1 << 24

    def __init__(self, node: ConvNode, in_shape: tuple[int, int, int]) -> None:
        self.node = node
        w = torch.from_numpy(node.weight)
        self.w32, self.w64 = w.to(torch.float32), w.to(torch.float64)
        self.row_l1 = conv_row_l1(node.weight)
        out_hw = node.shape[1:]
        ones_out = torch.ones(1, 1, *out_hw, dtype=torch.float64)
        ones_k = torch.ones(1, 1, *w.shape[2:], dtype=torch.float64)
        fanout = F.conv_transpose2d(ones_out, ones_k, stride=node.stride, padding=node.padding,
                                    output_padding=_output_padding(in_shape[1:], out_hw, w.shape[2:], node.stride,
                                                                   node.padding))
        self.fanout = fanout[0, 0].to(torch.int64) * (w.shape[0] // node.groups)

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        node = self.node
        values = x if node.graded else (x != 0)
        max_in = int(values.abs().max()) if node.graded and values.numel() else 1
        exact32 = max_in * self.row_l1 < self.FLOAT32_EXACT
        dtype, weight = (torch.float32, self.w32) if exact32 else (torch.float64, self.w64)
        out = F.conv2d(values.to(dtype), weight, stride=node.stride, padding=node.padding, groups=node.groups)
        out = out.to(torch.int64)  # exact integers: no rounding needed
        return out << node.weight_exp if node.weight_exp >= 0 else out >> -node.weight_exp

    def synaptic_ops(self, x: torch.Tensor) -> int:
        """Every (non-zero input event, synapse) pair: events per position times that position's fan-out."""
        return int(((x != 0).sum(1) * self.fanout).sum())


def _output_padding(in_hw, out_hw, kernel, stride, padding) -> tuple[int, int]:
    return tuple(in_hw[i] - ((out_hw[i] - 1) * stride[i] - 2 * padding[i] + kernel[i]) for i in range(2))


def _spike_product(node: SpikeProductNode, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, int]:
    b, c, h, w = q.shape
    d = c // node.heads

    def heads(x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, heads, N, d]
        return x.reshape(b, node.heads, d, h * w).transpose(-1, -2).to(torch.float64)

    qh, kh, vh = heads(q), heads(k), heads(v)
    kv = kh.transpose(-1, -2) @ vh
    out = torch.round(qh @ kv).to(torch.int64) * node.multiplier
    # accumulates: k^T v adds one per token and (k event, v event) pair; q (k^T v) adds a row of d per q event
    sops = int((kh.sum(-1) * vh.sum(-1)).sum().item() + qh.sum().item() * d)
    return out.transpose(-1, -2).reshape(b, c, h, w), sops


def simulate(graph: Graph, x: torch.Tensor, *, record: set[str] | None = None) -> SimResult:
    """Run a batch through ``graph``. ``record``: LIF node names whose spikes to keep (default: all)."""
    payload = input_sequence(graph, x)
    steps, batch = payload.shape[:2]
    lif_nodes = [n for n in graph.nodes if isinstance(n, LIFNode)]
    record = {n.name for n in lif_nodes} if record is None else record
    # float64 holds every Loihi integer exactly (all below 2^53) and its multiply-and-truncate is faster than int64
    states = {n.name: LIFState.zeros((batch, *n.shape), dtype=torch.float64) for n in lif_nodes}
    params = {n.name: LIFParams(n.du, n.dv, n.vth, torch.from_numpy(n.bias_mant).reshape(-1, 1, 1),
                                torch.from_numpy(n.bias_exp).reshape(-1, 1, 1)) for n in lif_nodes}
    biases = {name: p.bias() for name, p in params.items()}
    spikes = {name: torch.zeros((steps, batch, *graph[name].shape), dtype=torch.uint8) for name in record}
    counts = {n.name: np.zeros(steps, dtype=np.int64) for n in lif_nodes}
    sops = {n.name: np.zeros(steps, dtype=np.int64) for n in graph.nodes if isinstance(n, (ConvNode, SpikeProductNode))}
    kernels = {n.name: ConvKernel(n, graph[n.inputs[0]].shape) for n in graph.nodes if isinstance(n, ConvNode)}
    overflow: dict[str, int] = {}
    readout = graph.readout
    features = []
    for t in range(steps):
        values: dict[str, torch.Tensor] = {}
        for node in graph.nodes:
            values[node.name] = _step(node, t, values, payload, states, params, biases, counts, sops, overflow, kernels)
        for name in record:
            spikes[name][t] = values[name].to(torch.uint8)
        features.append(values[readout.inputs[0]])
    return SimResult(spikes, readout_logits(readout, torch.stack(features)), counts, sops, overflow)


def readout_logits(readout: ReadoutNode, features: torch.Tensor) -> torch.Tensor:
    """The host-side classifier: mean of the readout input [T, B, C, H, W] over tokens and steps, then affine."""
    pooled = features.to(torch.float64).flatten(3).mean(3).mean(0)
    return pooled @ torch.from_numpy(readout.weight).T + torch.from_numpy(readout.bias)


def readout_input(graph: Graph, spikes: dict[str, torch.Tensor]) -> torch.Tensor:
    """The readout's input [T, B, C, H, W] rebuilt from recorded LIF spikes (sums of spike tensors), for
    backends that return spikes only."""
    def value(name: str) -> torch.Tensor:
        node = graph[name]
        if isinstance(node, LIFNode):
            return spikes[name].to(torch.int64)
        if isinstance(node, SumNode):
            return sum(value(i) for i in node.inputs)
        raise ValueError(f"readout input depends on {node.kind} node {name!r}, which is not recorded as spikes")
    return value(graph.readout.inputs[0])


def _step(node: Node, t: int, values: dict[str, torch.Tensor], payload: torch.Tensor, states: dict[str, LIFState],
          params: dict[str, LIFParams], biases: dict[str, torch.Tensor], counts: dict[str, np.ndarray],
          sops: dict[str, np.ndarray], overflow: dict[str, int], kernels: dict[str, ConvKernel]) -> torch.Tensor:
    if isinstance(node, InputNode):
        return payload[t]
    inputs = [values[i] for i in node.inputs]
    if isinstance(node, ConvNode):
        kernel = kernels[node.name]
        currents = kernel.currents(inputs[0])
        sops[node.name][t] = kernel.synaptic_ops(inputs[0])
        out_of_range = int((currents.abs() >= L.UV_HALF).sum())
        if out_of_range:
            overflow[node.name] = overflow.get(node.name, 0) + out_of_range
        return currents
    if isinstance(node, LIFNode):
        s, states[node.name] = lif_step(states[node.name], sum(inputs), params[node.name], biases[node.name])
        counts[node.name][t] = int(s.sum())
        return s
    if isinstance(node, SumNode):
        return sum(inputs)
    if isinstance(node, SpikeProductNode):
        out, n_ops = _spike_product(node, *inputs)
        sops[node.name][t] = n_ops
        return out
    if isinstance(node, ReadoutNode):
        return inputs[0]
    raise TypeError(f"simulator has no rule for node kind {node.kind!r}")
