"""The deployed network as plain, typed data: integer nodes in topological order, one per hardware operation.

The graph is *functional*: every node computes its output at step t from its inputs at step t (LIF state carries
over steps), exactly as the integer-mode PyTorch model does. Hardware latency is a property of node kinds
(:attr:`Node.latency`: a synapse stage delays by one step in Lava) that timed backends apply when they build
the network; comparisons shift by each node's depth. Shapes are per sample: (C, H, W) maps, tokens = H * W.

Node kinds:

* :class:`InputNode` - graded integer payloads ``round(x * scale)`` clipped to ``payload_bits``; with
  ``drive="bias"`` the payloads are not sent but added to the per-neuron bias mantissa of the LIF reading it
  (lava-dl netx's input layer, driven through its ``bias_mant`` by an image held over the steps).
* :class:`ConvNode` - Loihi synapse: integer kernel (torch orientation), stride, padding, groups, weight exponent
  (``>= 0``: currents are ``(W x) << weight_exp``); binary (spikes) or graded (integer) input. Pointwise (1x1)
  layers are 1x1 convolutions. Its :attr:`~ConvNode.role` says what the lowering built it for: a learned or routing
  synapse, or the all-ones sum inside a max-pool of spikes (``spike_pool``: NIR writes it as a SumPool2d, the
  papers' operation count skips it). A ``recurrent`` conv reads a LIF's spikes and adds its currents to that same
  LIF's input one step later (``W s[t-1]`` at step t: the one-step delay of the synapse, a Lava ``Dense`` from the
  population back to itself); it comes after its LIF in the order and no node lists it as an input.
* :class:`LIFNode` - Loihi CUBA LIF population with per-channel bias; input = sum of its incoming currents.
  :meth:`LIFNode.params` gives its :class:`~snn_deploy.fixedpoint.LIFParams` (validated when the node is made).
* :class:`SumNode` - integer sum of spike tensors (the residual stream); no hardware of its own: each consumer
  receives every summand.
* :class:`SpikeProductNode` - SSA's ``q (k^T v)`` per head between spike tensors, times an integer multiplier,
  as currents. The one operation NIR has no node for (see docs/nir_mapping.md).
* :class:`ReadoutNode` - the classifier, on the host: float Affine of the mean over tokens and steps (weight
  [classes, C]), or of the mean over steps of every neuron (weight [classes, C * H * W], (C, H, W) order: a
  readout that weighs positions differently, such as a NIR ``Flatten -> Linear``). Optional: an imported
  regression network (PilotNet) ends at its last LIF and has no classifier.

A fully connected layer is a ConvNode whose kernel covers its whole (unpadded) input map: torch's (C, H, W)
flatten order, which is lava-dl netx's. :attr:`Graph.reset_interval` zeroes every LIF's state every that many
functional steps (netx's ``reset_interval``; 0: never).

Placement: :attr:`Graph.host` names the convs and LIFs the host computes instead of the chip (the analog input
layer under ``export --input-on-host``, :func:`analog_input_layer`); the chip then receives those LIFs' binary
spikes. The arithmetic is the same wherever a node runs, so backends compute every node; the mapper, the cost
model and the target checks read the placement.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import LIFParams
from snn_deploy.fixedpoint.sigma_delta import SigmaDeltaParams, bias_limit
from snn_deploy.fixedpoint import limits as L

Shape = tuple[int, int, int]
ConvRole = Literal["synapse", "spike_pool"]
CONV_ROLES: tuple[str, ...] = ("synapse", "spike_pool")
_COMMON = ("name", "inputs", "shape")
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

    def parameters(self) -> dict[str, Any]:
        """The node's own fields (all but name, inputs and shape), by name: what a file must store."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _COMMON}

    @classmethod
    def parameter_defaults(cls) -> dict[str, Any]:
        """Every own field's default value (its type tells a reader how to convert a stored value)."""
        return {f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
                for f in fields(cls) if f.name not in _COMMON}


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
        """The integer payloads the hardware receives: ``[0, 2^bits - 1]``, or ``+-(2^(bits-1) - 1)`` signed."""
        return L.payload_range(self.payload_bits, self.signed)

    @property
    def max_abs(self) -> int:
        """Largest |payload|."""
        return max(abs(v) for v in self.payload_range)

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
    role: ConvRole = "synapse"
    """``synapse``, or ``spike_pool``: the depthwise all-ones sum of a max-pool of spikes (the OR of each window
    when its LIF fires on any input), set by the lowering, which is where that fact is known."""
    delay: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per-synapse delay in steps, shaped like ``weight`` (empty: none): an input at functional step t reaches the
    target at step t + delay (Lava's ``DelayDense``, which netx builds for a dense layer with ``delay``)."""
    recurrent: bool = False
    """Feeds back into the LIF it reads, one step later (see the module docstring); checked by :class:`Graph`."""
    kind: ClassVar[str] = "conv"
    latency: ClassVar[int] = 1

    def __post_init__(self) -> None:
        weight = np.asarray(self.weight)
        if weight.size and np.abs(weight).max() > np.iinfo(WEIGHT_DTYPE).max:
            raise ValueError(f"{self.name}: kernel values beyond 16 bits cannot be Loihi weights")
        if self.weight_exp < 0:  # nothing produces one; Lava's Conv can only fold a left shift into its weights
            raise ValueError(f"{self.name}: weight_exp {self.weight_exp} < 0; currents are (W x) << weight_exp with "
                             "a non-negative exponent")
        if self.role not in CONV_ROLES:
            raise ValueError(f"{self.name}: conv role {self.role!r} is not one of {', '.join(CONV_ROLES)}")
        delay = np.asarray(self.delay, dtype=np.int64)
        if delay.size and (delay.shape != weight.shape or delay.min() < 0 or delay.max() > L.MAX_SYNAPTIC_DELAY):
            raise ValueError(f"{self.name}: delays must be shaped like the kernel {weight.shape} and lie in "
                             f"0..{L.MAX_SYNAPTIC_DELAY}")
        object.__setattr__(self, "weight", weight.astype(WEIGHT_DTYPE, copy=False))
        object.__setattr__(self, "delay", delay if delay.any() else np.zeros(0, dtype=np.int64))

    @property
    def synapses(self) -> int:
        return int(self.weight.size)

    def folded_weight(self) -> np.ndarray:
        """The kernel with the exponent applied, ``W << weight_exp`` (int64): the weights of a synapse that
        carries no exponent (Lava's Conv, netx layers)."""
        return self.weight.astype(np.int64) << self.weight_exp

    def dense_kernel(self, weight: np.ndarray | None = None) -> np.ndarray:
        """``weight`` (default: the kernel) of this grouped conv as an equivalent ungrouped kernel: zeros between
        groups, [C_out, C_in, kh, kw], same dtype."""
        weight = self.weight if weight is None else weight
        if self.groups == 1:
            return weight
        c_out, c_in_group = weight.shape[:2]
        out_per_group = c_out // self.groups
        full = np.zeros((c_out, c_in_group * self.groups, *weight.shape[2:]), dtype=weight.dtype)
        for g in range(self.groups):
            rows = slice(g * out_per_group, (g + 1) * out_per_group)
            full[rows, g * c_in_group:(g + 1) * c_in_group] = weight[rows]
        return full


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

    def __post_init__(self) -> None:
        self.params()  # validate the integer ranges once, where the node is made

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    def params(self) -> LIFParams:
        """The population's fixed-point parameters; biases as int64 tensors [C, 1, 1] (per channel, broadcast
        over the map)."""
        def per_channel(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(values, dtype=np.int64)).reshape(-1, 1, 1)
        return LIFParams(self.du, self.dv, self.vth, per_channel(self.bias_mant), per_channel(self.bias_exp),
                         self.refractory)


@dataclass(frozen=True, eq=False)
class SigmaDeltaNode(LIFNode):
    """A sigma-delta (SDNN) population: lava-dl netx's ``SDNN`` neurons, Lava's SigmaDelta / Delta / Sigma
    (:mod:`snn_deploy.fixedpoint.sigma_delta` has the arithmetic). Its outputs are graded payloads (the change of
    a ReLU activation), sent only where the change reaches the threshold.

    A neuron population on the chip like a LIF (so the mapper, the cost model and the reports count it as one:
    its messages are its events), but not a LIF: :meth:`params` refuses, so no LIF arithmetic runs on it. ``vth``
    is netx's ``vThMant``, ``bias_mant`` the file's per-channel bias (in activation units); the LIF fields du, dv,
    bias_exp and refractory keep their defaults. ``message_bits`` is the payload width netx gives the layer
    (``messageBits``, default 16)."""

    spike_exp: int = 6
    state_exp: int = 6
    mode: str = "sigma_delta"
    message_bits: int = 16
    kind: ClassVar[str] = "sigma_delta"

    def __post_init__(self) -> None:
        self.sigma_delta_params()
        if not 1 <= self.message_bits <= 24:
            raise ValueError(f"{self.name}: message bits {self.message_bits} outside 1..24")
        limit = bias_limit(self.spike_exp + self.state_exp)
        bias = np.asarray(self.bias_mant)
        if bias.size and np.abs(bias).max() > limit:
            raise ValueError(f"{self.name}: sigma-delta bias beyond +-{limit} (Lava scales it into int32)")

    def params(self) -> LIFParams:
        raise TypeError(f"{self.name} is a sigma-delta population: it has no LIF parameters")

    def sigma_delta_params(self) -> SigmaDeltaParams:
        """The population's parameters; bias as an int64 tensor [C, 1, 1] (per channel)."""
        bias = torch.from_numpy(np.asarray(self.bias_mant, dtype=np.int64)).reshape(-1, 1, 1)
        return SigmaDeltaParams(self.vth, bias, self.spike_exp, self.state_exp, self.mode)


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

    @property
    def per_neuron(self) -> bool:
        """The weight reads every neuron (position) of its (C, H, W) input, not the mean of each channel."""
        c, h, w = self.shape
        return h * w > 1 and self.weight.shape[1] == c * h * w


NODE_TYPES: dict[str, type[Node]] = {cls.kind: cls for cls in (InputNode, ConvNode, LIFNode, SigmaDeltaNode, SumNode,
                                                                 SpikeProductNode, ReadoutNode)}
"""Every node class by its :attr:`~Node.kind`: what a reader of a stored graph dispatches on."""


ATTENTION_LOWERINGS = ("coincidence", "graded", "token-serial", "packed")
"""The chip lowerings of a spike product (``export --attention``; docs/attention_lowerings.md): coincidence LIF
arrays (two-variable neurons), graded-spike product arrays (one-variable neurons), tokens streamed through one
shared product array over sub-steps, or graded product arrays carrying several products per payload (packed).
Their populations: ``snn_deploy.graph.hardware.PRODUCT_LOWERINGS``."""


def attention_pairs(text: str) -> dict[str, str]:
    """The per-product choices an attention text records: product name -> lowering for ``name=lowering`` pairs
    joined by ``;`` (what ``--attention auto`` may choose); empty for one lowering name for every product. The one
    reader of that format; a pair without ``=`` is a ValueError."""
    if "=" not in text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(";")]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"attention {text!r}: every ';'-joined item must be name=lowering")
    return dict(pairs)


