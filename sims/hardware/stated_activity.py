"""Activity at a stated firing rate: what the cost model needs, without simulating the network.

Why: a deployment estimate for a large network (Spikformer-8-768 on 224 x 224 images) should not wait for hours of
simulation, and before training there is no meaningful activity to simulate anyway. Here every LIF neuron fires
with probability ``rate`` in every step, independently of every other neuron and step; the analog input sends
every pixel as a graded payload every step (a held frame: the worst case, every payload non-zero); a bias-driven
input (lava-dl netx) sends nothing. Every count is then an expectation, per sample and step:

* LIF spikes: ``rate x neurons``; a relayed residual sum of k spike sources: ``(1 - (1 - rate)^k) x neurons``
  non-zero values;
* synaptic ops of a conv from a source: the source's event rate per neuron x the conv's synapses (border-aware:
  output positions x kernel taps inside the input x output channels x input channels per group);
* spike products ``q (k^T v)`` per head (d = head dim, N = tokens, p = rate^2): k-v coincidences ``N d^2 p``;
  non-zero ``k^T v`` entries ``d^2 (1 - (1 - p)^N)``; gated q events ``N d rate x d P(kv != 0)``; non-zero outputs
  ``N d (1 - (1 - rate P(kv != 0))^d)``; non-zero column partial sums (the ``kvrow`` stage, H rows x W columns)
  ``d^2 W (1 - (1 - p)^H)``; accumulates ``N d^2 p + N d rate d`` (as
  :func:`~snn_deploy.sims.backends.simulator.product_counts` counts them), all times heads.

Real networks are neither independent nor uniform: stated-rate figures are estimates at that rate, never
measurements; reports say which rate was used.
"""

from __future__ import annotations

import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.graph import PRODUCT_COUNTS, Activity, ConvNode, Graph, InputNode, LIFNode, SpikeProductNode, SumNode


def conv_synapses(node: ConvNode, source_shape: tuple[int, int, int]) -> int:
    """Synapses of a conv, border-aware: each output position's kernel taps inside the input, per channel pair."""
    c_out, c_in_group = node.weight.shape[:2]
    taps = 1
    for axis in (0, 1):
        k, s, p = node.weight.shape[2 + axis], node.stride[axis], node.padding[axis]
        first = np.arange(node.shape[1 + axis]) * s - p
        taps *= int(np.clip(np.minimum(first + k, source_shape[1 + axis]) - np.maximum(first, 0), 0, None).sum())
    return taps * c_out * c_in_group


def product_expectation(node: SpikeProductNode, rate: float) -> dict[str, float]:
    """Expected :data:`~snn_deploy.graph.PRODUCT_COUNTS` of one product and step (see the module docstring)."""
    c, h, w = node.shape
    d, n, heads = c // node.heads, h * w, node.heads
    pair = rate * rate
    kv = 1 - (1 - pair) ** n
    return {"pairs": heads * n * d * d * pair, "kv_nonzero": heads * d * d * kv,
            "gates": heads * n * d * rate * d * kv, "out_nonzero": heads * n * d * (1 - (1 - rate * kv) ** d),
            "accumulates": heads * (n * d * d * pair + n * d * rate * d),
            "kvrow_nonzero": heads * d * d * w * (1 - (1 - pair) ** h)}


def stated_activity(graph: Graph, rate: float, *, samples: int = 1) -> Activity:
    """Expected counts of ``samples`` inferences of ``graph`` with every neuron firing at ``rate`` per step."""
    if not 0 <= rate <= 1:
        raise UserError(f"the firing rate must lie in [0, 1] (spikes per neuron and step), got {rate}")
    T = graph.T
    act = Activity(T, "stated", samples=samples)
    per_step = np.full(T, float(samples))
    source_rate: dict[str, float] = {}
    for node in graph.nodes:
        if isinstance(node, InputNode):
            source_rate[node.name] = 0.0 if getattr(node, "drive", "current") == "bias" else 1.0
            act.input_events = per_step * source_rate[node.name] * node_neurons(node)
        elif isinstance(node, LIFNode):
            source_rate[node.name] = rate
            act.spikes[node.name] = per_step * rate * node.neurons
        elif isinstance(node, SumNode):
            source_rate[node.name] = 1 - (1 - rate) ** len(graph.summands(node.name))
            act.sum_events[node.name] = per_step * source_rate[node.name] * node_neurons(node)
        elif isinstance(node, ConvNode):
            synapses = conv_synapses(node, graph[node.inputs[0]].shape)
            for s in {node.inputs[0], *graph.summands(node.inputs[0])}:
                act.conv_events[(node.name, s)] = per_step * source_rate[s] * synapses
        elif isinstance(node, SpikeProductNode):
            counts = product_expectation(node, rate)
            act.products[node.name] = {c: per_step * counts[c] for c in PRODUCT_COUNTS}
    return act


def node_neurons(node) -> int:
    return int(np.prod(node.shape))
