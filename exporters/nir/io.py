"""The deployed graph as a NIR file: standard nodes with float-equivalent parameters, exact integers in metadata.

Mapping (documented in docs/nir_mapping.md):

* InputNode -> ``nir.Input``; metadata: payload scale, bits, sign.
* ConvNode -> ``nir.Conv2d`` with float-equivalent weights (see :func:`float_scale`); metadata: integer kernel,
  weight exponent, graded flag, ``role``, ``recurrent``, ``host`` (placement: computed on the host, see
  :attr:`Graph.host`). A recurrent conv also has the edge back into the LIF it reads: a cycle, NIR's recurrent edge
  (one step of delay, as every discrete-time NIR consumer runs a cycle).
* LIFNode -> ``nir.CubaLIF`` under the time-step convention ``dt`` (``DT`` = 1e-4 s, snnTorch's fixed step;
  Norse takes ``dt`` as an argument) and forward Euler: tau_syn = dt 4096/(du+1), w_in = 4096/(du+1),
  tau_mem = dt 4096/dv, r = 4096/dv, threshold in units of the integer threshold plus a margin
  (:data:`THRESHOLD_MARGIN`), all float64 (SpikingJelly requires tau >= dt); metadata: du, dv, vth, bias
  mantissas and exponents, ``host``. The bias is a constant input to v each step: when the synaptic current has no
  memory (du = 4095, tau_syn = dt: every LIF the lowering emits) it is written as the ``bias`` of the Conv2d that feeds
  the LIF (the same current under forward Euler at ``dt``), so ``v_leak`` = 0, which importers that reject
  ``v_leak`` (snnTorch) or also apply it to the synapse (Norse) need; otherwise, or when no Conv2d feeds only this
  LIF, it is ``v_leak`` = bias 4096/dv.
* a ConvNode whose role is ``spike_pool`` (the all-ones sum inside a max-pool of spikes) -> ``nir.SumPool2d``;
  other grouped kernels are written ungrouped (zeros between groups).
* SumNode -> ``nir.Scale`` of ones: NIR sums every edge into a node.
* ReadoutNode -> ``nir.SumPool2d`` over the whole map, ``nir.Flatten``, ``nir.Affine`` (weights divided by the
  token count): the mean over tokens (a per-neuron readout: a 1x1 pool, the Affine reads every neuron). The mean
  over time is the consumer's (documented).
* SpikeProductNode (SSA) -> extension ``snn_deploy.spike_product``: a ``nir.Delay`` whose delays are NaN, with the
  operand order and ``float_scale`` (the multiplier over the consuming LIF's threshold: the current in float units)
  in metadata. NIR sums the three incoming edges, so a consumer that does not know the extension
  sees an invalid delay and must fail; it cannot run a different network silently. The graph's metadata lists
  ``required_extensions``.

Reading a file back gives an identical :class:`Graph` (the integers come from metadata, not from the floats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import (
    ConvNode, Graph, InputNode, LIFNode, NODE_TYPES, Node, ReadoutNode, SigmaDeltaNode,
    SpikeProductNode, SumNode, attention_problem,
)

NIR_FORMAT = "snn-deploy-nir"
NIR_FORMAT_VERSION = 1
DT = 1e-4
"""Time-step convention of the float-equivalent parameters (seconds per hardware step). snnTorch's NIR importer
hard-codes this step (and asserts ``r == tau_mem / dt``); Norse's takes it as ``from_nir(..., dt=1e-4)``."""
SPIKE_PRODUCT_EXTENSION = "snn_deploy.spike_product"
SIGMA_DELTA_EXTENSION = "snn_deploy.sigma_delta"
"""NIR has no sigma-delta neuron: a :class:`SigmaDeltaNode` is stored as a placeholder whose metadata holds it, so
only snn-deploy reads such a file (other NIR consumers see a required extension they do not know)."""
LONG_TAU_STEPS = 1e9
"""Stand-in for an infinite time constant (du = -1 or dv = 0: no decay) in the float-equivalent parameters."""
THRESHOLD_MARGIN = 0.6
"""Integer voltage units added to the float-equivalent threshold (``v_threshold = (vth 2^6 + margin) / (2^6 vth)``).
Loihi fires iff the integer v exceeds ``vth 2^6``, i.e. reaches ``vth 2^6 + 1``, and many decisions sit exactly on
``vth 2^6``: at the bare threshold a float consumer decides them by rounding. Between the two integers, the float
voltage may differ from Loihi's by the truncation of its decays: for dv = 2048 an odd positive v loses exactly half
a unit, so a float consumer sees ``vth 2^6 + 0.5`` where Loihi has ``vth 2^6``; 0.6 resolves that (and every
positive error up to 0.6), not too close to 1 for the rarer negative errors (a negative v truncates upward).
Measured on the demo models' whole files: docs/nir_mapping.md."""


