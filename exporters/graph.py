"""The deployed network as plain, typed data: integer nodes in topological order, one per hardware operation.

The graph is *functional*: every node computes its output at step t from its inputs at step t (LIF state carries
over steps), exactly as the integer-mode PyTorch model does. Hardware latency is a property of node kinds
(:attr:`Node.latency`: a synapse stage delays by one step in Lava) that timed backends apply when they build
the network; comparisons shift by each node's depth. Shapes are per sample: (C, H, W) maps, tokens = H * W.

Node kinds:

* :class:`InputNode` - graded integer payloads ``round(x * scale)`` clipped to ``payload_bits``; with
  ``drive="bias"`` the payloads are not sent but added to the per-neuron bias mantissa of the LIF reading it
  (lava-dl netx's input layer, driven through its ``bias_mant`` by an image held over the steps).
* :class:`ConvNode` - Loihi synapse: integer kernel (torch orientation), stride, padding, groups, weight exponent;
  binary (spikes) or graded (integer) input. Pointwise (1x1) layers are 1x1 convolutions.
* :class:`LIFNode` - Loihi CUBA LIF population with per-channel bias; input = sum of its incoming currents.
* :class:`SumNode` - integer sum of spike tensors (the residual stream); no hardware of its own: each consumer
  receives every summand.
* :class:`SpikeProductNode` - SSA's ``q (k^T v)`` per head between spike tensors, times an integer multiplier,
  as currents. The one operation NIR has no node for (see docs/nir_mapping.md).
* :class:`ReadoutNode` - the classifier, on the host: float Affine of the mean over tokens and steps. Optional:
  an imported regression network (PilotNet) ends at its last LIF and has no classifier.

A fully connected layer is a ConvNode whose kernel covers its whole (unpadded) input map: torch's (C, H, W)
flatten order, which is lava-dl netx's. :attr:`Graph.reset_interval` zeroes every LIF's state every that many
functional steps (netx's ``reset_interval``; 0: never).

Placement: :attr:`Graph.host` names the convs and LIFs the host computes instead of the chip (the analog input
layer under ``export --input-on-host``, :func:`analog_input_layer`); the chip then receives those LIFs' binary
spikes. The arithmetic is the same wherever a node runs, so backends compute every node; the mapper, the cost
model and the target checks read the placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from snn_deploy.errors import UserError

Shape = tuple[int, int, int]
WEIGHT_DTYPE = np.int16
"""Kernels are stored as int16: Loihi weights are 8 bit (9 with sign), and large models stay small in memory."""


@dataclass(frozen=True, eq=False)
class Node:
    """Base: a unique name (the PyTorch module path where one exists) and the names of its inputs."""

    name: str
    inputs: tuple[str, ...]
    shape: Shape
    kind: ClassVar[str] = "node"
    latency: ClassVar[int] = 0


@dataclass(frozen=True, eq=False)
class InputNode(Node):
    scale: float = 255.0
    payload_bits: int = 8
    signed: bool = False
    drive: str = "current"
    """``current``: payloads are sent on synapses; ``bias``: they are added to the reading LIF's bias mantissa."""
    kind: ClassVar[str] = "input"
    DRIVES: ClassVar[tuple[str, ...]] = ("current", "bias")

    def __post_init__(self) -> None:
        if self.drive not in self.DRIVES:
            raise ValueError(f"{self.name}: input drive {self.drive!r} is not one of {self.DRIVES}")

    @property
    def payload_range(self) -> tuple[int, int]:
        hi = (1 << (self.payload_bits - int(self.signed))) - 1
        return (-hi if self.signed else 0), hi

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Float inputs -> the integer payloads the hardware receives."""
        return np.clip(np.round(np.asarray(x, dtype=np.float64) * self.scale), *self.payload_range).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ConvNode(Node):
    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1), dtype=np.int64))
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    weight_exp: int = 0
    graded: bool = False
    kind: ClassVar[str] = "conv"
    latency: ClassVar[int] = 1

    def __post_init__(self) -> None:
        weight = np.asarray(self.weight)
        if weight.size and np.abs(weight).max() > np.iinfo(WEIGHT_DTYPE).max:
            raise ValueError(f"{self.name}: kernel values beyond 16 bits cannot be Loihi weights")
        object.__setattr__(self, "weight", weight.astype(WEIGHT_DTYPE, copy=False))

    @property
    def synapses(self) -> int:
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class LIFNode(Node):
    du: int = 4095
    dv: int = 2048
    vth: int = 1
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    refractory: int = 0
    """Steps a neuron stays refractory after a spike (v held at 0, u still integrates): Lava's ``LIFRefractory``
    ``refractory_period``; 0 is the plain LIF."""
    kind: ClassVar[str] = "lif"

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class SumNode(Node):
    kind: ClassVar[str] = "sum"


@dataclass(frozen=True, eq=False)
class SpikeProductNode(Node):
    heads: int = 1
    multiplier: int = 1
    kind: ClassVar[str] = "spike_product"
    latency: ClassVar[int] = 1


@dataclass(frozen=True, eq=False)
class ReadoutNode(Node):
    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1))
    kind: ClassVar[str] = "readout"


NODE_TYPES: dict[str, type[Node]] = {cls.kind: cls for cls in
                                     (InputNode, ConvNode, LIFNode, SumNode, SpikeProductNode, ReadoutNode)}


@dataclass
class Graph:
    """Nodes in topological order, the run length they were exported for, and the nodes the host computes."""

    nodes: list[Node]
    T: int
    host: frozenset[str] = frozenset()
    """Convs and LIFs computed on the host, not the chip (see the module docstring); checked by
    :meth:`_check_host`."""
    reset_interval: int = 0
    """Every LIF's u and v are zeroed every ``reset_interval`` functional steps (0: never), see :meth:`reset_steps`."""
    reset_offset: int = 0
    """The first reset comes after ``reset_interval + reset_offset`` steps: 0 is Lava's ``LIFReset`` as netx sets
    it up; Intel's Loihi 2 PilotNet traces show 1 (docs/netx_import.md)."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for node in self.nodes:
            if node.name in seen:
                raise ValueError(f"duplicate node name {node.name!r}")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise ValueError(f"node {node.name!r} reads {missing} before they are defined")
            seen.add(node.name)
        if not self.nodes or not isinstance(self.nodes[0], InputNode):
            raise ValueError("a graph starts with its InputNode")
        self.host = frozenset(self.host)
        if self.reset_interval < 0 or not 0 <= self.reset_offset < max(self.reset_interval, 1):
            raise ValueError(f"reset_interval {self.reset_interval} must be >= 0 and reset_offset "
                             f"{self.reset_offset} in [0, reset_interval)")
        for node in self.nodes:
            if isinstance(node, InputNode) and node.drive == "bias":
                readers = [n for n in self.nodes if node.name in n.inputs]
                if not all(isinstance(n, LIFNode) and n.inputs == (node.name,) for n in readers):
                    raise ValueError(f"bias-driven input {node.name!r} can only be read, alone, by LIF nodes")
        if self.host:
            self._check_host(seen)

    def _check_host(self, names: set[str]) -> None:
        """The host computes from the input alone and hands the chip binary spikes on synapses: host nodes are
        convs and LIFs reading the input or host nodes, a host conv feeds host nodes only, and a host LIF's other
        consumers are chip convs (or the readout, itself on the host)."""
        unknown = sorted(self.host - names)
        if unknown:
            raise ValueError(f"host placement names unknown nodes {unknown}")
        consumers = self.consumers()
        for node in self.nodes:
            if node.name not in self.host:
                continue
            if not isinstance(node, (ConvNode, LIFNode)):
                raise ValueError(f"{node.name!r}: only convs and LIFs can be computed on the host, not {node.kind}")
            on_chip = [i for i in node.inputs if i not in self.host and i != self.input.name]
            if on_chip:
                raise ValueError(f"host node {node.name!r} reads {on_chip} from the chip")
            allowed = () if isinstance(node, ConvNode) else (ConvNode, ReadoutNode)
            bad = [c for c in consumers[node.name] if c not in self.host and not isinstance(self[c], allowed)]
            if bad:
                raise ValueError(f"host node {node.name!r} feeds {bad} on the chip, which can receive only host "
                                 "LIF spikes on synapses")

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def input(self) -> InputNode:
        return self.nodes[0]  # type: ignore[return-value]

    @property
    def classifier(self) -> ReadoutNode | None:
        """The readout, or None for a network without one (an imported regression network)."""
        node = self.nodes[-1]
        return node if isinstance(node, ReadoutNode) else None

    @property
    def readout(self) -> ReadoutNode:
        node = self.nodes[-1]
        if not isinstance(node, ReadoutNode):
            raise UserError("graph has no readout node; it was not exported from a classifier")
        return node

    def reset_steps(self, steps: int) -> list[int]:
        """The functional steps (of a run of ``steps``) before which every LIF's state is zeroed."""
        if not self.reset_interval:
            return []
        return list(range(self.reset_interval + self.reset_offset, steps, self.reset_interval))

    def of_kind(self, kind: type[Node]) -> list[Node]:
        return [n for n in self.nodes if isinstance(n, kind)]

    def depths(self) -> dict[str, int]:
        """Steps between the input and each node's output in a timed (Lava) build: the longest path's latency.

        Backends that time the network delay every shorter input path to this depth.
        """
        depth: dict[str, int] = {}
        for node in self.nodes:
            base = max((depth[i] for i in node.inputs), default=0)
            depth[node.name] = base + node.latency
        return depth

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for i in node.inputs:
                out[i].append(node.name)
        return out


