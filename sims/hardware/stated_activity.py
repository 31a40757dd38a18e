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
  :func:`~snn_deploy.sims.backends.simulator.product_counts` counts them), all times heads;
* the ``packed`` lowering's populations (:func:`packed_expectation`, per channel of each population; events and
  synaptic ops then as for a run, ``hardware.packed_counts``): a word of F fields (v's, kv's, the gate's) is
  non-zero unless all its fields are zero, ``1 - (1 - rate (1 - (1 - rate)^F))^N`` for a kv word (exact under
  independence); a group sum ``1 - (1 - rate P(gate word != 0))^g`` per token; an unpacked field (the sum of g
  products q kv, its distribution the g-fold convolution of ``rate x Binomial(N, rate^2)``) non-zero with one
  minus that distribution at 0; a shift level floor(X / 2^s), s = b L + r, non-zero unless every field above L is
  zero and field L < 2^r (fields taken independent: across channels they share v's spikes, so these are
  estimates, like ``out_nonzero``).

Real networks are neither independent nor uniform: stated-rate figures are estimates at that rate, never
measurements; reports say which rate was used.
"""

from __future__ import annotations

import math

import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.graph import PRODUCT_COUNTS, Activity, ConvNode, Graph, InputNode, LIFNode, SpikeProductNode, SumNode
from snn_deploy.graph.hardware import packed_counts, product_packing


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


def _binomial(n: int, p: float) -> np.ndarray:
    """The Binomial(n, p) distribution over 0..n."""
    if p <= 0 or p >= 1:
        out = np.zeros(n + 1)
        out[n if p >= 1 else 0] = 1.0
        return out
    k = np.arange(n + 1)
    log = np.vectorize(math.lgamma)
    return np.exp(log(n + 1.0) - log(k + 1.0) - log(n - k + 1.0) + k * math.log(p) + (n - k) * math.log1p(-p))


def _word_fields(d: int, fields: int) -> np.ndarray:
    """Fields per word ([W]): F, the last word what is left of d."""
    return np.minimum(fields, d - np.arange(-(-d // fields)) * fields)


def _level_nonzero(word_fields: np.ndarray, shift: int, bits: int, zero: float, below: np.ndarray) -> np.ndarray:
    """P(floor(X / 2^shift) != 0) per word: some field above L = shift // bits is non-zero, or field L reaches
    2^(shift mod bits); ``zero``: P(a field is 0); ``below``: a field's distribution, summed up to each value."""
    level, r = divmod(shift, bits)
    above = np.maximum(word_fields - level - 1, 0)
    return np.where(level < word_fields, 1 - zero ** above * below[min((1 << r) - 1, below.size - 1)], 0.0)


def packed_expectation(node: SpikeProductNode, rate: float) -> dict[str, np.ndarray]:
    """Expected messages per step and channel of q, k, v and every ``packed`` population of ``node`` (keyed as
    :func:`~snn_deploy.sims.backends.packed_counts.packed_channels` counts them; see the module docstring)."""
    packing = product_packing(node)
    kv = packing.kv
    c, h, w = node.shape
    d, n, p = c // node.heads, h * w, rate
    head: dict[str, np.ndarray] = {x: np.full(d, n * p) for x in "qkv"}
    kv_fields = _word_fields(d, kv.fields)[:, None]  # [W1, 1]
    any_v = 1 - (1 - p) ** kv_fields
    head["and"] = np.broadcast_to(n * p * any_v, (len(kv_fields), d))
    head["kvrow"] = np.broadcast_to(w * (1 - (1 - p * any_v) ** h), (len(kv_fields), d))
    head["kv"] = np.broadcast_to(1 - (1 - p * any_v) ** n, (len(kv_fields), d))
    count = np.cumsum(_binomial(n, p * p))  # a kv entry's distribution, summed
    if packing.repacked:
        for level, stage, shift in kv.relays():
            head[f"kvshift{level}.{stage}"] = np.broadcast_to(
                _level_nonzero(kv_fields, shift, kv.bits, float(count[0]), count), (len(kv_fields), d))
        head["kvfield"] = np.full((d, d), 1 - count[0])
    fields = _word_fields(d, packing.fields)[:, None]  # [W, 1]
    word = 1 - (1 - p * (1 - (1 - p) ** fields)) ** n  # P(kv word (c, w) != 0) at the gate's widths
    groups, g = packing.groups(d), packing.group
    head["gate"] = np.broadcast_to(n * p * word, (len(fields), d))
    head["group"] = np.broadcast_to(n * (1 - (1 - p * word) ** g), (len(fields), groups))
    single = p * _binomial(n, p * p)
    single[0] += 1 - p
    field = np.ones(1)
    for _ in range(g):
        field = np.convolve(field, single)
    below = np.cumsum(field)  # an unpacked field's distribution, summed
    head["unpack"] = np.full((d, groups), n * (1 - field[0]))
    for level, stage, shift in packing.relays():
        shifted = np.broadcast_to(n * _level_nonzero(fields, shift, packing.bits, float(field[0]), below),
                                  (len(fields), groups))
        head[f"shift{level}.{stage}"] = (np.stack([head["group"], shifted], 1) if packing.carries(d)
                                         else shifted)
    return {key: np.tile(np.ravel(x), node.heads) for key, x in head.items()}


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
            if product_packing(node) is not None:
                act.products[node.name].update(packed_counts(node, {
                    key: per_step[:, None] * value[None, :] for key, value in packed_expectation(node, rate).items()}))
    return act


def node_neurons(node) -> int:
    return int(np.prod(node.shape))