def float_scale(vth: int) -> float:
    """Integer voltage units per float unit: the float threshold is 1 (0 for vth = 0)."""
    return float((1 << L.VTH_SHIFT) * max(vth, 1))


def float_threshold(vth: int) -> float:
    """The float-equivalent threshold of integer ``vth``: ``(vth 2^6 + THRESHOLD_MARGIN) / float_scale(vth)``."""
    return ((1 << L.VTH_SHIFT) * vth + THRESHOLD_MARGIN) / float_scale(vth)


def _meta(node: Node, order: int, **fields) -> dict:
    return {"snn_deploy": {"kind": node.kind, "name": node.name, "order": order, "inputs": list(node.inputs),
                           "shape": list(node.shape), **fields}}


def _stored(value: Any) -> Any:
    """A node field as NIR metadata: integer arrays compacted, tuples as lists."""
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer):
        return _compact(value)
    return list(value) if isinstance(value, tuple) else value


def _fields(node: Node, host: bool | None = None) -> dict[str, Any]:
    """Every field of ``node`` (:meth:`Node.parameters`) as metadata, with its placement."""
    stored = {name: _stored(value) for name, value in node.parameters().items()}
    return stored if host is None else {**stored, "host": host}


def _loaded(value: Any, default: Any) -> Any:
    """A stored field converted back to the type of its default."""
    if isinstance(default, np.ndarray):
        return np.asarray(value, dtype=default.dtype)
    if isinstance(default, tuple):
        return tuple(int(v) for v in value)
    if isinstance(default, str):
        return _as_str(value)
    return type(default)(value)  # bool, int, float


def _node(cls: type[Node], common: dict[str, Any], stored: dict) -> Node:
    """The node of class ``cls`` from its stored fields (a field not stored keeps its default)."""
    return cls(**common, **{name: _loaded(stored[name], default) for name, default in cls.parameter_defaults().items()
                            if name in stored})


def float_bias(node: LIFNode) -> np.ndarray:
    """Per-channel bias of ``node`` in float units (the float threshold is 1), float32 [C]: the constant added to
    v each step (:meth:`LIFParams.bias <snn_deploy.fixedpoint.LIFParams.bias>`)."""
    exact = node.params().bias().reshape(-1).numpy()
    return np.broadcast_to(exact.astype(np.float64) / float_scale(node.vth), node.shape[:1]).astype(np.float32)


def bias_carriers(graph: Graph) -> dict[str, str]:
    """Conv node -> the LIF node whose bias its ``Conv2d.bias`` carries (see the module docstring).

    A LIF qualifies when its synaptic current has no memory (du = 4095: the bias and the input current enter v
    alike, step for step); its first input that is a non-sum-pool ConvNode feeding only this LIF carries it.
    """
    consumers = graph.consumers()
    carriers: dict[str, str] = {}
    for node in graph.of_kind(LIFNode):
        if node.du != L.DECAY_UNITY - 1 or isinstance(node, SigmaDeltaNode):
            continue
        for name in node.inputs:
            source = graph[name]
            if isinstance(source, ConvNode) and source.role != "spike_pool" and consumers[name] == [node.name]:
                carriers[name] = node.name
                break
    return carriers


def _lif_to_nir(node: LIFNode, order: int, bias_on_conv: bool, host: bool) -> nir.CubaLIF:
    scale = float_scale(node.vth)
    shape = node.shape
    syn_steps = L.DECAY_UNITY / (node.du + 1) if node.du + 1 > 0 else LONG_TAU_STEPS
    mem_steps = L.DECAY_UNITY / node.dv if node.dv > 0 else LONG_TAU_STEPS
    bias = np.zeros(shape[0], dtype=np.float32) if bias_on_conv else float_bias(node)

    def full(value) -> np.ndarray:  # a read-only broadcast view: no memory per neuron until written
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)  # float64: 1e-4 stays >= dt

    return nir.CubaLIF(
        tau_syn=full(DT * syn_steps), tau_mem=full(DT * mem_steps), r=full(mem_steps),
        v_leak=full(bias.reshape(-1, 1, 1) * mem_steps), v_threshold=full(float_threshold(node.vth)),
        v_reset=full(0.0), w_in=full(syn_steps),
        metadata=_meta(node, order, **_fields(node, host)))