def netx_features(graph: Graph) -> dict[str, list[str]]:
    """The constructs lava-dl netx imports bring that not every backend models, with the nodes using each: a
    backend that cannot compute one refuses the graph with :func:`refuse_features` instead of computing another
    network."""
    found = {"bias-driven input": [n.name for n in graph.of_kind(InputNode) if n.drive == "bias"],
             "refractory period": [n.name for n in graph.of_kind(LIFNode) if n.refractory],
             "periodic state reset": ["every LIF"] if graph.reset_steps(graph.T) else []}
    return {what: nodes for what, nodes in found.items() if nodes}


def refuse_features(graph: Graph, backend: str, supported: tuple[str, ...] = ()) -> None:
    """Raise a :class:`UserError` naming every :func:`netx_features` construct ``backend`` does not model."""
    missing = {what: nodes for what, nodes in netx_features(graph).items() if what not in supported}
    if missing:
        listed = "; ".join(f"{what} ({', '.join(nodes)})" for what, nodes in missing.items())
        raise UserError(f"{backend} does not model {listed}; use the simulator (sim), onnx or the netx backend")


def analog_input_layer(graph: Graph) -> frozenset[str]:
    """The analog input layer: every conv reading the input node and the LIFs those convs feed (the first spiking
    layer). ``export --input-on-host`` computes it on the host, so a binary-spike chip receives spikes only."""
    convs = {n.name for n in graph.of_kind(ConvNode) if n.inputs[0] == graph.input.name}
    return frozenset(convs | {n.name for n in graph.of_kind(LIFNode) if convs & set(n.inputs)})


def conv_row_l1(weight: np.ndarray) -> int:
    """Largest L1 norm of one output channel's kernel: the most one input unit can move one output."""
    return int(np.abs(weight).reshape(weight.shape[0], -1).sum(1).max()) if weight.size else 0


def value_bounds(graph: Graph) -> dict[str, int]:
    """Largest |value| every node can output at one step, for any input within the payload range.

    Inputs: the payload range; LIF: 1 (spikes); conv: ``max|x| * L1(weight row)`` (``max|x|`` = 1 for binary
    inputs) shifted by the weight exponent (rounded up); sum: sum of its inputs; spike product:
    ``max|q| max|k| max|v| * tokens * head_dim * |multiplier|``; readout: its input. Exporters use these to prove
    float arithmetic exact and to report overflow risks.
    """
    bound: dict[str, int] = {}
    for node in graph.nodes:
        inputs = [bound[i] for i in node.inputs]
        if isinstance(node, InputNode):
            bound[node.name] = max(abs(v) for v in node.payload_range) if node.drive == "current" else 0
        elif isinstance(node, ConvNode):
            raw = conv_sum_bound(node, bound)
            e = node.weight_exp
            bound[node.name] = raw << e if e >= 0 else -((-raw) >> -e)
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
