"""NeuroBench's metrics of a deployed graph, under NeuroBench's names, so a result can go into a NeuroBench table.

Definitions (NeuroBench documentation, docs/metrics/ of github.com/NeuroBench/neurobench; its implementations in
``neurobench.metrics``), applied to the deployed integer graph (what runs on the chip) rather than to a torch
module:

* ``footprint``: bytes to represent the model, zero weights included: here every parameter at its deployed
  precision (weights at the profile's weight bits, LIF biases as 16-bit mantissa + exponent, the host readout in
  float32);
* ``parameter_count``: learned conv kernels, LIF biases, readout weights and biases (the fixed routing kernels
  the lowering adds are not parameters of the model);
* ``connection_sparsity``: zero weights over all weights of the learned connection layers (convs and readout;
  fixed routing kernels the lowering adds are not a model's connections and are left out);
* ``activation_sparsity``: zero outputs over all outputs of every spiking neuron, every step of every sample;
* ``synaptic_operations``: per sample, ``Dense`` (every connection every step, zero inputs and weights included),
  ``Effective_ACs`` (binary inputs: spikes) and ``Effective_MACs`` (graded inputs: the input payloads and integer
  residual sums), counting only non-zero inputs and non-zero weights. The simulator counts each non-zero input
  with its full fan-out; that count is scaled by the kernel's non-zero fraction (an estimate assuming activity
  uniform over a kernel's taps: exact for the lowering's routing kernels; on qkformer-tiny within 2.3 % per conv and
  0.1 % in total of NeuroBench's binarize-and-forward count, tests/test_neurobench.py). Spike products (attention's q k^T v) are matrix
  products, not connection layers: NeuroBench's hooks do not count them; they are reported separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snn_deploy.graph import Activity, ConvNode, Graph, LIFNode
from snn_deploy.sims.hardware.cost import is_routing
from snn_deploy.sims.backends.simulator import ConvKernel

BIAS_BYTES = 2
"""A Loihi bias: 13-bit mantissa and 3-bit exponent."""
READOUT_BYTES = 4
"""The readout runs on the host in float32."""
NOTES = [
    "computed on the deployed integer graph (what runs on the chip), not on the torch module",
    "footprint and parameter count: learned weights at the deployed weight bits, LIF biases 2 bytes, host readout "
    "float32; fixed routing kernels of the lowering left out",
    "connection sparsity: learned convs and the readout; fixed routing kernels of the lowering left out",
    "synaptic operations per sample: convs without pooling (the readout runs once per sample on the host); "
    "effective counts "
    "scale the simulator's event x fan-out counts by each kernel's non-zero fraction",
    "spike products (attention) are matrix products: not counted by NeuroBench, reported as attention_accumulates",
]


@dataclass(frozen=True)
class ConvOps:
    """Synaptic operations of one conv per sample, as NeuroBench counts them."""

    dense: float
    effective: float
    binary: bool
    """Binary (spike) inputs: the operations are accumulates; graded inputs: multiply-accumulates."""


def conv_operations(graph: Graph, activity: Activity) -> dict[str, ConvOps]:
    """Per conv (pooling left out, as NeuroBench does): ``Dense`` = every (input, synapse) connection every step
    (zero padding connects nothing); effective =
    the simulator's non-zero input events x fan-out, scaled by the kernel's non-zero fraction."""
    n, T = max(activity.samples, 1), activity.T
    out = {}
    for conv in graph.of_kind(ConvNode):
        if conv.role == "spike_pool":
            continue
        source = conv.inputs[0]
        density = np.count_nonzero(conv.weight) / conv.weight.size if conv.weight.size else 0.0
        events = float(activity.conv_events[(conv.name, source)].sum()) / n
        in_shape = graph[source].shape
        connections = float(ConvKernel(conv, in_shape).fanout.sum()) * in_shape[0]  # padding makes no connection
        out[conv.name] = ConvOps(connections * T, events * density, isinstance(graph[source], LIFNode))
    return out


def metrics(graph: Graph, activity: Activity, *, weight_bits: int, accuracy: float | None) -> dict[str, Any]:
    """The NeuroBench metrics of ``graph`` running ``activity``, in NeuroBench's result layout."""
    lifs = graph.of_kind(LIFNode)
    readout = graph.classifier  # None for a network without a classifier (an imported regression network)
    learned = [c for c in graph.of_kind(ConvNode) if c.role != "spike_pool" and not is_routing(c)]
    weights = sum(c.weight.size for c in learned)
    biases = sum(np.asarray(n.bias_mant).size for n in lifs)
    readout_params = readout.weight.size + readout.bias.size if readout is not None else 0
    readout_weights = readout.weight if readout is not None else np.zeros(0)
    zeros = sum(int(c.weight.size - np.count_nonzero(c.weight)) for c in learned)
    zeros += int(readout_weights.size - np.count_nonzero(readout_weights))
    connections = weights + readout_weights.size
    outputs = sum(n.neurons for n in lifs) * activity.T * max(activity.samples, 1)
    spikes = sum(float(activity.spikes[n.name].sum()) for n in lifs)
    ops = conv_operations(graph, activity).values()
    attention = sum(float(c["accumulates"].sum()) for c in activity.products.values()) / max(activity.samples, 1)
    result = {
        "footprint": int(weights * weight_bits // 8 + biases * BIAS_BYTES + readout_params * READOUT_BYTES),
        "parameter_count": int(weights + biases + readout_params),
        "connection_sparsity": zeros / connections if connections else 0.0,
        "activation_sparsity": 1.0 - spikes / outputs if outputs else 0.0,
        "synaptic_operations": {"Effective_MACs": sum(o.effective for o in ops if not o.binary),
                                "Effective_ACs": sum(o.effective for o in ops if o.binary),
                                "Dense": sum(o.dense for o in ops)},
    }
    if accuracy is not None:
        result["classification_accuracy"] = accuracy
    return {**result, "attention_accumulates": attention}