def attention_problem(text: str) -> str | None:
    """Why ``text`` is not a graph's spike-product lowering (None if it is): one of :data:`ATTENTION_LOWERINGS`, or
    ``name=lowering`` pairs joined by ``;``, one per spike product (:func:`attention_pairs`)."""
    try:
        chosen = list(attention_pairs(text).values()) or [text]
    except ValueError:
        chosen = []
    if not chosen or any(c not in ATTENTION_LOWERINGS for c in chosen):
        return (f"attention lowering {text!r} is not one of {', '.join(ATTENTION_LOWERINGS)} (or name=lowering pairs "
                "joined by ';', one per spike product)")
    return None


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
    pipeline_fill: bool = False
    """Neurons step from Lava's first time step, before a sample reaches them (lava-dl's netx run without a
    reset): a population at depth d (:meth:`depths`) runs d steps on its bias, and on whatever earlier populations
    send meanwhile, before the sample's first step arrives. False: every population starts from zero state at the
    sample's first step (the functional model; a netx reset at each layer's first step gives the same)."""
    attention: str = "coincidence"
    """How the chip computes the spike products (``export --attention``, one of :data:`ATTENTION_LOWERINGS`; the
    populations are :mod:`snn_deploy.graph.hardware`'s). Functionally the same integers in every lowering."""

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
        if (problem := attention_problem(self.attention)) is not None:
            raise ValueError(problem)
        if self.reset_interval < 0 or not 0 <= self.reset_offset < max(self.reset_interval, 1):
            raise ValueError(f"reset_interval {self.reset_interval} must be >= 0 and reset_offset "
                             f"{self.reset_offset} in [0, reset_interval)")
        if self.pipeline_fill and self.reset_interval:
            raise ValueError("a pipeline fill is what a run without resets computes; the graph resets every "
                             f"{self.reset_interval} steps")
        for node in self.nodes:
            if isinstance(node, InputNode) and node.drive == "bias":
                readers = [n for n in self.nodes if node.name in n.inputs]
                if not all(isinstance(n, LIFNode) and n.inputs == (node.name,) for n in readers):
                    raise ValueError(f"bias-driven input {node.name!r} can only be read, alone, by LIF nodes")
        self._check_recurrent()
        if self.host:
            self._check_host(seen)

    def _check_recurrent(self) -> None:
        """A recurrent conv reads one LIF with binary spikes, maps its shape onto itself, has no delays and no
        reader (its currents go to that LIF only); indexed by its LIF for :meth:`recurrent_synapses`."""
        read = {i for node in self.nodes for i in node.inputs}
        self._feedback: dict[str, list[ConvNode]] = {}
        for node in self.nodes:
            if not (isinstance(node, ConvNode) and node.recurrent):
                continue
            self._feedback.setdefault(node.inputs[0], []).append(node)
            source = self[node.inputs[0]]
            if (not isinstance(source, LIFNode) or isinstance(source, SigmaDeltaNode) or len(node.inputs) != 1
                    or node.shape != source.shape):
                raise ValueError(f"recurrent conv {node.name!r} must read one LIF node (not sigma-delta) and have "
                                 "its shape")
            if node.graded or node.delay.size or node.name in read:
                raise ValueError(f"recurrent conv {node.name!r} must take binary spikes, have no synaptic delays and "
                                 "no reader (it feeds its LIF)")

    def recurrent_synapses(self, lif: str) -> list[ConvNode]:
        """The recurrent convs feeding LIF ``lif`` back its own spikes one step later."""
        return list(self._feedback.get(lif, ()))

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
            if isinstance(node, LIFNode) and any(c.name not in self.host for c in self.recurrent_synapses(node.name)):
                raise ValueError(f"host LIF {node.name!r} has its recurrent synapses on the chip")

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

    def reset_text(self) -> str:
        """The state reset in words (:func:`reset_text`)."""
        return reset_text(self.reset_interval, self.reset_offset, self.pipeline_fill)

    def of_kind(self, kind: type[Node]) -> list[Node]:
        return [n for n in self.nodes if isinstance(n, kind)]

    def depths(self) -> dict[str, int]:
        """Steps between the input and each node's output in a timed (Lava) build: the longest path's latency.

        Backends that time the network delay every shorter input path to this depth. A recurrent conv feeds back
        into its LIF, not down the pipeline: it has its LIF's depth.
        """
        depth: dict[str, int] = {}
        for node in self.nodes:
            base = max((depth[i] for i in node.inputs), default=0)
            depth[node.name] = base if isinstance(node, ConvNode) and node.recurrent else base + node.latency
        return depth

    def summands(self, name: str) -> list[str]:
        """The spike sources behind a node: itself, or every summand of a (nested) sum node (a sum has no
        hardware of its own: its consumers receive every summand)."""
        node = self[name]
        if isinstance(node, SumNode):
            return [s for i in node.inputs for s in self.summands(i)]
        return [name]

    def consumers(self) -> dict[str, list[str]]:
        """The nodes reading each node's output (a recurrent conv's is read by the LIF it feeds back into)."""
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for i in node.inputs:
                out[i].append(node.name)
            if isinstance(node, ConvNode) and node.recurrent:
                out[node.name].append(node.inputs[0])
        return out


