"""Sequential deployed graphs as lava-dl netx HDF5 (``lava.lib.dl.netx.hdf5.Network``), bit-exact in Lava.

What netx loads (lava-dl 0.6, ``netx/hdf5.py``) decides what can be carried:

* a chain of layers, each ``synapse -> CUBA neuron``: no residual sums, no spike products, no node with two
  inputs or two consumers. :func:`netx_problems` lists every node that breaks this (or a rule below), and
  :func:`to_netx` refuses with all of them in one line.
* ``layer/0`` is an ``input`` layer holding only ``shape``: netx then feeds the network's input port straight
  into the first synapse. (An input layer *with* a neuron is driven by its bias alone; its port is not
  connected, so it cannot take payloads.) The first synapse reads graded payloads only when the loader passes
  ``input_message_bits > 0`` to ``Network``; it is not stored in the file, so :func:`to_netx` returns it and
  :func:`load_netx` applies it. With 0 every non-zero payload counts as one spike, which is what a binary
  first ConvNode computes.
* ``conv`` layers: kernel in torch layout (netx flips and transposes it to Lava's), stride / padding /
  dilation in (H, W) order. Lava's Conv ignores weight exponents, so a ConvNode's non-negative ``weight_exp`` is
  folded into its weights (they must stay within 8 bits); its output wraps at 24 bits, so the worst-case
  current must stay inside the range where Lava's LIF matches ours (|a_in| <= 2^18 - 1).
* ``dense`` layers (a ConvNode whose kernel covers its whole input map; a ``flatten`` layer precedes it after a
  conv layer): netx rescales the weights itself (``optimize_weight_bits``) and Lava's Dense re-quantizes them;
  layers whose weights do not survive that unchanged are refused. Nothing spatial can follow a dense layer.
* CUBA neurons: ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, and ``bias_exp`` fixed at 6, so the
  effective bias ``mant << exp`` must be a multiple of 64 whose quotient fits the 13-bit mantissa.
* No readout: netx ends at the last layer's spikes; the graph's ReadoutNode stays on the host.

Pipeline latency: each layer's synapse delays by one step, so node n's functional step t appears at Lava step
``t + depths[n]`` (:meth:`~snn_deploy.graph.Graph.depths`).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode, current_bounds, refuse_features
from snn_deploy.io import atomic_path

NETX_BIAS_EXP = 6
"""netx builds every CUBA neuron with ``bias_exp = 6``; the file's ``bias`` is the mantissa."""
NODE_ATTR = "snn_deploy_node"
"""HDF5 attribute naming the graph's LIF node a layer carries (netx ignores attributes)."""
INPUT_BITS_ATTR = "input_message_bits"
STEPS_ATTR = "T"


def _is_dense(node: ConvNode, in_shape: tuple[int, int, int]) -> bool:
    """A kernel covering its whole unpadded input map is a fully connected layer (output 1 x 1)."""
    return node.groups == 1 and node.padding == (0, 0) and tuple(node.weight.shape[2:]) == in_shape[1:]


def _netx_bias(node: LIFNode) -> np.ndarray:
    return node.params().bias().reshape(-1).numpy()


def _conv_problems(node: ConvNode, graph: Graph, after_dense: bool) -> list[str]:
    source = graph[node.inputs[0]]
    problems = []
    if not isinstance(source, (InputNode, LIFNode)):
        problems.append(f"reads {source.kind} {source.name}")
    weight = node.folded_weight()
    lo, hi = -(1 << L.WEIGHT_BITS), (1 << L.WEIGHT_BITS) - 1
    if weight.size and (weight.min() < lo or weight.max() > hi):
        problems.append(f"weights << weight_exp outside 8 bits [{lo}, {hi}]")
    dense = _is_dense(node, source.shape)
    if after_dense and not dense:
        problems.append("spatial conv after a dense layer (netx cannot unflatten)")
    if dense and not problems:
        problem = _dense_weight_problem(weight.reshape(weight.shape[0], -1))
        if problem:
            problems.append(problem)
    return problems


