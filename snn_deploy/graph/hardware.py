"""The one hardware lowering of a deployed graph: the neuron populations and synapse projections a chip holds.

The graph (:mod:`.nodes`) is functional: a spike product or a residual sum is one node. A chip holds neurons and
synapses. :func:`lower` turns the graph into those, once, for every consumer: the core mapper and the cost model
(``sims/hardware/mapper.py``, ``sims/hardware/cost.py``) price exactly these populations and projections, and the Lava builder
(``sims/backends/lava_build.py``) builds exactly them from Lava processes with Loihi 2 implementations.

* **Populations** (:class:`Population`, :attr:`Population.kind`): ``lif`` - a LIF node (Lava ``LIFReset``);
  ``sum`` - a residual sum as graded relay neurons (``relay``: Lava ``GradedVec``, threshold 0); a spike product's
  arrays in the lowering the graph names (``Graph.attention``, :data:`PRODUCT_LOWERINGS`): ``and``, ``kvrow``, ``kv``,
  ``gate`` (and, serial, ``demux`` and ``clock``; packed, ``kvshift``, ``kvfield``, ``group``, ``shift``,
  ``unpack``). Each population names its neuron model
  (:attr:`Population.neuron`, :data:`NEURON_MODELS`) and so its variant: two-variable (u, v: LIF) or one-variable
  (graded, product, accumulator neurons), which the mapper packs at the profile's per-variant limit.
* **Projections** (:class:`Projection`, :attr:`Projection.kind`): ``conv`` - a conv node's shared kernel (Lava
  ``Conv``); ``sparse`` - a fixed channel map with one weight (Lava ``Sparse``, :func:`sparse_pairs`);
  ``recurrent`` - a recurrent conv back onto its own population (Lava ``Dense``); ``kernel`` - a grouped conv of the
  lowering's own with one weight on every tap (Lava ``Conv``, :func:`kernel_read`: the kv sums, the attention
  gather, the relays' reads), a shared kernel that Loihi 2 receives population-coded. A projection whose source is
  shallower than its population's other inputs carries a synaptic delay (:meth:`Lowering.delay`: Lava
  ``DelaySparse``); that is how path balancing is priced and built. A delayed conv is held unrolled, its non-zero
  weights only (:attr:`Projection.unrolled`); an undelayed one as its shared kernel, zeros included.
* **Host I/O**: the input node and the layers the host computes (``Graph.host``) are spike sources at depth 0,
  not populations; the readout stays on the host.

Timing: every synapse stage takes one step (Lava's ``Conv``/``Sparse``/``Dense`` deliver at t + 1); neurons
answer in the step they receive. A population's depth is one more than its deepest source's
(:func:`population_depths`); a node of the graph shows functional step t at Lava step t + depth.

Products and sums have more than one lowering (``products``: an attention lowering of :data:`PRODUCT_LOWERINGS` -
``coincidence``, ``graded``, ``token-serial``, ``packed`` - or ``embedded`` (the products leave the neuro cores;
priced by the mapper only), :data:`PRODUCT_MODELS`; ``sums``: ``expand`` or ``relay``, :data:`SUM_MODELS`). A
lowering states its populations (the last one is read by the attention LIF) and the chip ticks it needs per
functional step (:attr:`ProductLowering.substeps`; the whole chip then ticks :attr:`Lowering.ticks_per_step` times
per step: docs/attention_lowerings.md has the timing model). Each product may have its own (``products`` as
``name=lowering`` pairs, :func:`product_choices`: what ``--attention auto`` chooses).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from snn_deploy.graph.bounds import current_bounds
from snn_deploy.graph.checks import Problem
from snn_deploy.graph.profiles import HardwareProfile
from snn_deploy.graph.nodes import (
    ATTENTION_LOWERINGS, ConvNode, Graph, InputNode, LIFNode, Shape, SigmaDeltaNode, SpikeProductNode, SumNode,
    attention_pairs,
)

NEURON_MODELS = {"lif": "two-variable", "coincidence": "two-variable", "clock": "two-variable",
                 "graded": "one-variable", "product": "one-variable", "accumulator": "one-variable"}
"""Neuron model of a population -> its variant. ``lif``: a LIF node (Lava ``LIFReset``; u and v); ``coincidence``:
the and-LIF of :data:`COINCIDENCE` (``LIF``); ``clock``: a LIF firing every period on its bias (``LIF``);
``graded``: ``GradedVec`` (v = the step's input, sent as a graded spike); ``product``: ``ProdNeuron``
(v = a_in1 * a_in2); ``accumulator``: ``Sigma`` (v = v + input, sent every tick). On Loihi 2 a one-variable
neuron packs twice as dense as a two-variable one (the profile's ``one_variable_neurons_per_core``)."""
SUM_MODELS = ("expand", "relay")
PROJECTION_KINDS = ("conv", "sparse", "recurrent", "kernel")
COINCIDENCE = {"du": 4095, "dv": 4095, "vth": 1}
"""An ``and`` neuron: currents and voltage forget everything in one step (a value of at most 2 << 6 decays to 0
under ``x (4096 - 4095) >> 12``), two unit inputs give v = 128 > vth << 6 = 64, one gives 64: it fires iff both
spiked in the same step."""


@dataclass(frozen=True)
class ChannelMap:
    """Which source channels a range of target channels reads. Plain data: a kind and one parameter.

    ``groups`` (a = output channels per group, b = input channels per group): a grouped conv; ``identity``;
    ``pair_first`` / ``pair_second`` (a = head dim d): a target channel (g, j, i) of a product array, flattened
    ``g d^2 + j d + i``, reads source channel ``g d + i`` / ``g d + j``; ``gather`` (a = d): target channel c reads
    source channels ``[c d, (c + 1) d)``.
    """

    kind: str
    a: int = 1
    b: int = 1
    group: int = 1
    """``packed`` maps: channels summed per group (g of :class:`Packing`)."""
    field: int = 0
    """``packed`` maps: the field (f of :class:`Packing`) this projection reads or writes."""

    def sources(self, c0: int, c1: int) -> np.ndarray:
        """Sorted distinct source channels read by target channels ``[c0, c1)``."""
        if self.kind in PACKED_MAPS:
            return np.unique(np.concatenate([np.arange(0)] + [_packed_sources(self, t) for t in range(c0, c1)]))
        if self.kind == "groups":
            return np.arange(c0 // self.a * self.b, ((c1 - 1) // self.a + 1) * self.b)
        if self.kind == "identity":
            return np.arange(c0, c1)
        if self.kind == "gather":
            return np.arange(c0 * self.a, c1 * self.a)
        f = np.arange(c0, c1)
        d = self.a
        if self.kind == "pair_first":
            return np.unique(f // (d * d) * d + f % d)
        if self.kind == "pair_second":
            return np.unique(f // d)
        raise ValueError(f"unknown channel map {self.kind!r}")

    @property
    def per_channel(self) -> int:
        """Source channels one target channel reads (a ``packed`` map: the most any target reads, an upper bound
        where targets of a missing or other field read none)."""
        return {"groups": self.b, "gather": self.a}.get(self.kind, 1)


@dataclass(frozen=True)
class Projection:
    """Synapses into a population from one source: channel map plus a conv-like spatial geometry.

    ``stride`` (0, 0) broadcasts a 1 x 1 source to every position. ``shared_per_channel``: kernel weights a core
    stores per target channel when kernels are shared (0: every synapse is stored, sharing or not).
    """

    synapse: str
    """The graph node whose synaptic operations these are (a conv), or the product array step (``<product>.and``)."""
    source: str
    source_shape: Shape
    channels: ChannelMap
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    weight_bits: int = 1
    shared_per_channel: int = 0
    kind: str = "sparse"
    """``conv`` (the synapse node's kernel), ``sparse`` (the channel map with :attr:`weight` on every synapse),
    ``recurrent`` (the synapse node's kernel from the population back onto itself) or ``kernel`` (a ``groups``
    channel map and :attr:`kernel` window with :attr:`weight` on every tap, held as a shared kernel:
    :func:`kernel_read`); see :data:`PROJECTION_KINDS`."""
    weight: int = 1
    """The weight of every synapse of a ``sparse`` or ``kernel`` projection."""
    taps: tuple[int, ...] = ()
    """A ``kernel`` projection whose weights differ per tap: its 1 x 1 kernel's weights per (output channel, input
    channel) of one group, flat, the same in every group; a ``sparse`` packed map's weight per target field
    (:func:`pair_weights`; zero: no synapse). Empty: :attr:`weight` on every synapse."""
    weight_exp: int = 0
    """A ``sparse`` projection's weight exponent (Lava's ``weight_exp``): ``W @ s`` shifted left, or below 0 right
    (floor), per target (:func:`sparse_weight`). Lava's ``Conv`` has none: a ``kernel`` projection keeps 0."""
    unrolled: tuple[int, ...] = ()
    """A ``conv`` that carries a synaptic delay cannot share its kernel: a chip holds it unrolled (Lava
    ``DelaySparse`` of :func:`conv_pairs`), zero weights left out. Then its non-zero weights per (target channel,
    kernel row, kernel column), flat; empty for a shared kernel (Lava ``Conv``, every kernel tap)."""
    delay: int = 0
    """Synaptic delay of every synapse that is part of the lowering itself (a serial window's subtraction), built
    on top of the path-balancing delay (:meth:`Lowering.delay`)."""
    wait: int = 0
    """Ticks after its first event that the population's step is complete (a serial stream's length - 1): counted in
    the population's depth, not in the synapses' delays."""
    stream: str = ""
    """Token-serial streaming: ``forward`` delays each synapse by its token's index within its lane (tokens leave a
    lane one tick apart), ``reverse`` by (lane length - 1 - index) (tokens re-aligned); the token is the position
    on the side whose map is :attr:`lane`'s product map. ``""``: none."""
    lane: tuple[int, int] = (0, 0)
    """(rows, columns) of one lane of a token-serial stream: its tokens in row-major order are its sub-steps."""
    periodic: bool = False
    """From a ``clock``: its delay is taken modulo the ticks per step (the clock fires once every step), and it
    does not count in the population's depth."""

    @property
    def max_delay(self) -> int:
        """The largest synaptic delay of the lowering's own (before path balancing)."""
        return self.delay + (self.lane[0] * self.lane[1] - 1 if self.stream else 0)


@dataclass(frozen=True)
class Population:
    """Neurons mapped as one layer: a LIF node, a sum node's relay, or one array of a spike product's
    coincidence-neuron model."""

    name: str
    kind: str
    """``lif``; ``sum`` for a relay of a residual sum; ``and`` / ``kvrow`` / ``kv`` / ``gate`` for a spike
    product's arrays."""
    node: str
    """The graph node it implements (the LIF, or the spike product)."""
    shape: Shape
    projections: tuple[Projection, ...]
    neuron: str = "lif"
    """Its neuron model (:data:`NEURON_MODELS`)."""
    bias: int = 0
    """A ``clock``'s period in ticks (it fires every ``bias`` ticks on its bias); 0 otherwise."""

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def graded(self) -> bool:
        """Whether its neurons send graded spikes (one-variable neurons) rather than binary ones."""
        return self.variant == "one-variable"

    @property
    def variant(self) -> str:
        """``two-variable`` (LIF: u and v) or ``one-variable`` (graded, product, accumulator neurons)."""
        return NEURON_MODELS[self.neuron]



def weight_bits(weight: np.ndarray) -> int:
    """Bits a core stores per synapse for these integer weights, in Loihi's format as Lava encodes it: a common
    power-of-two factor goes into the weight exponent, single-sign weights store magnitudes (the sign is a mode of
    the synapse group), mixed-sign weights store two's complement (so Lava's even [-256, 254] fit 8 bits)."""
    nonzero = np.abs(weight[weight != 0]).astype(np.int64)
    if nonzero.size == 0:
        return 1
    shift = int(np.bitwise_or.reduce(nonzero) & -np.bitwise_or.reduce(nonzero)).bit_length() - 1
    scaled = weight.astype(np.int64) >> shift
    if (weight > 0).any() and (weight < 0).any():
        return max(int(scaled.max()).bit_length(), int(-scaled.min() - 1).bit_length()) + 1
    return int(np.abs(scaled).max()).bit_length()


def _conv_projections(graph: Graph, conv: ConvNode, sums: str) -> list[Projection]:
    c_out, c_in_group = conv.weight.shape[:2]
    kh, kw = conv.weight.shape[2:]
    cmap = ChannelMap("groups", c_out // conv.groups, c_in_group)
    sources = graph.summands(conv.inputs[0]) if sums == "expand" else [conv.inputs[0]]
    kind = "recurrent" if conv.recurrent else "conv"
    return [Projection(conv.name, s, graph[s].shape, cmap, (kh, kw), conv.stride, conv.padding,
                       weight_bits(conv.weight), c_in_group * kh * kw, kind) for s in sources]


def kernel_read(synapse: str, source: str, source_shape: Shape, kernel: tuple[int, int] = (1, 1), per_group: int = 1,
                weight: int = 1, out_per_group: int = 1, taps: tuple[int, ...] = ()) -> Projection:
    """A ``kernel`` projection: a grouped conv of the lowering's own, one output channel per group reading
    ``per_group`` consecutive source channels over a ``kernel`` window (stride 1, no padding), ``weight`` on every
    tap. Its kernel is shared (``shared_per_channel`` taps per target channel), so Loihi 2 receives it on one
    population-coded axon where its target is spatial (``sims/hardware/mapper.py`` ``population_coded``); Lava
    builds it as ``Conv`` with that constant kernel, or as ``DelaySparse`` of :func:`sparse_pairs` where it needs a
    delay (then held unrolled, :func:`_held`). ``out_per_group`` output channels per group with ``taps``: a 1 x 1
    kernel's weights per (output, input) channel of a group, the same in every group (:attr:`Projection.taps`)."""
    if taps and (kernel != (1, 1) or len(taps) != out_per_group * per_group):
        raise ValueError(f"{synapse}: taps need a 1 x 1 kernel of {out_per_group} x {per_group} weights")
    return Projection(synapse, source, source_shape, ChannelMap("groups", out_per_group, per_group), kernel,
                      weight_bits=weight_bits(np.array(taps or [weight])),
                      shared_per_channel=per_group * kernel[0] * kernel[1], kind="kernel", weight=weight, taps=taps)


def _relay(node: SumNode) -> Population:
    """A sum node as graded relay neurons: each adds its inputs' events in a step and sends the total as one graded
    spike (no memory; one step of latency). Each summand is read as a depthwise 1 x 1 kernel of weight 1
    (:func:`kernel_read`: population-coded on a spatial map)."""
    return Population(node.name, "sum", node.name, node.shape, tuple(
        kernel_read(node.name, i, node.shape) for i in node.inputs), "graded")


def product_arrays(graph: Graph, node: SpikeProductNode, period: int = 1, pair: str = "coincidence"
                   ) -> list[Population]:
    """The ``coincidence`` lowering of ``out = q (k^T v)`` per head (d = head dim, N = H W tokens); with
    ``pair="product"`` the ``graded`` one (the ``and`` array as one-variable ``ProdNeuron``: k v is 1 iff both
    spiked, a graded spike of payload 1).

    * ``and`` (heads N d^2 neurons, channel (g, j, i) at each token): fires iff k[token, i] and v[token, j] spiked
      (two 1-bit synapses, threshold between 1 and 2; or their product).
    * ``kvrow`` (heads d^2 W, graded relays): sums the H ``and`` neurons of its token column each step (a depthwise
      (H, 1) kernel of weight 1 onto a spatial map: population-coded) and sends the count as a graded spike.
    * ``kv`` (heads d^2): sums its W ``kvrow`` inputs (a depthwise (1, W) kernel) and sends the count as a graded
      spike (no memory).
    * ``gate`` (heads N d^2): forwards kv[i, j] as a graded spike when q[token, i] spiked (a programmable neuron).
    * the attention LIF then sums its d gates (weight = the product's multiplier): channel g d + j reads the d
      consecutive gates (g, j, 0..d-1), a grouped 1 x 1 kernel (:func:`attention_read`).
    Every stage adds a step; q is delayed by three steps with synaptic delays so it meets its kv.
    """
    q, k, v = node.inputs
    c, h, w = node.shape
    d = c // node.heads
    pairs = node.heads * d * d
    spatial = (pairs, h, w)
    one = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0), "weight_bits": 1}
    name = node.name
    return [
        Population(f"{name}.and", "and", name, spatial, (
            Projection(f"{name}.and", k, graph[k].shape, ChannelMap("pair_first", d), **one),
            Projection(f"{name}.and", v, graph[v].shape, ChannelMap("pair_second", d), **one)), pair),
        Population(f"{name}.kvrow", "kvrow", name, (pairs, 1, w), (
            kernel_read(f"{name}.kvrow", f"{name}.and", spatial, (h, 1)),), "graded"),
        Population(f"{name}.kv", "kv", name, (pairs, 1, 1), (
            kernel_read(f"{name}.kv", f"{name}.kvrow", (pairs, 1, w), (1, w)),), "graded"),
        Population(f"{name}.gate", "gate", name, spatial, (
            Projection(f"{name}.gate", q, graph[q].shape, ChannelMap("pair_first", d), **one),
            Projection(f"{name}.gate", f"{name}.kv", (pairs, 1, 1), ChannelMap("identity"), stride=(0, 0),
                       weight_bits=1)), "product"),
    ]


def attention_read(node: SpikeProductNode, last: Population) -> Projection:
    """How the attention LIF reads a product's last population, weight = the product's multiplier: gathering the d
    gates of its channel (a grouped 1 x 1 kernel, :func:`kernel_read`), or (token-serial) its own demultiplexer,
    each token re-aligned to one tick."""
    bits = weight_bits(np.array([node.multiplier]))
    name = f"{node.name}.attn"
    if last.kind == "unpack":  # the packed lowering's fields of its G channel groups, consecutive
        return kernel_read(name, last.name, last.shape, per_group=last.shape[0] // node.shape[0],
                           weight=node.multiplier)
    if last.kind == "demux":
        rows, cols, tokens = _lane(node)
        return Projection(name, last.name, last.shape, ChannelMap("identity"), weight_bits=bits,
                          weight=node.multiplier, wait=tokens - 1, stream="reverse", lane=(rows, cols))
    return kernel_read(name, last.name, last.shape, per_group=node.shape[0] // node.heads, weight=node.multiplier)


def graded_arrays(graph: Graph, node: SpikeProductNode, period: int = 1) -> list[Population]:
    """The ``graded`` lowering: :func:`product_arrays` with every array one-variable (``and`` as ``ProdNeuron``)."""
    return product_arrays(graph, node, period, pair="product")


WEIGHT_EXP_RANGE = (-8, 7)
"""Synaptic weight exponents a projection may use, (lowest, highest): **estimated**. Loihi 1's is -8..7 (the
synapse's weight exponent as the Brian2Loihi emulator, matched to Loihi, documents it: README of
sagacitysite/brian2_loihi, ``LoihiSynapses`` ``w_exp``); Loihi 2's range is not published (Lava's ``Dense`` /
``Sparse`` take any ``weight_exp``), so the ``packed`` lowering keeps every exponent within Loihi 1's and splits
larger right shifts over relay stages (:class:`Packing`)."""
PACKED_MAPS = ("word", "field", "unpack", "kvfield", "kvlevel", "kvpack", "half")
"""Channel maps of the ``packed`` lowering (:func:`packed_arrays` has their layouts)."""


def sparse_weight(weight: int | np.ndarray, weight_exp: int = 0) -> tuple[np.ndarray, int]:
    """(mantissas, exponent) of a ``sparse`` projection's weights as Lava's ``Sparse`` holds them: a power-of-two
    factor of weights beyond 8 bits moves into the exponent (an exponent Lava applies to ``W @ s`` per target,
    ``<<`` or, below 0, an arithmetic ``>>``: floor)."""
    weight, exp = np.atleast_1d(np.asarray(weight, dtype=np.int64)), weight_exp
    while weight.size and not (weight & 1).any() and np.abs(weight).max() > 255:
        weight, exp = weight >> 1, exp + 1
    return weight, exp


@dataclass(frozen=True)
class Packing:
    """How the ``packed`` lowering packs one product (N tokens, head dim d). The gate stage: ``fields`` (F) fields
    of ``bits`` (b) bits per graded payload, its words summed over groups of ``group`` (g) channels before they are
    unpacked (fields <= g N < 2^b). The ``and`` / ``kv`` stage: ``kv_fields`` (F1) fields of ``kv_bits`` (b1) bits
    (kv counts <= N < 2^b1; 0: the gate's widths), re-packed for the gate where they differ. Packed words add
    without carries; F b <= 23 keeps a word under Loihi 2's 24-bit signed payload."""

    bits: int
    fields: int
    group: int
    kv_bits: int = 0
    kv_fields: int = 0

    @property
    def kv(self) -> Packing:
        """The ``and`` / ``kv`` stage's widths as a packing of their own."""
        return Packing(self.kv_bits, self.kv_fields, 1) if self.kv_fields else Packing(self.bits, self.fields, 1)

    @property
    def repacked(self) -> bool:
        """Whether kv's words are unpacked and packed again for the gate (their widths differ)."""
        return (self.kv.bits, self.kv.fields) != (self.bits, self.fields)

    def words(self, d: int) -> int:
        """Words per channel c: ceil(d / F)."""
        return -(-d // self.fields)

    def groups(self, d: int) -> int:
        """Channel groups per word: d / g."""
        return -(-d // self.group)

    def stages(self) -> int:
        """Relay stages of one right shift by b bits, each within :data:`WEIGHT_EXP_RANGE`."""
        return -(-self.bits // -WEIGHT_EXP_RANGE[0])

    def shifts(self) -> list[int]:
        """The right shift of each relay stage that takes a level's word to the next level's (b in all)."""
        step = -WEIGHT_EXP_RANGE[0]
        return [min(step, self.bits - i * step) for i in range(self.stages())]

    def relays(self) -> list[tuple[int, int, int]]:
        """(level, stage, total right shift) of every shift relay stage (:func:`_levels`): level l's stage s holds
        floor(word / 2^total)."""
        cum = np.cumsum(self.shifts())
        return [(level, stage, self.bits * (level - 1) + int(cum[stage]))
                for level in range(1, self.fields) for stage in range(self.stages())]

    def word_max(self, count: int) -> int:
        """The largest packed word whose every field holds at most ``count``."""
        return sum(count << (self.bits * f) for f in range(self.fields))

    def neurons(self, tokens: int, d: int) -> int:
        """Neurons per head: ``and`` N d W1, ``kv`` d W1, re-packing (kv's shift relays d W1 per stage of F1 - 1
        levels, kv's fields d^2), ``gate`` N d W, the group sums N G W and their shift relays N G W per stage of
        F - 1 levels, the unpacked fields N G d (``kvrow``'s d W1 per token column left out)."""
        words, groups, kv = self.words(d), self.groups(d), self.kv
        kv_words = kv.words(d)
        repack = d * kv_words * (kv.fields - 1) * kv.stages() + d * d if self.repacked else 0
        carried = self.stages() if self.carries(d) else 0  # the copies of X beside the shifts
        return (tokens + 1) * d * kv_words + repack + tokens * d * words \
            + tokens * groups * words * (1 + (self.fields - 1) * self.stages() + carried) + tokens * groups * d

    def carries(self, d: int) -> bool:
        """Whether the shift relays carry a copy of the group sums beside their shifted half (two fields, F
        dividing d: :func:`_carried_shift`), so the unpacking reads one population, undelayed."""
        return self.fields == 2 and d % 2 == 0

    def largest(self, tokens: int, d: int) -> dict[str, int]:
        """The largest value each population holds or sends, for every input (all-ones included). A synaptic sum
        is no larger: ``and`` v's fields (< 2^(b1 F1)), ``kv`` and ``group`` their values, a shift's input its
        level's word, an unpacked field one level's word and minus 2^b the next one's (< 2^(b F) in magnitude
        each)."""
        kv = self.kv
        return {"and": kv.word_max(1), "kv": kv.word_max(tokens), "gate": self.word_max(tokens),
                "group": self.word_max(min(self.group, d) * tokens), "unpack": min(self.group, d) * tokens}

    def exponents(self) -> list[int]:
        """Every weight exponent the lowering's projections use (words packed, the shifts, the unpacking; of kv's
        words too where they are re-packed)."""
        stages = [self.kv, self] if self.repacked else [self]
        out = [sparse_weight(1 << (p.bits * f))[1] for p in stages for f in range(p.fields)]
        return out + [e for p in stages if p.fields > 1
                      for e in [-s for s in p.shifts()] + [sparse_weight(-(1 << p.bits))[1]]]

    def problems(self, tokens: int, d: int) -> list[str]:
        """What would not be exact on Loihi 2: a field too narrow for its counts, a value over 24 bits, an exponent
        outside :data:`WEIGHT_EXP_RANGE`."""
        out = []
        if min(self.group, d) * tokens >= 1 << self.bits:
            out.append(f"{self.bits}-bit fields cannot hold a group sum of up to {min(self.group, d) * tokens:,}")
        if tokens >= 1 << self.kv.bits:
            out.append(f"{self.kv.bits}-bit kv fields cannot hold a count of up to {tokens:,}")
        out += [f"the {name} reaches {value:,}, over Loihi 2's 24-bit {PAYLOAD_MAX:,}"
                for name, value in self.largest(tokens, d).items() if value > PAYLOAD_MAX]
        low, high = WEIGHT_EXP_RANGE
        out += [f"a weight exponent of {e} is outside {low}..{high}" for e in self.exponents() if not low <= e <= high]
        return out


def choose_packing(tokens: int, d: int) -> Packing | None:
    """The :class:`Packing` with the fewest neurons per head among those that are exact (:meth:`Packing.problems`
    empty): b the bits of g N, F fields (F b <= 23, F <= d), g channels per group (g divides d: a group is read as
    one grouped kernel); kv's words at the gate's widths or, re-packed, F1 fields of b1 = the bits of N; ties to
    fewer relay stages, then fewer fields, then no re-packing. None where nothing fits (N >= 2^23). F = 1
    degenerates to ``graded``'s arrays plus the unpacked outputs."""
    best = None
    kv_bits = tokens.bit_length()
    for group in (g for g in range(1, d + 1) if d % g == 0):
        bits = (group * tokens).bit_length()
        for fields in range(1, min(d, 23 // max(bits, 1)) + 1):
            for kv_fields in range(0, min(d, 23 // max(kv_bits, 1)) + 1):
                packing = Packing(bits, fields, group, kv_bits if kv_fields else 0, kv_fields)
                if (kv_fields and not packing.repacked) or packing.problems(tokens, d):
                    continue
                key = (packing.neurons(tokens, d), packing.stages() * (fields - 1), fields, packing.repacked, group)
                if best is None or key < best[0]:
                    best = (key, packing)
    return None if best is None else best[1]


def _packed_sources(cmap: ChannelMap, t: int) -> np.ndarray:
    """Source channels of target channel ``t`` of a ``packed`` map (layouts: :func:`packed_arrays`)."""
    if cmap.kind == "half":  # a = G, b = the source's halves: t = (block, half, group) reads the source's last
        groups, halves = cmap.a, cmap.b  # half of (block, group) if half = field
        block, half, g = t // (2 * groups), t // groups % 2, t % groups
        return np.array([(block * halves + halves - 1) * groups + g]) if half == cmap.field else np.arange(0)
    d, fields, group = cmap.a, cmap.b, cmap.group
    words, groups = -(-d // fields), -(-d // group)
    if cmap.kind in ("kvfield", "kvlevel"):  # t = (head, c, e) reads kv's word (head, w, c) if e = w F + field
        head, c, e = t // (d * d), t // d % d, t % d  # (kvlevel: or field - 1, the field below reads it too)
        w, f = divmod(e, fields)
        reads = f == cmap.field or (cmap.kind == "kvlevel" and f == cmap.field - 1)
        return np.array([(head * words + w) * d + c]) if reads else np.arange(0)
    if cmap.kind == "kvpack":  # t = (head, w, c) reads kv's field (head, c, w F + field)
        head, w, c = t // (words * d), t // d % words, t % d
        e = w * fields + cmap.field
        return np.array([(head * d + c) * d + e]) if e < d else np.arange(0)
    if cmap.kind in ("word", "field"):  # t = (head, w, c)
        head, w, c = t // (words * d), t // d % words, t % d
        if cmap.kind == "word":
            return np.array([head * d + c])
        e = w * fields + cmap.field
        return np.array([head * d + e]) if e < d else np.arange(0)
    head, e, g = t // (d * groups), t // groups % d, t % groups  # unpack: t = (head, e, group), e = w F + f, reads
    w, f = divmod(e, fields)  # the relay (head, w, group)
    return np.array([(head * words + w) * groups + g]) if f == cmap.field else np.arange(0)


def product_packing(node: SpikeProductNode) -> Packing | None:
    """The packing the ``packed`` lowering uses for ``node`` (:func:`choose_packing` of its N and d)."""
    c, h, w = node.shape
    return choose_packing(h * w, c // node.heads)


def _levels(prefix: str, kind: str, node: str, word: str, shape: Shape, packing: Packing) -> list[Population]:
    """Shift relays (``GradedVec``) of a packed ``word`` population: level l = floor(word / 2^(b l)) for l = 1 ..
    F - 1, each level from the one before in :meth:`Packing.stages` stages (``Sparse`` with a negative weight
    exponent: an arithmetic right shift); the last stage of each level, ``<prefix><level>.<stages - 1>``, holds
    it."""
    out, source = [], word
    for level in range(1, packing.fields):
        for stage, shift in enumerate(packing.shifts()):
            relay = f"{prefix}{level}.{stage}"
            out.append(Population(relay, kind, node, shape, (
                Projection(relay, source, shape, ChannelMap("identity"), weight_exp=-shift),), "graded"))
            source = relay
    return out


def _unpacking(target: str, levels: list[str], shape: Shape, kind: str, maps: dict[str, int], bits: int
               ) -> list[Projection]:
    """The reads of unpacked fields from a word's ``levels`` (level 0 the word itself): field f = level f minus
    2^b level f + 1 (the top field: its level alone), a ``kind`` channel map per field. kv's fields (``kvfield``)
    read each level once where 2^b fits a mixed-sign 9-bit weight (Lava's [-256, 254]): weight 1 into its own
    field and -2^b into the one below (``kvlevel``, taps per target field), one input axon per level and word."""
    reads = [Projection(target, levels[0], shape, ChannelMap(kind, **maps, field=0))]
    for level in range(1, len(levels)):
        if kind == "kvfield" and bits <= 8:
            taps = tuple(1 if f == level else -(1 << bits) if f == level - 1 else 0 for f in range(maps["b"]))
            reads.append(Projection(target, levels[level], shape, ChannelMap("kvlevel", **maps, field=level),
                                    weight_bits=weight_bits(np.array(taps)), taps=taps))
            continue
        reads += [Projection(target, levels[level], shape, ChannelMap(kind, **maps, field=level)),
                  Projection(target, levels[level], shape, ChannelMap(kind, **maps, field=level - 1),
                             weight=-(1 << bits))]
    return reads


def _carried_shift(prefix: str, node: str, word: str, shape: Shape, packing: Packing, groups: int
                   ) -> list[Population]:
    """Two-field shift relays that carry the word along: each stage, layout (block, half, group), holds in half 0 a
    copy of the group sum X (a grouped 1 x 1 kernel, population-coded) and in half 1 its right shift (``Sparse``,
    negative weight exponent, :data:`PACKED_MAPS` ``half``), so the last stage holds X and floor(X / 2^b) at the
    same tick. The copies fill the neuron room the shifts leave (their cores are bound by input axons)."""
    c, h, w = shape
    wide = (2 * c, h, w)
    out, source, source_shape, halves = [], word, shape, 1
    for stage, shift in enumerate(packing.shifts()):
        relay = f"{prefix}.{stage}"
        copy = tuple(int(half == 0 and source_half == 0 and i == j)  # (out (half, j), in (source half, i))
                     for half in range(2) for j in range(groups) for source_half in range(halves)
                     for i in range(groups))
        out.append(Population(relay, "carry", node, wide, (
            kernel_read(relay, source, source_shape, per_group=halves * groups, out_per_group=2 * groups, taps=copy),
            Projection(relay, source, source_shape, ChannelMap("half", groups, halves, field=1), weight_exp=-shift)),
            "graded"))
        source, source_shape, halves = relay, wide, 2
    return out


def _unpacking_kernels(target: str, levels: list[str], shape: Shape, fields: int, groups: int, bits: int
                       ) -> list[Projection]:
    """:func:`_unpacking`'s reads of the gate's levels as grouped 1 x 1 kernels (one group per word: its G relays
    in, its F G unpacked fields out, layouts (w, group) and (e, group) with F dividing d): field f of group j reads
    relay j of level f (weight 1) and of level f + 1 (weight -2^b, a kernel of its own: one weight magnitude per
    kernel), population-coded on Loihi 2 where undelayed."""
    def taps(field: int) -> tuple[int, ...]:  # (output (f, j), input i): 1 where f = field and j = i
        return tuple(int(f == field and i == j) for f in range(fields) for j in range(groups) for i in range(groups))

    out = {"per_group": groups, "out_per_group": fields * groups}
    reads = [kernel_read(target, levels[0], shape, **out, taps=taps(0))]
    for level in range(1, fields):
        reads += [kernel_read(target, levels[level], shape, **out, taps=taps(level)),
                  kernel_read(target, levels[level], shape, **out, weight=-(1 << bits),
                              taps=tuple(-(1 << bits) * t for t in taps(level - 1)))]
    return reads


def packed_arrays(graph: Graph, node: SpikeProductNode, period: int = 1) -> list[Population]:
    """The ``packed`` lowering of ``out = q (k^T v)`` per head: F fields of b bits per graded payload
    (:func:`product_packing`), so one product neuron carries F products; the ``and`` / ``kv`` stage may use F1
    fields of b1 bits (kv counts need fewer bits than the gate's group sums), re-packed for the gate. W = ceil(d / F)
    words per channel (W1 = ceil(d / F1)), G = d / g groups; channel layouts per head: ``and`` / ``kvrow`` /
    ``kv`` / ``gate`` (w, c), relays (w, group), ``unpack`` (e, group): each group and each attention channel reads
    consecutive channels (grouped kernels, :func:`kernel_read`, population-coded on Loihi 2).

    * ``and`` (heads N d W1, ``ProdNeuron``): k[token, c] times v's packed word P_w = sum_f v[token, w F1 + f] <<
      b1 f (one projection per field f into the second operand, weight 2^(b1 f)).
    * ``kvrow`` (heads d W1 per token column) and ``kv`` (heads d W1, ``GradedVec``): the sum over tokens in two
      kernel stages, as ``graded``'s: the packed word of the counts k^T v[c, w F1 + f] <= N.
    * re-packed where (b1, F1) != (b, F) (``GradedVec``, one neuron per kv word, pair or gate word): ``kvshift``
      levels of kv's words, ``kvfield`` k^T v[c, e] (unpacked as ``unpack`` below).
    * ``gate`` (heads N d W, ``ProdNeuron``): q[token, c] times kv's word (c, w), or re-packed: times
      sum_f k^T v[c, w F + f] << b f (one projection per field into the second operand).
    * ``group`` (heads N G W, ``GradedVec``): X = the sum of the group's g gates of word w (fields <= g N < 2^b):
      level 0 (a grouped 1 x 1 kernel).
    * ``shift`` relays (heads N G W per stage, ``GradedVec``): level l holds floor(X / 2^(b l)), each level from
      the one before, each shift of b bits split into stages within :data:`WEIGHT_EXP_RANGE` (Lava's ``Sparse``
      with a negative ``weight_exp``: an arithmetic right shift of ``W @ s``); with two fields and F dividing d
      ``carry`` relays (heads 2 N G W per stage, :func:`_carried_shift`): a copy of X beside the shift.
    * ``unpack`` (heads N G d, ``GradedVec``): per group, field f of its word w: level f minus 2^b level f + 1
      (every input and the sum within 24 bits): grouped 1 x 1 kernels with per-tap weights where F divides d (from
      the last ``carry`` stage, or :func:`_unpacking_kernels`), else channel maps.
    * the attention LIF sums its G unpacked fields (weight = the product's multiplier, a grouped 1 x 1 kernel):
      out[token, w F + f].
    Every stage adds a tick; path balancing (:meth:`Lowering.delay`) delays q and the shallower levels.
    """
    q, k, v = node.inputs
    c, h, w = node.shape
    d = c // node.heads
    packing = product_packing(node)
    if packing is None:
        raise ValueError(f"{node.name}: no packing fits {h * w:,} tokens in 24-bit payloads (payload_problems)")
    b, fields, group, kv = packing.bits, packing.fields, packing.group, packing.kv
    words, groups, kv_words = packing.words(d), packing.groups(d), kv.words(d)
    channels, kv_channels = node.heads * words * d, node.heads * kv_words * d
    word_shape, kv_shape = (channels, h, w), (kv_channels, h, w)
    relay_shape = (node.heads * words * groups, h, w)
    maps, kv_maps = {"a": d, "b": fields, "group": group}, {"a": d, "b": kv.fields}
    name = node.name
    pops = [
        Population(f"{name}.and", "and", name, kv_shape, (
            Projection(f"{name}.and", k, graph[k].shape, ChannelMap("word", **kv_maps)),
            *(Projection(f"{name}.and", v, graph[v].shape, ChannelMap("field", **kv_maps, field=f),
                         weight=1 << kv.bits * f) for f in range(kv.fields))), "product"),
        Population(f"{name}.kvrow", "kvrow", name, (kv_channels, 1, w), (
            kernel_read(f"{name}.kvrow", f"{name}.and", kv_shape, (h, 1)),), "graded"),
        Population(f"{name}.kv", "kv", name, (kv_channels, 1, 1), (
            kernel_read(f"{name}.kv", f"{name}.kvrow", (kv_channels, 1, w), (1, w)),), "graded"),
    ]
    kv_words = [Projection(f"{name}.gate", f"{name}.kv", (channels, 1, 1), ChannelMap("identity"), stride=(0, 0))]
    if packing.repacked:  # kv's fields unpacked (levels by right shifts, as the gate's below), packed again into
        one = (kv_channels, 1, 1)  # the gate's second operand
        pops += _levels(f"{name}.kvshift", "kvshift", name, f"{name}.kv", one, kv)
        levels = [f"{name}.kv"] + [f"{name}.kvshift{level}.{kv.stages() - 1}" for level in range(1, kv.fields)]
        fields_shape = (node.heads * d * d, 1, 1)
        pops.append(Population(f"{name}.kvfield", "kvfield", name, fields_shape, tuple(
            _unpacking(f"{name}.kvfield", levels, one, "kvfield", kv_maps, kv.bits)), "graded"))
        kv_words = [Projection(f"{name}.gate", f"{name}.kvfield", fields_shape, ChannelMap("kvpack", **maps, field=f),
                               stride=(0, 0), weight=1 << b * f) for f in range(fields)]
    pops.append(Population(f"{name}.gate", "gate", name, word_shape, (
        Projection(f"{name}.gate", q, graph[q].shape, ChannelMap("word", **maps)), *kv_words), "product"))
    pops.append(Population(f"{name}.group", "group", name, relay_shape, (
        kernel_read(f"{name}.group", f"{name}.gate", word_shape, per_group=group),), "graded"))
    if packing.carries(d):  # field 0 = X - 2^b floor(X / 2^b), field 1 = floor(X / 2^b), both from the last stage
        pops += _carried_shift(f"{name}.shift1", name, f"{name}.group", relay_shape, packing, groups)
        last, wide = pops[-1].name, pops[-1].shape
        index = [(f, j, half, i) for f in range(2) for j in range(groups) for half in range(2) for i in range(groups)]
        both = {"per_group": 2 * groups, "out_per_group": 2 * groups}
        reads = [kernel_read(f"{name}.unpack", last, wide, **both, taps=tuple(
                     int(i == j and half == f) for f, j, half, i in index)),
                 kernel_read(f"{name}.unpack", last, wide, **both, weight=-(1 << b), taps=tuple(
                     -(1 << b) * int(i == j and f == 0 and half == 1) for f, j, half, i in index))]
    else:
        pops += _levels(f"{name}.shift", "shift", name, f"{name}.group", relay_shape, packing)
        levels = [f"{name}.group"] + [f"{name}.shift{level}.{packing.stages() - 1}" for level in range(1, fields)]
        reads = (_unpacking_kernels(f"{name}.unpack", levels, relay_shape, fields, groups, b) if d % fields == 0
                 else _unpacking(f"{name}.unpack", levels, relay_shape, "unpack", maps, b))
    pops.append(Population(f"{name}.unpack", "unpack", name, (node.heads * d * groups, h, w), tuple(reads), "graded"))
    return pops


def product_choices(graph: Graph, products: str | None = None) -> dict[str, str]:
    """The lowering of every spike product of ``graph``: ``products`` is one of :data:`PRODUCT_MODELS` for all of
    them, or ``name=lowering`` pairs joined by ``;`` naming every product (what ``--attention auto`` chooses and
    the manifest records: :func:`products_text`)."""
    products = products or graph.attention
    names = [n.name for n in graph.of_kind(SpikeProductNode)]
    if "=" not in products:
        if products not in PRODUCT_MODELS:
            raise ValueError(f"products must be one of {PRODUCT_MODELS}, got {products!r}")
        return dict.fromkeys(names, products)
    pairs = attention_pairs(products)
    wrong = sorted(set(pairs) ^ set(names))
    if wrong:
        raise ValueError(f"products names {', '.join(wrong)}: not the graph's spike products {', '.join(names)}")
    for name, choice in pairs.items():
        if choice not in PRODUCT_MODELS:
            raise ValueError(f"spike product {name}: lowering must be one of {PRODUCT_MODELS}, got {choice!r}")
    return {name: pairs[name] for name in names}


def lowering_name(products: str) -> str:
    """A ``products`` text for people: the lowering's name, or for per-product choices ("mixed") how many products
    take each (the full choice is in the manifest and report.json)."""
    counts = Counter(attention_pairs(products).values())
    if not counts:
        return products
    return "mixed (" + ", ".join(f"{n} {lowering}" for lowering, n in counts.items()) + ")"


def products_text(choices: dict[str, str]) -> str:
    """The ``products`` text of per-product lowerings: the one name where all agree (or there are none)."""
    kinds = set(choices.values())
    if len(kinds) <= 1:
        return next(iter(kinds), PRODUCT_MODELS[0])
    return ";".join(f"{name}={choice}" for name, choice in choices.items())


def _lif_populations(graph: Graph, lif: LIFNode, products: dict[str, str], sums: str, period: int
                     ) -> list[Population]:
    """The LIF's population, preceded by the arrays of a spike product it reads in the coincidence-neuron model."""
    out: list[Population] = []
    projections: list[Projection] = []
    for name in lif.inputs:
        source = graph[name]
        if isinstance(source, InputNode) and source.drive == "bias":
            continue  # driven through its bias (netx's input layer): no synapses
        if isinstance(source, ConvNode):
            projections += _conv_projections(graph, source, sums)
        elif isinstance(source, SpikeProductNode):
            bits = weight_bits(np.array([source.multiplier]))
            if products[name] in PRODUCT_LOWERINGS:
                arrays = PRODUCT_LOWERINGS[products[name]].arrays(graph, source, period)
                out += arrays
                projections.append(attention_read(source, arrays[-1]))
            else:
                projections.append(Projection(name, name, source.shape, ChannelMap("identity"), weight_bits=bits,
                                              weight=source.multiplier))
        else:
            raise TypeError(f"LIF {lif.name!r} reads a {source.kind} node; expected conv or spike product")
    for conv in graph.recurrent_synapses(lif.name):  # its own spikes, back onto its cores
        projections += _conv_projections(graph, conv, sums)
    return [*out, Population(lif.name, "lif", lif.name, lif.shape, tuple(projections))]


def populations(graph: Graph, products: str | None = None, sums: str = "expand") -> list[Population]:
    """Every population to place, in graph order (a product's arrays just before its attention LIF); see
    :func:`lower` for the whole lowering."""
    choices = product_choices(graph, products)
    if sums not in SUM_MODELS:
        raise ValueError(f"sums must be one of {SUM_MODELS}, got {sums!r}")
    out: list[Population] = []
    period = ticks_per_step(graph, products)
    for node in graph.nodes:
        if isinstance(node, SumNode) and sums == "relay":
            out.append(_relay(node))
        elif isinstance(node, LIFNode) and node.name not in graph.host:
            out += _lif_populations(graph, node, choices, sums, period)
    return out


def population_depths(graph: Graph, pops: list[Population]) -> dict[str, int]:
    """Longest path in synapse stages from the input to every population (and every spike source). Host-computed
    layers send at depth 0, as the input does: the host's compute takes no chip ticks."""
    depth: dict[str, int] = {graph.input.name: 0, **dict.fromkeys(graph.host, 0)}
    for pop in pops:
        for proj in pop.projections:
            if proj.source not in depth and proj.source != pop.name:  # an embedded product: computes when its q,
                # k, v arrive (a population's own spikes are its recurrent synapses' source)
                depth[proj.source] = max(depth[i] for i in graph[proj.source].inputs)
        depth[pop.name] = max((depth[p.source] + 1 + p.wait for p in pop.projections
                               if p.source != pop.name and not p.periodic), default=0)
    return depth


SERIAL_LANE_TICKS = 24
"""Most tokens one lane of the ``token-serial`` lowering streams per step. Its step then takes 2 x lane ticks (the
kv window, :func:`serial_arrays`); the residual path around an attention block must be delayed by about that
much, within Loihi's 62-tick synaptic delay."""
PAYLOAD_MAX = (1 << 23) - 1
"""Largest graded-spike payload (Loihi 2: 24-bit signed) and neuron value of the graded and product neurons."""


def _lane(node: SpikeProductNode) -> tuple[int, int, int]:
    """(rows, columns, tokens) of one token-serial lane: whole rows of the token map, as many as keep the lane
    within :data:`SERIAL_LANE_TICKS` tokens, rows dividing the map's height (one row at least)."""
    _, h, w = node.shape
    rows = max([r for r in range(1, h + 1) if h % r == 0 and r * w <= SERIAL_LANE_TICKS], default=1)
    return rows, w, rows * w


def serial_substeps(graph: Graph, node: SpikeProductNode) -> int:
    """Ticks per functional step of the ``token-serial`` lowering: twice a lane's tokens (stream, then gate)."""
    return 2 * _lane(node)[2]


def serial_arrays(graph: Graph, node: SpikeProductNode, period: int) -> list[Population]:
    """The ``token-serial`` lowering of ``out = q (k^T v)`` per head: tokens streamed over sub-steps (ticks)
    through product arrays shared by the tokens of a lane (B lanes of S tokens, whole rows: :func:`_lane`).

    * ``and`` (heads d^2 per lane, ``ProdNeuron``): k and v of the lane's token s arrive at tick s (synaptic delay
      s, ``forward`` stream): a graded 1 iff both spiked.
    * ``kv`` (heads d^2, accumulator ``Sigma``): every ``and`` spike added (delay 0) and subtracted again ``period``
      ticks later (weight -1): v = the coincidences of the last ``period`` ticks; it holds the step's k^T v from
      the tick after the last token for ``period - S`` ticks.
    * ``gate`` (heads d^2 per lane, ``ProdNeuron``): q of token s arrives S + 1 + s ticks after k, v: q kv.
    * ``clock`` (one LIF on its bias, its voltage starting one bias short of the threshold: it fires on the first
      tick of every ``period``, tick t P of step t, as its depth 0 says) and ``demux`` (heads N d, one per
      attention neuron, ``ProdNeuron``): the sum over i of the lane's gates times the clock's spike, delayed to
      arrive with token s's gates: out[token, j] at tick s, 0 at the lane's other ticks.
    * the attention LIF reads its ``demux`` (weight = multiplier) delayed by S - 1 - s: every token re-aligned.
    ``period`` >= 2 S (:func:`serial_substeps`) keeps one step's window apart from the next one's.
    """
    q, k, v = node.inputs
    c, h, w = node.shape
    d = c // node.heads
    rows, cols, tokens = _lane(node)
    lanes, pairs, name = h // rows, node.heads * d * d, node.name
    streamed = (pairs, lanes, 1)
    window = {"kernel": (rows, w), "stride": (rows, 1), "padding": (0, 0), "weight_bits": 1, "stream": "forward",
              "lane": (rows, cols)}
    sub = {"kernel": (lanes, 1), "weight_bits": 1, "wait": tokens - 1}
    return [
        Population(f"{name}.and", "and", name, streamed, (
            Projection(f"{name}.and", k, graph[k].shape, ChannelMap("pair_first", d), **window),
            Projection(f"{name}.and", v, graph[v].shape, ChannelMap("pair_second", d), **window)), "product"),
        Population(f"{name}.kv", "kv", name, (pairs, 1, 1), (
            Projection(f"{name}.kv", f"{name}.and", streamed, ChannelMap("identity"), **sub),
            Projection(f"{name}.kv", f"{name}.and", streamed, ChannelMap("identity"), weight=-1, delay=period,
                       **sub)), "accumulator"),
        Population(f"{name}.gate", "gate", name, streamed, (
            Projection(f"{name}.gate", q, graph[q].shape, ChannelMap("pair_first", d), **window),
            Projection(f"{name}.gate", f"{name}.kv", (pairs, 1, 1), ChannelMap("identity"), stride=(0, 0),
                       weight_bits=1)), "product"),
        Population(f"{name}.clock", "clock", name, (1, 1, 1), (), "clock", bias=period),
        Population(f"{name}.demux", "demux", name, (c, h, w), (
            Projection(f"{name}.demux", f"{name}.gate", streamed, ChannelMap("gather", d), stride=(0, 0),
                       weight_bits=1),
            Projection(f"{name}.demux", f"{name}.clock", (1, 1, 1), ChannelMap("groups", c, 1), stride=(0, 0),
                       weight_bits=1, stream="forward", lane=(rows, cols), periodic=True)), "product"),
    ]


def payload_problems(graph: Graph, products: str) -> list[Problem]:
    """Graded payloads and neuron values of a lowering's one-variable neurons that could pass 24 bits (Loihi 2's
    graded spikes): kv sums up to N, gates up to N, a demultiplexer up to d N; the ``packed`` lowering's words
    (:meth:`Packing.problems`, or no packing at all); refused by name, never wrapped."""
    out = []
    for node in graph.of_kind(SpikeProductNode):
        c, h, w = node.shape
        d, n = c // node.heads, h * w
        if products == "packed":
            packing = product_packing(node)
            what = ["no field width fits its counts in 24 bits"] if packing is None else packing.problems(n, d)
            out += [Problem(node.name, f"packed: {p}", "use the graded or coincidence lowering") for p in what]
            continue
        largest = n * (d if products == "token-serial" else 1)
        if largest > PAYLOAD_MAX:
            out.append(Problem(node.name, f"{products}: a graded payload reaches {largest:,}, over Loihi 2's 24-bit "
                               f"{PAYLOAD_MAX:,}", "use the coincidence lowering or fewer tokens per head"))
    return out


def serial_problems(graph: Graph, products: str = "token-serial") -> list[Problem]:
    """Why ``token-serial`` is not exact on a chip of global ticks with Lava's LIF: every other LIF steps on each of
    the ``ticks_per_step`` ticks, so it must hold its state on a tick without input - no voltage decay (dv = 0), no
    bias, and a current that forgets in one tick (du = 4095 with |current| < 64, so |u| = |current| << 6 < 4096
    decays to 0). One problem naming the LIFs that do not (a step-gated neuron would need a Loihi 2 microcode
    program, which Lava has no process for)."""
    bounds = current_bounds(graph)
    moving = [n.name for n in graph.of_kind(LIFNode) if n.name not in graph.host and not (
        not isinstance(n, SigmaDeltaNode) and n.dv == 0 and n.du == 4095 and not np.any(n.bias_mant)
        and bounds[n.name] < 64)]
    if not moving or not graph.of_kind(SpikeProductNode):
        return []
    named = ", ".join(moving[:3]) + (", ..." if len(moving) > 3 else "")
    return [Problem(moving[0], f"{products}: {len(moving)} LIF layer(s) ({named}) decay, integrate a bias or keep a "
                    "current on the sub-step ticks of a step, so the chip would not compute the functional model "
                    "(Lava's LIF has no step-gated mode)",
                    "use --attention coincidence or graded; token-serial is exact only where every chip LIF holds "
                    "its state between steps (dv = 0, no bias, du = 4095)")]


@dataclass(frozen=True)
class ProductLowering:
    """How the chip computes one spike product: its populations and the ticks it needs per functional step."""

    arrays: Callable[[Graph, SpikeProductNode, int], list[Population]]
    """(graph, product, the chip's ticks per step) -> its populations; the attention LIF reads the last one
    (:func:`attention_read`)."""
    substeps: Callable[[Graph, SpikeProductNode], int] = lambda graph, node: 1
    """Chip ticks one functional step of this product needs (1: a step is a tick)."""
    problems: Callable[[Graph, str], list[Problem]] = payload_problems
    """What keeps it from being exact on the chip (payload overflow, the chip's global tick), as the mapper's
    violations: a lowering that cannot be exact is refused by name, never approximated."""


PRODUCT_LOWERINGS: dict[str, ProductLowering] = {
    "coincidence": ProductLowering(product_arrays),
    "graded": ProductLowering(graded_arrays),
    "token-serial": ProductLowering(serial_arrays, serial_substeps,
                                    lambda graph, name: payload_problems(graph, name) + serial_problems(graph, name)),
    "packed": ProductLowering(packed_arrays),
}
"""Spike-product lowerings into populations, by :data:`ATTENTION_LOWERINGS` name (``embedded`` has none: the
product leaves the neuro cores)."""
PRODUCT_MODELS = (*ATTENTION_LOWERINGS, "embedded")
assert tuple(PRODUCT_LOWERINGS) == ATTENTION_LOWERINGS, "one lowering per attention name"


def attention_problems(graph: Graph, target: HardwareProfile, products: str | None = None) -> list[Problem]:
    """What keeps the spike products' lowering (default the graph's) from being exact on ``target``: graded spikes
    on a binary-spike chip, payload overflow, the global tick (:attr:`ProductLowering.problems`); per lowering in
    use, its problems of the products it lowers (and of the network, such as the global tick)."""
    choices = product_choices(graph, products)
    out: list[Problem] = []
    for name in dict.fromkeys(choices.values()):
        lowering = PRODUCT_LOWERINGS.get(name)
        if lowering is None:
            continue
        mine = [n for n, c in choices.items() if c == name]
        if not target.graded_spikes and name != "coincidence":
            out.append(Problem(mine[0], f"the {name} lowering sends graded spikes; {target.name} has binary spikes "
                               "only", "use --attention coincidence"))
            continue
        out += [p for p in lowering.problems(graph, name) if p.node not in choices or p.node in mine]
    return out


def ticks_per_step(graph: Graph, products: str | None = None) -> int:
    """Chip ticks per functional step under ``products`` (default the graph's lowering): the most any spike product
    needs. The chip ticks globally, so every population steps that often (docs/attention_lowerings.md)."""
    choices = product_choices(graph, products)
    return max((PRODUCT_LOWERINGS[choices[n.name]].substeps(graph, n) for n in graph.of_kind(SpikeProductNode)
                if choices[n.name] in PRODUCT_LOWERINGS), default=1)


@dataclass(frozen=True)
class Lowering:
    """The hardware network of a graph: populations in build order and the depth of every spike source."""

    graph: Graph
    products: str
    sums: str
    populations: tuple[Population, ...]
    depths: dict[str, int]
    """In chip ticks (one per synapse stage, plus the streams of a serial lowering)."""
    ticks_per_step: int = 1
    """Chip ticks per functional step (:func:`ticks_per_step`): step t of a population at depth d is tick
    t * ticks_per_step + d."""

    def delay(self, pop: Population, proj: Projection, depths: dict[str, int] | None = None) -> int:
        """Synaptic delay (steps beyond the synapse's own one) that balances ``proj`` against the population's
        deepest input (at ``depths``, default the lowering's); 0 for a recurrent projection (its one-step latency
        is the recurrence)."""
        depths = self.depths if depths is None else depths
        if proj.kind == "recurrent":
            return 0
        delay = depths[pop.name] - 1 - proj.wait - depths.get(proj.source, 0)
        return delay % self.ticks_per_step if proj.periodic else delay

    def layers(self) -> list[tuple[Population, ...]]:
        """The populations grouped by LIF node: each LIF population with the populations listed just before it
        (its spike product's arrays, relays of sums): the unit a layer-by-layer check builds alone."""
        groups, pending = [], []
        for pop in self.populations:
            pending.append(pop)
            if pop.kind == "lif":
                groups.append(tuple(pending))
                pending = []
        return groups

    def layer_depths(self, layer: tuple[Population, ...]) -> dict[str, int]:
        """Depths within ``layer`` built alone, every source it reads from outside sent at depth 0 (absent from the
        result: :meth:`delay` reads an absent source as depth 0)."""
        depth: dict[str, int] = {}
        for pop in layer:
            depth[pop.name] = max((depth.get(p.source, 0) + 1 + p.wait for p in pop.projections
                                   if p.kind != "recurrent" and not p.periodic), default=0)
        return depth

    def sources(self) -> list[str]:
        """Spike sources that are not populations: the input node and the layers the host computes (host I/O)."""
        names = {p.name for p in self.populations}
        return list(dict.fromkeys(proj.source for pop in self.populations for proj in pop.projections
                                  if proj.source not in names and proj.kind != "recurrent"))


def lower(graph: Graph, products: str | None = None, sums: str = "expand") -> Lowering:
    """The one hardware lowering of ``graph`` (module docstring); ``products`` defaults to the graph's own
    (``Graph.attention``, recorded by ``export --attention``)."""
    products = products or graph.attention
    pops = populations(graph, products, sums)
    lowering = Lowering(graph, products, sums, tuple(pops), population_depths(graph, pops),
                        ticks_per_step(graph, products))
    return replace(lowering, populations=tuple(
        replace(pop, projections=tuple(_held(lowering, pop, proj) for proj in pop.projections)) for pop in pops))


def _held(lowering: Lowering, pop: Population, proj: Projection) -> Projection:
    """``proj`` as the chip holds it: a delayed conv unrolled (:attr:`Projection.unrolled`; every synapse stored,
    none shared), a delayed ``kernel`` projection as its synapses (``DelaySparse``: none shared), anything else as
    it is."""
    if proj.kind not in ("conv", "kernel") or not lowering.delay(pop, proj):
        return proj
    if proj.kind == "kernel":
        return replace(proj, shared_per_channel=0)
    nonzero = (lowering.graph[proj.synapse].weight != 0).sum(1)  # [target channels, kh, kw]
    return replace(proj, shared_per_channel=0, unrolled=tuple(int(n) for n in nonzero.ravel()))


def sparse_pairs(proj: Projection, target: Shape) -> tuple[np.ndarray, np.ndarray]:
    """(target, source) neuron indices of every synapse of a ``sparse`` or ``kernel`` projection, flat in (C, H, W)
    order.

    Spatially a sparse projection is a window: target position (y, x) reads the source's ``kernel`` window at
    (y, x) x ``stride`` (one-to-one: kernel 1 x 1 on the same map; a sum of the whole source map into a 1 x 1
    target: kernel = the source map; a token-serial lane: kernel = the lane), or with stride (0, 0) a spread of a
    smaller source over the target (target row y reads source row y * source rows // target rows, columns alike; a
    1 x 1 source: a broadcast)."""
    if proj.kind not in ("sparse", "kernel"):
        raise ValueError(f"{proj.synapse}: a {proj.kind} projection has a kernel, not a channel map")
    c, h, w = target
    sc, sh, sw = proj.source_shape
    channel = np.arange(c)
    sources = [proj.channels.sources(i, i + 1) for i in range(c)]
    per = np.array([len(s) for s in sources])
    t_chan, s_chan = np.repeat(channel, per), np.concatenate(sources)
    ty, tx = np.divmod(np.arange(h * w), w)
    if proj.stride == (0, 0):
        t_pos, s_pos = np.arange(h * w), (ty * sh // h) * sw + tx * sw // w
    else:
        (kh, kw), (sy, sx) = proj.kernel, proj.stride
        if proj.padding != (0, 0) or (h - 1) * sy + kh > sh or (w - 1) * sx + kw > sw:
            raise ValueError(f"{proj.synapse}: no sparse geometry for kernel {proj.kernel} from {proj.source_shape} "
                             f"onto {target}")
        i, j = np.divmod(np.arange(kh * kw), kw)
        t_pos = np.repeat(np.arange(h * w), kh * kw)
        s_pos = ((ty[:, None] * sy + i[None, :]) * sw + tx[:, None] * sx + j[None, :]).ravel()
    rows = (t_chan[:, None] * (h * w) + t_pos[None, :]).ravel()
    cols = (s_chan[:, None] * (sh * sw) + s_pos[None, :]).ravel()
    if proj.taps:  # a kernel's zero taps hold no synapse
        keep = pair_weights(proj, target, rows, cols) != 0
        return rows[keep], cols[keep]
    return rows, cols


def pair_weights(proj: Projection, target: Shape, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The weight of every synapse (``rows``, ``cols`` from :func:`sparse_pairs`): :attr:`Projection.weight`, or
    a ``kernel``'s :attr:`Projection.taps` at (output, input) channel within its group, or a ``sparse`` packed
    map's taps per target field (``kvlevel``: target channel (head, c, e), field e mod F)."""
    if not proj.taps:
        return np.full(rows.size, proj.weight, dtype=np.int64)
    if proj.kind == "sparse":
        d, fields = proj.channels.a, proj.channels.b
        return np.asarray(proj.taps, dtype=np.int64)[rows // (target[1] * target[2]) % d % fields]
    out, per = proj.channels.a, proj.channels.b
    t_chan = rows // (target[1] * target[2])
    s_chan = cols // (proj.source_shape[1] * proj.source_shape[2])
    return np.asarray(proj.taps, dtype=np.int64)[t_chan % out * per + s_chan % per]


def synapse_delays(proj: Projection, target: Shape, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The lowering's own delay of every synapse (``rows``, ``cols`` from :func:`sparse_pairs`): ``delay`` plus,
    in a token-serial stream, its token's place in its lane (``forward``) or the rest of the lane (``reverse``).
    The token is the position on the side with the larger map (the product's token map). Path balancing
    (:meth:`Lowering.delay`) comes on top."""
    delays = np.full(rows.size, proj.delay, dtype=np.int64)
    if not proj.stream:
        return delays
    lane_rows, lane_cols = proj.lane
    sh, sw = proj.source_shape[1:]
    h, w = target[1:]
    if sh * sw >= h * w:
        y, x = np.divmod(cols % (sh * sw), sw)
    else:
        y, x = np.divmod(rows % (h * w), w)
    index = (y % lane_rows) * lane_cols + x
    return delays + (index if proj.stream == "forward" else lane_rows * lane_cols - 1 - index)


def conv_pairs(conv: ConvNode, source: Shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, source, weight) of every synapse of ``conv`` read from a ``source``-shaped map, flat in (C, H, W)
    order, zero weights left out: the kernel unrolled, for a synapse that cannot share it (one with a delay)."""
    c_out, c_in_group, kh, kw = conv.weight.shape
    _, h, w = conv.shape
    _, sh, sw = source
    out_per_group = c_out // conv.groups
    co, ho, wo, ci, i, j = np.meshgrid(np.arange(c_out), np.arange(h), np.arange(w), np.arange(c_in_group),
                                       np.arange(kh), np.arange(kw), indexing="ij")
    hi = ho * conv.stride[0] - conv.padding[0] + i
    wi = wo * conv.stride[1] - conv.padding[1] + j
    cin = co // out_per_group * c_in_group + ci
    weight = conv.weight.astype(np.int64)[co, ci, i, j]
    keep = (hi >= 0) & (hi < sh) & (wi >= 0) & (wi < sw) & (weight != 0)
    rows = (co * h + ho) * w + wo
    cols = (cin * sh + hi) * sw + wi
    return rows[keep], cols[keep], weight[keep]


PACKED_EVENTS = "packed events "
"""Prefix of an :class:`~snn_deploy.graph.Activity` product count: the non-zero messages one ``packed`` population
sends (``packed events <population suffix>``, e.g. ``packed events shift1.0``)."""
PACKED_OPS = "packed ops "
"""Prefix of an activity product count: the synaptic ops of one projection of a ``packed`` population
(``packed ops <population suffix> <projection index>``)."""


class _Shapes(dict):
    """Stands in for a graph where :func:`packed_arrays` reads only the shapes of q, k, v."""

    def __init__(self, shape: Shape):
        super().__init__({n: type("Source", (), {"shape": shape})() for n in "qkv"})


@functools.lru_cache(maxsize=64)
def packed_fanouts(shape: Shape, heads: int) -> tuple[tuple[str, tuple[tuple[str, np.ndarray], ...]], ...]:
    """The ``packed`` populations of a product of ``shape`` and ``heads`` (its inputs named ``q``, ``k``, ``v``,
    the product ``p``): per population its suffix and, per projection, its source (``q``, ``k``, ``v`` or a
    suffix) and the synapses each source neuron of a channel reaches ([source channels]), as Lava holds them: a
    ``sparse`` projection's synapses (:func:`sparse_pairs`), an undelayed ``kernel`` as ``Conv`` (every tap, zero
    taps included), a delayed one as ``DelaySparse`` (its non-zero taps). Every source neuron of a channel reaches
    as many (checked), so per-channel counts of the sources' messages give every projection's synaptic ops."""
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads)
    pops = packed_arrays(_Shapes(shape), node)  # type: ignore[arg-type]
    depth: dict[str, int] = {}  # within the product: a kernel read from a shallower stage is delayed
    out = []
    for pop in pops:
        depth[pop.name] = max(depth.get(p.source, 0) + 1 for p in pop.projections)
        reads = []
        for proj in pop.projections:
            delayed = depth[pop.name] - 1 - depth.get(proj.source, 0) > 0
            held = proj if proj.kind == "sparse" or delayed else replace(proj, taps=())
            positions = proj.source_shape[1] * proj.source_shape[2]
            per = np.bincount(sparse_pairs(held, pop.shape)[1], minlength=int(np.prod(proj.source_shape)))
            per = per.reshape(proj.source_shape[0], positions)
            if not (per == per[:, :1]).all():
                raise ValueError(f"{pop.name} <- {proj.source}: fan-out differs within a channel")
            reads.append((proj.source.removeprefix("p."), per[:, 0]))
        out.append((pop.name.removeprefix("p."), tuple(reads)))
    return tuple(out)


def packed_count_keys(node: SpikeProductNode) -> list[str]:
    """The activity product counts of ``node``'s ``packed`` lowering (none where no packing fits): its
    populations' events, then their projections' synaptic ops (:data:`PACKED_EVENTS`, :data:`PACKED_OPS`)."""
    if product_packing(node) is None:
        return []
    fans = packed_fanouts(node.shape, node.heads)
    return [PACKED_EVENTS + pop for pop, _ in fans] + [f"{PACKED_OPS}{pop} {j}" for pop, reads in fans
                                                      for j in range(len(reads))]


def packed_counts(node: SpikeProductNode, channels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`packed_count_keys` of ``node`` from the messages each source sends per step and channel
    (``channels``: [T, C] per population suffix and per input ``q``, ``k``, ``v``, channels in the population's
    layout, :func:`packed_arrays`): a population's events are its channels' sum; a projection's synaptic ops its
    source's channels times their fan-out (:func:`packed_fanouts`). Exact where ``channels`` are counts of a run;
    expectations where they are expected counts."""
    fans = packed_fanouts(node.shape, node.heads)
    out = {PACKED_EVENTS + pop: channels[pop].sum(1) for pop, _ in fans}
    for pop, reads in fans:
        for j, (source, fan) in enumerate(reads):
            out[f"{PACKED_OPS}{pop} {j}"] = channels[source] @ fan
    return out