def reset_text(interval: int, offset: int = 0, pipeline_fill: bool = False) -> str:
    """A state reset in words, as ``simulate``, ``report``, ``export`` and ``verify`` print it. Without a periodic
    reset or a pipeline fill every sample still starts from zero state (the functional model): the words say so."""
    if not interval:
        return "none" if pipeline_fill else "none within a sample (every sample starts from zero state)"
    return f"every {interval} steps" + (f", the first after {interval + offset}" if offset else "")


def conv_output_hw(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Output (H, W) of a 2-D convolution (torch's rule): ``(n + 2p - d(k - 1) - 1) // s + 1`` per axis."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1  # type: ignore[return-value]
                 for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation))


def analog_input_layer(graph: Graph) -> frozenset[str]:
    """The analog input layer: every conv reading the input node and the LIFs those convs feed (the first spiking
    layer). ``export --input-on-host`` computes it on the host, so a binary-spike chip receives spikes only."""
    convs = {n.name for n in graph.of_kind(ConvNode) if n.inputs[0] == graph.input.name}
    lifs = {n.name for n in graph.of_kind(LIFNode) if convs & set(n.inputs)}
    recurrent = {c.name for lif in lifs for c in graph.recurrent_synapses(lif)}
    return frozenset(convs | lifs | recurrent)




def input_sequence(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    """Float inputs [B, C, H, W] (repeated T times) or [T, B, C, H, W] -> integer payloads [T, B, C, H, W]
    (:meth:`InputNode.encode`): what every backend is fed."""
    node = graph.input
    if x.dim() == 4:
        x = x.unsqueeze(0).expand(graph.T, *x.shape)
    if x.dim() != 5 or tuple(x.shape[2:]) != node.shape:
        raise ValueError(f"input shape {tuple(x.shape)} does not fit the graph's input {node.shape} "
                         "(expected [B, C, H, W] or [T, B, C, H, W])")
    return torch.from_numpy(node.encode(x.detach().cpu().numpy()))