def _compact(values: np.ndarray) -> np.ndarray:
    """The smallest integer dtype holding ``values`` (weights are 8-bit, mantissas 13-bit): files stay small."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if values.size == 0 or (values.min() >= info.min and values.max() <= info.max):
            return values.astype(dtype)
    return values.astype(np.int64)


def _consumer_vth(graph: Graph, name: str) -> int:
    node = graph[name]
    if isinstance(node, ConvNode) and node.recurrent:  # it feeds the LIF it reads
        return graph[node.inputs[0]].vth
    lifs = [n for n in graph.nodes if name in n.inputs and isinstance(n, LIFNode)]
    return lifs[0].vth if lifs else 1


def to_nir(graph: Graph) -> nir.NIRGraph:
    """The NIR graph of ``graph`` (see the module docstring for the mapping)."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    input_scale = graph.input.scale
    carriers = bias_carriers(graph)
    for order, node in enumerate(graph.nodes):
        edges += [(i, node.name) for i in node.inputs]
        if isinstance(node, ConvNode) and node.recurrent:  # the edge back into its LIF: a cycle, as NIR writes one
            edges.append((node.name, node.inputs[0]))
        if isinstance(node, InputNode):
            nodes[node.name] = nir.Input(input_type={"input": np.array(node.shape)},
                                         metadata=_meta(node, order, **_fields(node)))
        elif isinstance(node, ConvNode):
            source = graph[node.inputs[0]]
            per_unit = (1 << L.ACT_SHIFT) * 2.0 ** node.weight_exp / float_scale(_consumer_vth(graph, node.name))
            if isinstance(source, InputNode):
                per_unit *= input_scale
            meta = _meta(node, order, **_fields(node, node.name in graph.host))
            if node.role == "spike_pool":
                nodes[node.name] = nir.SumPool2d(kernel_size=np.array(node.weight.shape[2:]),
                                                 stride=np.array(node.stride), padding=np.array(node.padding),
                                                 metadata=meta)
            else:
                bias = (float_bias(graph[carriers[node.name]]) if node.name in carriers
                        else np.zeros(node.weight.shape[0], dtype=np.float32))
                nodes[node.name] = nir.Conv2d(
                    input_shape=tuple(source.shape[1:]), weight=(node.dense_kernel().astype(np.float32) * per_unit).astype(np.float32),
                    stride=node.stride,
                    padding=node.padding, dilation=(1, 1), groups=1, bias=bias,
                    metadata=meta)
        elif isinstance(node, SigmaDeltaNode):
            nodes[node.name] = nir.Delay(delay=np.broadcast_to(np.float32(np.nan), node.shape), metadata=_meta(
                node, order, **_fields(node, node.name in graph.host), extension=SIGMA_DELTA_EXTENSION))
        elif isinstance(node, LIFNode):
            nodes[node.name] = _lif_to_nir(node, order, bias_on_conv=node.name in carriers.values(),
                                           host=node.name in graph.host)
        elif isinstance(node, SumNode):
            nodes[node.name] = nir.Scale(scale=np.broadcast_to(np.float32(1), node.shape), metadata=_meta(node, order))
        elif isinstance(node, SpikeProductNode):
            nodes[node.name] = nir.Delay(delay=np.broadcast_to(np.float32(np.nan), node.shape), metadata=_meta(
                node, order, **_fields(node), extension=SPIKE_PRODUCT_EXTENSION, operands=list(node.inputs),
                float_scale=(1 << L.ACT_SHIFT) * node.multiplier / float_scale(_consumer_vth(graph, node.name))))
        elif isinstance(node, ReadoutNode):
            c, h, w = node.shape
            prefix = node.name
            pooled = (1, 1) if node.per_neuron else (h, w)  # a per-neuron readout reads the map itself
            nodes[f"{prefix}.pool"] = nir.SumPool2d(kernel_size=np.array(pooled), stride=np.array(pooled),
                                                    padding=np.array([0, 0]), metadata=_meta(node, order))
            nodes[f"{prefix}.flatten"] = nir.Flatten(input_type={"input": np.array([c, h // pooled[0],
                                                                                    w // pooled[1]])},
                                                     start_dim=0, end_dim=-1)
            nodes[f"{prefix}.affine"] = nir.Affine(weight=node.weight / (pooled[0] * pooled[1]),
                                                   bias=node.bias.copy(), metadata={"snn_deploy": _fields(node, True)})
            edges = [(s, f"{prefix}.pool" if d == prefix else d) for s, d in edges]
            edges += [(f"{prefix}.pool", f"{prefix}.flatten"), (f"{prefix}.flatten", f"{prefix}.affine"),
                      (f"{prefix}.affine", "output")]
            nodes["output"] = nir.Output(output_type={"output": np.array([node.weight.shape[0]])})
        else:
            raise TypeError(f"no NIR mapping for node kind {node.kind!r}")
    extensions = required_extensions(graph)
    meta = {"snn_deploy": {"format": NIR_FORMAT, "format_version": NIR_FORMAT_VERSION, "T": graph.T, "dt": DT,
                           "reset_interval": graph.reset_interval, "reset_offset": graph.reset_offset,
                           "pipeline_fill": graph.pipeline_fill, "attention": graph.attention,
                           "required_extensions": extensions,
                           "time_mean_readout": "the class is the argmax of the output's mean over time steps"}}
    # nir 1.0.8 infers a Conv2d's output from the kernel's height alone, so a graph with a non-square kernel (a
    # dense layer over a non-square map) fails its type check although every shape is right: skip the check there
    square = all(n.weight.shape[2] == n.weight.shape[3] for n in graph.of_kind(ConvNode))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=square)


def required_extensions(graph: Graph) -> list[str]:
    """The snn-deploy NIR extensions a reader of ``graph``'s file must know."""
    return ([SPIKE_PRODUCT_EXTENSION] if graph.of_kind(SpikeProductNode) else []) + (
        [SIGMA_DELTA_EXTENSION] if graph.of_kind(SigmaDeltaNode) else [])


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attention(value: object) -> str:
    """The spike-product lowering a file records (files written before it was recorded: ``coincidence``)."""
    name = _as_str(value)
    if (problem := attention_problem(name)) is not None:
        raise UserError(f"NIR metadata: {problem}; upgrade snn-deploy or export again")
    return name


def _conv_role(nir_type: str) -> str:
    """The role of a conv in a file written before roles were recorded: its sum pools are SumPool2d nodes."""
    return "spike_pool" if nir_type == "SumPool2d" else "synapse"


def _ours(metadata: object) -> dict | None:
    return metadata.get("snn_deploy") if isinstance(metadata, dict) else None


def from_nir(ir: nir.NIRGraph, where: str = "NIR graph") -> Graph:
    """Rebuild the exact :class:`Graph` from a NIR graph written by :func:`to_nir` (not yet range-checked: see
    :func:`snn_deploy.exporters.formats.bundle_check.check_graph`)."""
    nodes = {key: (type(node).__name__, _ours(node.metadata)) for key, node in ir.nodes.items()}
    return _checked_graph(_ours(ir.metadata), nodes, where)


def _checked_graph(meta: dict | None, stored: dict[str, tuple[str, dict | None]], where: str) -> Graph:
    """:func:`_graph`, with crafted or damaged metadata as one :class:`UserError` line."""
    try:
        return _graph(meta, stored)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:  # crafted metadata
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise UserError(f"{where}: damaged snn-deploy metadata ({detail}); export the network again") from None


def _graph(meta: dict | None, stored: dict[str, tuple[str, dict | None]]) -> Graph:
    """The graph from its NIR metadata and every NIR node's (type name, snn-deploy metadata)."""
    if not meta or _as_str(meta.get("format")) != NIR_FORMAT:
        raise UserError("this NIR file was not written by snn-deploy (no snn_deploy metadata): it carries no "
                        "integer parameters to deploy")
    if int(meta["format_version"]) != NIR_FORMAT_VERSION:
        raise UserError(f"NIR bundle format version {meta['format_version']} is not supported "
                        f"(this snn-deploy reads version {NIR_FORMAT_VERSION}); re-export the model")
    known = {SPIKE_PRODUCT_EXTENSION, SIGMA_DELTA_EXTENSION}
    unknown = [_as_str(e) for e in np.atleast_1d(meta.get("required_extensions", [])) if _as_str(e) not in known]
    if unknown:
        raise UserError(f"NIR file requires unknown extensions {unknown}; upgrade snn-deploy")
    records = []
    for key, (nir_type, m) in stored.items():
        if m and "kind" in m:
            records.append((int(m["order"]), key, nir_type, m))
    nodes: list[Node] = []
    host: set[str] = set()
    for _, key, nir_type, m in sorted(records, key=lambda r: r[0]):
        common = dict(name=_as_str(m["name"]), inputs=tuple(_as_str(i) for i in np.atleast_1d(m["inputs"])),
                      shape=tuple(int(s) for s in m["shape"]))
        if len(m["inputs"]) == 0:
            common["inputs"] = ()
        kind = _as_str(m["kind"])
        if bool(m.get("host", False)):  # files without placement: everything on the chip
            host.add(common["name"])
        if kind not in NODE_TYPES:
            raise UserError(f"NIR node {key!r} has unknown snn-deploy kind {kind!r}; upgrade snn-deploy")
        cls = NODE_TYPES[kind]
        fields = stored[f"{common['name']}.affine"][1] if cls is ReadoutNode else m
        if cls is ConvNode and "role" not in fields:  # written before roles were recorded
            fields = {**fields, "role": _conv_role(nir_type)}
        nodes.append(_node(cls, common, fields))
    return Graph(nodes, T=int(meta["T"]), host=frozenset(host), reset_interval=int(meta.get("reset_interval", 0)),
                 reset_offset=int(meta.get("reset_offset", 0)), pipeline_fill=bool(meta.get("pipeline_fill", False)),
                 attention=_attention(meta.get("attention", "coincidence")))


def write(graph: Graph, path: Path) -> None:
    """Write ``graph`` as a NIR (HDF5) file at ``path``."""
    nir.write(str(path), to_nir(graph))


def read(path: Path) -> Graph:
    """Read a graph written by :func:`write`; any other or damaged file is a :class:`UserError`."""
    try:
        meta, stored = _read_metadata(path)
        unknown = unknown_types(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such NIR file") from None
    except Exception as exc:  # h5py raises many types for damaged files
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise UserError(f"{path}: not a readable NIR file ({detail}); export it again") from None
    if unknown:  # NIR itself could not read the file: neither can any other consumer of the bundle
        raise UserError(f"{path}: unknown NIR primitive(s) {', '.join(unknown[:5])} (nir {nir.version} defines no "
                        "such node); the file is damaged or crafted, export the network again")
    return _checked_graph(meta, stored, str(path))


NIR_TYPES = frozenset(name for name, cls in vars(nir.ir).items()
                      if isinstance(cls, type) and issubclass(cls, nir.NIRNode))
"""Node type names the installed nir defines (what ``nir.read`` can build)."""


def unknown_types(path: Path) -> list[str]:
    """``Type at node 'name'`` for every node (nested graphs included) whose type the installed nir does not
    define: ``nir.read`` fails on them, and so must every reader here."""
    found: list[str] = []

    def visit(group, prefix: str) -> None:
        nodes = group.get("nodes")
        for name, node in (nodes.items() if isinstance(nodes, h5py.Group) else ()):
            kind = node["type"][()] if isinstance(node, h5py.Group) and "type" in node else b""
            kind = _as_str(kind) if isinstance(kind, (bytes, str)) else ""
            if kind not in NIR_TYPES:
                found.append(f"{kind or '(none)'} at node {prefix + name!r}")
            elif kind == "NIRGraph":
                visit(node, f"{prefix}{name}.")

    with h5py.File(path, "r") as file:
        visit(file["node"], "")
    return found


def written_by_snn_deploy_file(path: Path) -> bool:
    """Whether the NIR file at ``path`` says it was written by snn-deploy (root metadata only; False when it cannot
    tell: the readers then report what is wrong)."""
    try:
        with h5py.File(path, "r") as f:
            value = f["node/metadata/snn_deploy/format"][()]
    except Exception:  # not HDF5, no such field: not ours
        return False
    return isinstance(value, (bytes, str)) and _as_str(value) == NIR_FORMAT


def _read_metadata(path: Path) -> tuple[dict | None, dict[str, tuple[str, dict | None]]]:
    """The graph's and every node's snn-deploy metadata, and each node's NIR type, straight from the HDF5 file
    (the layout ``nir.write`` produces). Everything :func:`from_nir` needs, without reading the float-equivalent
    parameters (most of the file), which makes loading a bundle several times faster than ``nir.read``."""
    with h5py.File(path, "r") as f:
        root = f["node"]
        nodes = {}
        for key, group in root["nodes"].items():
            meta = _hdf_dict(group["metadata"]) if "metadata" in group else None
            nodes[key] = (_as_str(group["type"][()]), _ours(meta))
        return _ours(_hdf_dict(root["metadata"]) if "metadata" in root else None), nodes


def _hdf_dict(group: h5py.Group) -> dict:
    """An HDF5 group as nested dicts, strings decoded (as ``nir.read`` gives metadata)."""
    out = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _hdf_dict(item)
        else:
            value = item[()]
            out[key] = value.decode() if isinstance(value, bytes) else value
    return out


def topological(ir: nir.NIRGraph) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(order, predecessors, the nodes on cycles, which leave the rest of the graph without an order).

    One topological sort for every reader of standard NIR (the import and the reference executor)."""
    unknown = sorted({n for e in ir.edges for n in e if n not in ir.nodes})
    if unknown:
        raise UserError(f"NIR graph has edges to or from nodes it does not define: {', '.join(unknown)}")
    preds: dict[str, list[str]] = {n: [] for n in ir.nodes}
    succs: dict[str, list[str]] = {n: [] for n in ir.nodes}
    for src, dst in ir.edges:
        preds[dst].append(src)
        succs[src].append(dst)
    waiting = {n: len(p) for n, p in preds.items()}
    ready = [n for n in ir.nodes if waiting[n] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for nxt in succs[name]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    left = {n for n in ir.nodes if n not in order}
    while True:  # drop what only lies downstream of a cycle: the rest is on one (or between two)
        tails = {n for n in left if not any(m in left for m in succs[n])}
        if not tails:
            break
        left -= tails
    return order, preds, [n for n in ir.nodes if n in left]


def with_loops(ir: nir.NIRGraph, neurons: tuple[type, ...], linear: tuple[type, ...]
               ) -> tuple[list[str], dict[str, list[str]], list[str], dict[str, list[str]]]:
    """:func:`topological` with each neuron's own loops set apart: (order, predecessors, nodes on other cycles,
    loops). A loop is a cycle from a node of a ``neurons`` type back to itself through ``linear`` nodes that read
    nothing else (NIR's recurrent layer: snnTorch's ``lif -> w_rec -> lif``); ``loops`` maps the neuron to the
    nodes whose edges into it close one, which order and predecessors leave out (a discrete-time consumer delays
    them one step)."""
    order, preds, cyclic = topological(ir)
    loops: dict[str, list[str]] = {}
    for name in cyclic:
        if isinstance(ir.nodes[name], neurons):
            closing = [p for p in preds[name] if isinstance(ir.nodes[p], linear)
                       and linear_behind(ir, preds, p, linear)[1] == {name}]
            if closing:
                loops[name] = closing
    if loops:
        kept = [(a, b) for a, b in ir.edges if a not in loops.get(b, ())]
        order, preds, cyclic = topological(nir.NIRGraph(nodes=ir.nodes, edges=kept, type_check=False))
    return order, preds, cyclic, loops


def linear_behind(ir: nir.NIRGraph, preds: dict[str, list[str]], start: str, linear: tuple[type, ...]
                  ) -> tuple[set[str], set[str]]:
    """(the ``linear`` nodes from ``start`` backwards through linear nodes, ``start`` included; the other nodes
    they read)."""
    seen, stack, sources = {start}, [start], set()
    while stack:
        for q in preds[stack.pop()]:
            if not isinstance(ir.nodes[q], linear):
                sources.add(q)
            elif q not in seen:
                seen.add(q)
                stack.append(q)
    return seen, sources


def pair(value) -> tuple[int, int]:
    """A 2-D NIR attribute (kernel size, stride, padding, dilation), stored as a scalar or a pair, as two ints."""
    return tuple(int(x) for x in np.broadcast_to(np.asarray(value), (2,)))  # type: ignore[return-value]