def _dense_weight_problem(weight: np.ndarray) -> str | None:
    """Whether netx's weight rescaling and Lava Dense's re-quantization leave the currents unchanged: netx stores
    ``w << s`` with exponent ``-s``, then Lava's Dense clips that to 8 bits and truncates it to netx's bit width
    (both steps run here with lava's own functions)."""
    if not weight.any():
        return "all-zero dense weights (netx's weight scaling divides by the largest weight)"
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its clipping warnings
        scaled, bits, exp, _ = optimize_weight_bits(weight)
    mode = determine_sign_mode(scaled)
    try:
        kept = truncate_weights(clip_weights(scaled, mode, num_bits=L.WEIGHT_BITS), mode, bits)
    except ValueError:  # a negative truncation width
        kept = None
    if exp > 0 or kept is None or not np.array_equal(kept, scaled) or not np.array_equal(scaled, weight << -exp):
        return "dense weights change under netx's 8-bit rescaling"
    return None


def _lif_problems(node: LIFNode, graph: Graph, current_bound: int) -> list[str]:
    problems = []
    if len(node.inputs) != 1:
        problems.append(f"sums {len(node.inputs)} inputs")
    elif not isinstance(graph[node.inputs[0]], ConvNode):
        problems.append(f"reads {graph[node.inputs[0]].kind} {node.inputs[0]}")
    bias = _netx_bias(node)
    mant = bias >> NETX_BIAS_EXP
    if np.any(bias % (1 << NETX_BIAS_EXP)) or mant.min() < L.BIAS_MANT_RANGE[0] or mant.max() > L.BIAS_MANT_RANGE[1]:
        problems.append("bias not a 13-bit mantissa << 6")
    if current_bound > L.A_IN_RANGE[1]:
        problems.append(f"worst-case current {current_bound} beyond +-2^18, where Lava's Conv and LIF stop matching")
    return problems


def netx_problems(graph: Graph) -> dict[str, list[str]]:
    """Every node netx cannot carry, with its reasons (empty when the graph exports)."""
    consumers = graph.consumers()
    bounds = current_bounds(graph)
    problems: dict[str, list[str]] = {}
    after_dense = False
    for node in graph.nodes:
        reasons = []
        if isinstance(node, ConvNode):
            reasons += _conv_problems(node, graph, after_dense)
            after_dense = after_dense or _is_dense(node, graph[node.inputs[0]].shape)
            if not consumers[node.name]:
                reasons.append("feeds no neuron")
        elif isinstance(node, LIFNode):
            reasons += _lif_problems(node, graph, bounds[node.name])
        elif isinstance(node, ReadoutNode):
            if not isinstance(graph[node.inputs[0]], LIFNode):
                reasons.append(f"reads {graph[node.inputs[0]].kind} {node.inputs[0]}")
        elif isinstance(node, InputNode):
            if node is not graph.input:
                reasons.append("second input")
        else:
            reasons.append({"sum": "residual sum", "spike_product": "spike product"}.get(node.kind, node.kind))
        if len(consumers[node.name]) > 1:
            reasons.append(f"feeds {len(consumers[node.name])} nodes")
        if reasons:
            problems[node.name] = reasons
    if not graph.of_kind(LIFNode):
        problems[graph.input.name] = ["no layers follow the input"]
    return problems


def _dataset_bytes(text: str) -> np.bytes_:
    """netx decodes ``type`` strings from fixed-length ASCII bytes."""
    return np.bytes_(text.encode("ascii"))


def _write_neuron(group: h5py.Group, node: LIFNode) -> None:
    neuron = group.create_group("neuron")
    neuron["type"] = _dataset_bytes("CUBA")
    neuron["iDecay"] = np.int64(node.du + 1)  # netx: du = iDecay - 1
    neuron["vDecay"] = np.int64(node.dv)
    neuron["vThMant"] = np.int64(node.vth)
    neuron["refDelay"] = np.int64(1)
    neuron["gradedSpike"] = np.bool_(False)
    group["bias"] = _netx_bias(node) >> NETX_BIAS_EXP
    group.attrs[NODE_ATTR] = node.name


