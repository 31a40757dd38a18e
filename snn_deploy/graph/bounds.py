"""Worst-case magnitudes of every value in a deployed graph: what proves float arithmetic exact and what the
hardware's input registers must hold."""

from __future__ import annotations

import numpy as np

from snn_deploy.graph.nodes import (
    ConvNode, Graph, InputNode, LIFNode, ReadoutNode, SigmaDeltaNode, SpikeProductNode, SumNode,
)


def conv_row_l1(weight: np.ndarray) -> int:
    """Largest L1 norm of one output channel's kernel: the most one input unit can move one output."""
    return int(np.abs(weight).reshape(weight.shape[0], -1).sum(1).max()) if weight.size else 0


def value_bounds(graph: Graph) -> dict[str, int]:
    """Largest |value| every node can output at one step, for any input within the payload range.

    Inputs: the payload range (0 for a bias-driven input: it sends nothing); LIF: 1 (spikes); sigma-delta: its
    signed payload width; conv: ``max|x| * L1(weight row)`` (``max|x|`` = 1 for binary
    inputs) shifted by the weight exponent; sum: sum of its inputs; spike product:
    ``max|q| max|k| max|v| * tokens * head_dim * |multiplier|``; readout: its input. Exporters use these to prove
    float arithmetic exact and to report overflow risks.
    """
    bound: dict[str, int] = {}
    for node in graph.nodes:
        inputs = [bound[i] for i in node.inputs]
        if isinstance(node, InputNode):
            bound[node.name] = node.max_abs if node.drive == "current" else 0
        elif isinstance(node, ConvNode):
            bound[node.name] = conv_sum_bound(node, bound) << node.weight_exp
        elif isinstance(node, SigmaDeltaNode):  # a graded payload of message_bits (signed)
            bound[node.name] = (1 << (node.message_bits - 1)) - 1
        elif isinstance(node, LIFNode):
            bound[node.name] = 1
        elif isinstance(node, SumNode):
            bound[node.name] = sum(inputs)
        elif isinstance(node, SpikeProductNode):
            bound[node.name] = product_sum_bound(node, inputs) * abs(node.multiplier)
        elif isinstance(node, ReadoutNode):
            bound[node.name] = inputs[0]
        else:
            raise TypeError(f"no bound rule for node kind {node.kind!r}")
    return bound


def conv_sum_bound(node: ConvNode, bound: dict[str, int]) -> int:
    """Largest |partial sum| of the convolution before the weight exponent."""
    max_in = bound[node.inputs[0]] if node.graded else 1
    return max_in * conv_row_l1(node.weight)


def product_sum_bound(node: SpikeProductNode, inputs: list[int]) -> int:
    """Largest |partial sum| of ``k^T v`` (tokens terms) and ``q (k^T v)`` (head_dim terms of those)."""
    c, h, w = node.shape
    mq, mk, mv = inputs
    return mq * mk * mv * h * w * (c // node.heads)


def current_bounds(graph: Graph) -> dict[str, int]:
    """Largest |input current| each LIF can receive in one step, from weights and input ranges (worst case),
    its recurrent synapses included."""
    values = value_bounds(graph)
    return {n.name: sum(values[i] for i in n.inputs) + sum(values[c.name] for c in graph.recurrent_synapses(n.name))
            for n in graph.nodes if isinstance(n, LIFNode)}
