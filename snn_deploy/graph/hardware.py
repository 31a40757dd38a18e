"""The one hardware lowering of a deployed graph: the neuron populations and synapse projections a chip holds.

The graph (:mod:`.nodes`) is functional: a spike product or a residual sum is one node. A chip holds neurons and
synapses. :func:`lower` turns the graph into those, once, for every consumer: the core mapper and the cost model
(``sims/hardware/mapper.py``, ``sims/hardware/cost.py``) price exactly these populations and projections, and the Lava builder
(``sims/backends/lava_build.py``) builds exactly them from Lava processes with Loihi 2 implementations.

* **Populations** (:class:`Population`, :attr:`Population.kind`): ``lif`` - a LIF node (Lava ``LIFReset``);
  ``sum`` - a residual sum as graded relay neurons (``relay``: Lava ``GradedVec``, threshold 0); the three arrays of
  a spike product in the coincidence-neuron model (:func:`product_arrays`): ``and`` (binary coincidence LIFs,
  :data:`COINCIDENCE`), ``kv`` (graded sums, ``GradedVec``) and ``gate`` (graded products, ``ProdNeuron``).
* **Projections** (:class:`Projection`, :attr:`Projection.kind`): ``conv`` - a conv node's shared kernel (Lava
  ``Conv``); ``sparse`` - a fixed channel map with one weight (Lava ``Sparse``, :func:`sparse_pairs`);
  ``recurrent`` - a recurrent conv back onto its own population (Lava ``Dense``). A projection whose source is
  shallower than its population's other inputs carries a synaptic delay (:meth:`Lowering.delay`: Lava
  ``DelaySparse``); that is how path balancing is priced and built.
* **Host I/O**: the input node and the layers the host computes (``Graph.host``) are spike sources at depth 0,
  not populations; the readout stays on the host.

Timing: every synapse stage takes one step (Lava's ``Conv``/``Sparse``/``Dense`` deliver at t + 1); neurons
answer in the step they receive. A population's depth is one more than its deepest source's
(:func:`population_depths`); a node of the graph shows functional step t at Lava step t + depth.

Products and sums have more than one lowering (``products``: ``neurons`` or ``embedded``, :data:`PRODUCT_MODELS`;
``sums``: ``expand`` or ``relay``, :data:`SUM_MODELS`), each product its own where ``products`` names them
(:func:`product_choices`): a new lowering of the spike product (graded, token-serial)
is one more entry of :data:`PRODUCT_LOWERINGS`, a function from the graph and the product node to its
populations, the last of which is read by the attention LIF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snn_deploy.graph.nodes import ConvNode, Graph, InputNode, LIFNode, Shape, SpikeProductNode, SumNode

PRODUCT_MODELS = ("neurons", "embedded")
SUM_MODELS = ("expand", "relay")
PROJECTION_KINDS = ("conv", "sparse", "recurrent")
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

    def sources(self, c0: int, c1: int) -> np.ndarray:
        """Sorted distinct source channels read by target channels ``[c0, c1)``."""
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
        """Source channels one target channel reads."""
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
    """``conv`` (the synapse node's kernel), ``sparse`` (the channel map with :attr:`weight` on every synapse) or
    ``recurrent`` (the synapse node's kernel from the population back onto itself); see :data:`PROJECTION_KINDS`."""
    weight: int = 1
    """The weight of every synapse of a ``sparse`` projection."""


@dataclass(frozen=True)
class Population:
    """Neurons mapped as one layer: a LIF node, a sum node's relay, or one array of a spike product's
    coincidence-neuron model."""

    name: str
    kind: str
    """``lif``; ``sum`` for a relay of a residual sum; ``and`` / ``kv`` / ``gate`` for a spike product's arrays."""
    node: str
    """The graph node it implements (the LIF, or the spike product)."""
    shape: Shape
    projections: tuple[Projection, ...]

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def graded(self) -> bool:
        """Whether its neurons send graded spikes (relays, kv sums, gates) rather than binary ones."""
        return self.kind in GRADED_KINDS



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


def _relay(node: SumNode) -> Population:
    """A sum node as graded relay neurons: each adds its inputs' events in a step and sends the total as one graded
    spike (no memory; one step of latency)."""
    return Population(node.name, "sum", node.name, node.shape, tuple(
        Projection(node.name, i, node.shape, ChannelMap("identity")) for i in node.inputs))


def product_arrays(graph: Graph, node: SpikeProductNode) -> list[Population]:
    """The coincidence-neuron model of ``out = q (k^T v)`` per head (d = head dim, N = H W tokens).

    * ``and`` (heads N d^2 neurons, channel (g, j, i) at each token): fires iff k[token, i] and v[token, j] spiked
      (two 1-bit synapses, threshold between 1 and 2).
    * ``kv`` (heads d^2): sums its N ``and`` inputs each step and sends the count as a graded spike (no memory).
    * ``gate`` (heads N d^2): forwards kv[i, j] as a graded spike when q[token, i] spiked (a programmable neuron).
    * the attention LIF then sums its d gates (weight = the product's multiplier).
    Every stage adds a step; q is delayed by two steps with synaptic delays so it meets its kv.
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
            Projection(f"{name}.and", v, graph[v].shape, ChannelMap("pair_second", d), **one))),
        Population(f"{name}.kv", "kv", name, (pairs, 1, 1), (
            Projection(f"{name}.kv", f"{name}.and", spatial, ChannelMap("identity"), kernel=(h, w),
                       weight_bits=1),)),
        Population(f"{name}.gate", "gate", name, spatial, (
            Projection(f"{name}.gate", q, graph[q].shape, ChannelMap("pair_first", d), **one),
            Projection(f"{name}.gate", f"{name}.kv", (pairs, 1, 1), ChannelMap("identity"), stride=(0, 0),
                       weight_bits=1))),
    ]


def product_choices(graph: Graph, products: str) -> dict[str, str]:
    """The lowering of every spike product of ``graph``: ``products`` is one of :data:`PRODUCT_MODELS` for all of
    them, or ``name=lowering`` pairs joined by ``;`` naming every product (what ``--attention auto`` chooses and
    the manifest records: :func:`products_text`)."""
    names = [n.name for n in graph.of_kind(SpikeProductNode)]
    if "=" not in products:
        if products not in PRODUCT_MODELS:
            raise ValueError(f"products must be one of {PRODUCT_MODELS}, got {products!r}")
        return dict.fromkeys(names, products)
    pairs = dict(item.split("=", 1) for item in products.split(";"))
    wrong = sorted(set(pairs) ^ set(names))
    if wrong:
        raise ValueError(f"products names {', '.join(wrong)}: not the graph's spike products {', '.join(names)}")
    for name, choice in pairs.items():
        if choice not in PRODUCT_MODELS:
            raise ValueError(f"spike product {name}: lowering must be one of {PRODUCT_MODELS}, got {choice!r}")
    return {name: pairs[name] for name in names}


def products_text(choices: dict[str, str]) -> str:
    """The ``products`` text of per-product lowerings: the one name where all agree (or there are none)."""
    kinds = set(choices.values())
    if len(kinds) <= 1:
        return next(iter(kinds), PRODUCT_MODELS[0])
    return ";".join(f"{name}={choice}" for name, choice in choices.items())


def _lif_populations(graph: Graph, lif: LIFNode, products: dict[str, str], sums: str) -> list[Population]:
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
            d = source.shape[0] // source.heads
            bits = weight_bits(np.array([source.multiplier]))
            if products[name] in PRODUCT_LOWERINGS:
                out += PRODUCT_LOWERINGS[products[name]](graph, source)
                projections.append(Projection(f"{name}.attn", out[-1].name, out[-1].shape, ChannelMap("gather", d),
                                              weight_bits=bits, weight=source.multiplier))
            else:
                projections.append(Projection(name, name, source.shape, ChannelMap("identity"), weight_bits=bits,
                                              weight=source.multiplier))
        else:
            raise TypeError(f"LIF {lif.name!r} reads a {source.kind} node; expected conv or spike product")
    for conv in graph.recurrent_synapses(lif.name):  # its own spikes, back onto its cores
        projections += _conv_projections(graph, conv, sums)
    return [*out, Population(lif.name, "lif", lif.name, lif.shape, tuple(projections))]


def populations(graph: Graph, products: str = "neurons", sums: str = "expand") -> list[Population]:
    """Every population to place, in graph order (a product's arrays just before its attention LIF); see
    :func:`lower` for the whole lowering."""
    choices = product_choices(graph, products)
    if sums not in SUM_MODELS:
        raise ValueError(f"sums must be one of {SUM_MODELS}, got {sums!r}")
    out: list[Population] = []
    for node in graph.nodes:
        if isinstance(node, SumNode) and sums == "relay":
            out.append(_relay(node))
        elif isinstance(node, LIFNode) and node.name not in graph.host:
            out += _lif_populations(graph, node, choices, sums)
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
        depth[pop.name] = max((depth[p.source] + 1 for p in pop.projections if p.source != pop.name), default=0)
    return depth


GRADED_KINDS = ("sum", "kv", "gate")
PRODUCT_LOWERINGS: dict[str, Callable[[Graph, SpikeProductNode], list[Population]]] = {"neurons": product_arrays}
"""Spike-product lowerings into populations (``embedded`` has none: the product leaves the neuro cores)."""


@dataclass(frozen=True)
class Lowering:
    """The hardware network of a graph: populations in build order and the depth of every spike source."""

    graph: Graph
    products: str
    sums: str
    populations: tuple[Population, ...]
    depths: dict[str, int]

    def delay(self, pop: Population, proj: Projection, depths: dict[str, int] | None = None) -> int:
        """Synaptic delay (steps beyond the synapse's own one) that balances ``proj`` against the population's
        deepest input (at ``depths``, default the lowering's); 0 for a recurrent projection (its one-step latency
        is the recurrence)."""
        depths = self.depths if depths is None else depths
        if proj.kind == "recurrent":
            return 0
        return depths[pop.name] - 1 - depths.get(proj.source, 0)

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
            depth[pop.name] = max((depth.get(p.source, 0) + 1 for p in pop.projections if p.kind != "recurrent"),
                                  default=0)
        return depth

    def sources(self) -> list[str]:
        """Spike sources that are not populations: the input node and the layers the host computes (host I/O)."""
        names = {p.name for p in self.populations}
        return list(dict.fromkeys(proj.source for pop in self.populations for proj in pop.projections
                                  if proj.source not in names and proj.kind != "recurrent"))


def lower(graph: Graph, products: str = "neurons", sums: str = "expand") -> Lowering:
    """The one hardware lowering of ``graph`` (module docstring)."""
    pops = populations(graph, products, sums)
    return Lowering(graph, products, sums, tuple(pops), population_depths(graph, pops))


def sparse_pairs(proj: Projection, target: Shape) -> tuple[np.ndarray, np.ndarray]:
    """(target, source) neuron indices of every synapse of a ``sparse`` projection, flat in (C, H, W) order.

    Spatially a sparse projection is one-to-one (kernel 1 x 1, same map), a broadcast of a 1 x 1 source to every
    position (stride (0, 0)), or a sum of the whole source map into a 1 x 1 target (kernel = the source map)."""
    if proj.kind != "sparse":
        raise ValueError(f"{proj.synapse}: a {proj.kind} projection has a kernel, not a channel map")
    c, h, w = target
    sc, sh, sw = proj.source_shape
    channel = np.arange(c)
    sources = [proj.channels.sources(i, i + 1) for i in range(c)]
    per = np.array([len(s) for s in sources])
    t_chan, s_chan = np.repeat(channel, per), np.concatenate(sources)
    if proj.stride == (0, 0):
        t_pos, s_pos = np.arange(h * w), np.zeros(h * w, dtype=np.int64)
    elif (h, w) == (1, 1) and proj.kernel == (sh, sw):
        t_pos, s_pos = np.zeros(sh * sw, dtype=np.int64), np.arange(sh * sw)
    elif proj.kernel == (1, 1) and (h, w) == (sh, sw):
        t_pos = s_pos = np.arange(h * w)
    else:
        raise ValueError(f"{proj.synapse}: no sparse geometry for kernel {proj.kernel} from {proj.source_shape} "
                         f"onto {target}")
    rows = (t_chan[:, None] * (h * w) + t_pos[None, :]).ravel()
    cols = (s_chan[:, None] * (sh * sw) + s_pos[None, :]).ravel()
    return rows, cols


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