def _write_layers(f: h5py.File, graph: Graph) -> None:
    layers = f.create_group("layer")
    index = 0

    def layer(kind: str) -> h5py.Group:
        nonlocal index
        group = layers.create_group(str(index))
        group["type"] = _dataset_bytes(kind)
        index += 1
        return group

    layer("input")["shape"] = np.asarray(graph.input.shape, dtype=np.int64)
    spatial = True
    neuron_of = {node.inputs[0]: node for node in graph.of_kind(LIFNode)}
    for node in graph.of_kind(ConvNode):
        in_shape = graph[node.inputs[0]].shape
        weight = node.folded_weight()
        if _is_dense(node, in_shape):
            if spatial and index > 1:
                layer("flatten")
            group = layer("dense")
            group["shape"] = np.asarray(node.shape[:1], dtype=np.int64)
            group["weight"] = weight.reshape(weight.shape[0], -1)  # torch's (C, H, W) flatten order, as netx's
            spatial = False
        else:
            group = layer("conv")
            group["shape"] = np.asarray(node.shape, dtype=np.int64)
            group["weight"] = weight
            group["stride"] = np.asarray(node.stride, dtype=np.int64)
            group["padding"] = np.asarray(node.padding, dtype=np.int64)
            group["dilation"] = np.ones(2, dtype=np.int64)
            group["groups"] = np.int64(node.groups)
        _write_neuron(group, neuron_of[node.name])


def to_netx(graph: Graph, path: Path | str) -> int:
    """Write ``graph`` as netx HDF5 at ``path`` (atomically); returns the ``input_message_bits`` to load it with.

    Raises :class:`UserError` listing every node netx cannot carry (see :func:`netx_problems`).
    """
    refuse_features(graph, "the netx writer")
    problems = netx_problems(graph)
    if problems:
        listed = "; ".join(f"{name} ({', '.join(reasons)})" for name, reasons in problems.items())
        raise UserError(f"netx carries only a chain input -> (conv|dense -> CUBA LIF)*, with neuron biases "
                        f"(13-bit mantissa) << 6 as netx fixes bias_exp = 6; {len(problems)} node(s) cannot be "
                        f"carried: {listed}")
    first = graph.of_kind(ConvNode)[0]
    input_bits = graph.input.payload_bits if first.graded else 0
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as f:  # a file name: h5py calls no Python
        f.attrs[INPUT_BITS_ATTR] = input_bits                          # file object, whose errors it would lose
        f.attrs[STEPS_ATTR] = graph.T
        _write_layers(f, graph)
    return input_bits


def load_netx(path: Path | str, **network_args: Any) -> Any:
    """``lava.lib.dl.netx.hdf5.Network`` of a file written by :func:`to_netx`, set up to stream samples of T steps
    back to back: the file's input message bits, and every layer reset at its own first step of each sample.

    netx resets layer i (0-based) at time steps ``reset_offset + 1 + i`` modulo ``reset_interval``; layer i sits
    at depth i + 1 and, fed from Lava's step 1, reads a sample's first step at time step i + 2. So
    ``reset_interval = T, reset_offset = 1`` starts every layer from zero state exactly when each sample reaches
    it, as the functional graph does (a plain LIF would integrate its bias during the pipeline fill). Keyword
    arguments override these settings.
    """
    from lava.lib.dl.netx.hdf5 import Network

    with h5py.File(path, "r") as f:
        settings = dict(input_message_bits=int(f.attrs[INPUT_BITS_ATTR]), reset_interval=int(f.attrs[STEPS_ATTR]),
                        reset_offset=1)
    return Network(net_config=str(path), **{**settings, **network_args})


def layer_nodes(path: Path | str) -> list[str]:
    """The graph LIF node each neuron layer of the file carries, in layer order (``Network.layers`` order)."""
    with h5py.File(path, "r") as f:
        groups = [f["layer"][str(i)] for i in range(len(f["layer"]))]
        return [str(g.attrs[NODE_ATTR]) for g in groups if NODE_ATTR in g.attrs]
