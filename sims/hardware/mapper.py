"""Partition a deployed graph onto Loihi-class neuro cores, place the cores on the mesh, and list every limit broken.

Why a mapper at all: a graph that runs in the simulator can still be impossible on the chip (a neuron reading more
inputs than a core accepts, weights that fill no core), and the number of cores and chips is what an energy or
latency estimate is built on. The model (docs/hardware.md has the long form):

The populations and projections come from the one hardware lowering, :func:`snn_deploy.graph.hardware.lower`,
which the Lava builder builds as well: what is priced here is what runs in Lava.

* **Populations.** One per LIF node. Spike products (SSA's ``q (k^T v)``) are either populations of one of the
  attention lowerings (``products``: ``coincidence``, ``graded``, ``token-serial``, ``packed``; default the graph's own,
  ``Graph.attention``; ``hardware.PRODUCT_LOWERINGS``) or *embedded-core work* (``products="embedded"``: q, k and v
  spikes go to an embedded x86 core, which returns graded currents). Each population packs up to the profile's
  per-core limit of its neuron variant (:meth:`HardwareProfile.neurons_per_core_for`: two-variable LIFs 4,096,
  one-variable graded / product / accumulator neurons 8,192 on Loihi 2).
* **Projections.** The synapses into a population from one source population. Residual sums (``sums``):
  ``expand`` gives a conv reading a sum one projection per summand (the graph's semantics: a sum has no hardware,
  every summand neuron is its own input axon, so fan-in grows with depth); ``relay`` (default on targets with
  graded spikes) makes each sum node a population of graded relay neurons, one step deep, read as one source.
* **Tiles.** A population of shape (C, H, W) is cut into equal boxes of (channels, rows, columns); one box per core.
  Per core: neurons = box size; fan-in = distinct source neurons its box reads (receptive field, clipped at the
  borders, per projection); synapses = (neuron, source neuron) pairs; stored synapses = with ``kernel_sharing``
  (Loihi's population-based hierarchical connectivity, Davies et al. 2018) each kernel weight a core's channels use
  is stored once, without it every synapse is stored; synaptic memory = stored synapses x weight bits
  (:func:`weight_bits`). Fan-out = one output axon per (neuron, destination core) pair.
* **Search.** For each population the box with the fewest cores that meets every per-core limit wins (ties: the
  smallest worst fan-in). A limit that one neuron alone breaks cannot be fixed by any partition: it is reported and
  left out of the search. Fan-out depends on the consumers' partitions, so populations whose cores exceed it are
  re-partitioned with fewer neurons per core until they fit or a single neuron is over.
* **Placement.** Cores in graph order, consecutive cores in the same tile, tiles in serpentine order on each chip's
  mesh, chips on a near-square grid. The host (input) and embedded cores sit at tile (0, 0) of their chip.
* **Host layers.** Nodes the host computes (``Graph.host``: the analog input layer under ``--input-on-host``) take
  no cores; their LIFs are listed as layers with ``placement="host"`` and send their spikes from the host at depth
  0, as the input does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product as cartesian
from typing import Literal

import numpy as np

from snn_deploy.graph import Graph, HardwareProfile, LIFNode, Problem, Shape, SpikeProductNode, target_problems
from snn_deploy.graph.hardware import (  # noqa: F401  (the lowering's names, re-exported for the mapper's readers)
    PRODUCT_MODELS, SUM_MODELS, ChannelMap, Population, Projection, attention_problems, lower, population_depths,
    populations, product_arrays, product_choices, weight_bits,
)
from snn_deploy.graph.profiles import CompilerModel

METRICS = ("neurons", "memory", "fan_in", "fan_out")
MAX_FAN_OUT_ROUNDS = 12
HOST = -1
"""Source "core" index of spikes the host sends (input, host-computed layers) and of an embedded core's output."""


@dataclass(frozen=True)
class Core:
    """One neuro core: the box of its population it holds, where it sits, and what it uses."""

    index: int
    population: str
    box: tuple[int, int, int, int, int, int]
    """(c0, c1, h0, h1, w0, w1), half-open."""
    chip: int
    tile: tuple[int, int]
    """Global (row, column) of its tile's router on the multi-chip mesh."""
    neurons: int
    fan_in: int
    fan_out: int
    synapses: int
    stored_synapses: int
    memory_bits: int
    synmem_units: int = 0
    """Units of Loihi 2's synaptic memory register (profiles with a :class:`CompilerModel`; 0 otherwise)."""

    variant: str = "two-variable"
    """Its population's neuron variant: what its neuron limit is (:meth:`HardwareProfile.neurons_per_core_for`)."""

    def utilisation(self, profile: HardwareProfile) -> dict[str, float]:
        memory = (self.synmem_units / profile.compiler.synmem_units_per_core if profile.compiler
                  else self.memory_bits / (8 * profile.synaptic_memory_bytes_per_core))
        return {"neurons": self.neurons / profile.neurons_per_core_for(self.variant),
                "memory": memory,
                "fan_in": self.fan_in / profile.fan_in_per_core,
                "fan_out": self.fan_out / profile.fan_out_per_core}


@dataclass(frozen=True)
class Traffic:
    """Output axons of one projection between source and destination cores (HOST: the host or an embedded core).

    A spike of a source neuron sends one message per destination core it reaches; with neurons spiking uniformly,
    the messages from core ``src[e]`` to ``dst[e]`` per source spike are ``axons[e] / source neurons on the core``.
    """

    population: str
    projection: int
    """Index into the population's projections; -1 for q, k, v spikes sent to an embedded core."""
    source: str
    src: np.ndarray
    dst: np.ndarray
    src_tile: np.ndarray
    """[E, 2] global tile of each edge's source (the host / embedded core position for HOST)."""
    dst_tile: np.ndarray
    axons: np.ndarray


@dataclass(frozen=True)
class LayerMap:
    """How one population was partitioned."""

    name: str
    kind: str
    node: str
    shape: Shape
    neurons: int
    synapses: int
    stored_synapses: int
    tile: tuple[int, int, int]
    cores: range
    limited_by: str | None
    """The metric closest to its limit on the population's fullest core (None on the host)."""
    depth: int
    """Steps from the input to this population's spikes in a timed build (longest path, one per synapse stage)."""
    placement: Literal["chip", "host"] = "chip"
    """``chip``, or ``host`` for a LIF the host computes (no cores, no synapses on the chip, depth 0)."""


@dataclass
class Mapping:
    """The whole placement: populations, cores, traffic, and every violation (all at once)."""

    profile: HardwareProfile
    products: str
    sums: str
    kernel_sharing: bool
    populations: list[Population]
    layers: dict[str, LayerMap]
    cores: list[Core]
    traffic: list[Traffic]
    violations: list[Problem]
    depths: dict[str, int]
    """Depth of every spike source: populations, the input node, embedded products (see :func:`population_depths`)."""
    per_core_synapses: dict[str, np.ndarray] = field(repr=False)
    """Per population: synapses per (projection, core of the population) [P, cores], to share its synaptic ops."""
    ticks_per_step: int = 1
    """Chip ticks per functional step (the lowering's, :attr:`~snn_deploy.graph.hardware.Lowering.ticks_per_step`):
    depths are in ticks; a streamed step takes this many ticks."""

    @property
    def chips(self) -> int:
        return max((c.chip for c in self.cores), default=0) + 1

    @property
    def tiles_used(self) -> int:
        return len({c.tile for c in self.cores})

    @property
    def pipeline_depth(self) -> int:
        return max((layer.depth for layer in self.layers.values()), default=0)


# --- tiling ---------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _blocks(size: int, step: int) -> np.ndarray:
    starts = np.arange(0, size, step)
    return np.stack([starts, np.minimum(starts + step, size)], 1)


@lru_cache(maxsize=4096)
def _spatial(size: int, step: int, k: int, s: int, p: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of ``step`` target rows: (first, last + 1) source rows read, clipped, and the synapses per target
    row summed over the block (kernel taps that land inside the source). Stride 0 spreads the source over the
    target: target row y reads source row ``y * source // size`` (a 1-row source: a broadcast)."""
    blocks = _blocks(size, step)
    if s == 0:
        lo, hi = blocks[:, 0] * source // size, (blocks[:, 1] - 1) * source // size + 1
        return np.stack([lo, hi], 1), blocks[:, 1] - blocks[:, 0]
    lo = np.clip(blocks[:, 0] * s - p, 0, source)
    hi = np.clip((blocks[:, 1] - 1) * s - p + k, 0, source)
    first = np.arange(size) * s - p
    taps = np.clip(np.minimum(first + k, source) - np.maximum(first, 0), 0, None)
    csum = np.concatenate([[0], np.cumsum(taps)])
    return np.stack([lo, hi], 1), csum[blocks[:, 1]] - csum[blocks[:, 0]]


@lru_cache(maxsize=4096)
def _channel_sets(cmap: ChannelMap, size: int, step: int) -> tuple[np.ndarray, ...]:
    """Per block of ``step`` target channels: the sorted source channels it reads."""
    return tuple(cmap.sources(int(a), int(b)) for a, b in _blocks(size, step))


def _proj_spatial(proj: Projection, shape: Shape, tile: tuple[int, int, int], axis: int):
    return _spatial(shape[1 + axis], tile[1 + axis], proj.kernel[axis], proj.stride[axis], proj.padding[axis],
                    proj.source_shape[1 + axis])


@dataclass
class Tiling:
    """One partition of a population: block bounds per axis and per-tile metrics (tiles in (c, h, w) C order)."""

    tile: tuple[int, int, int]
    blocks: tuple[np.ndarray, np.ndarray, np.ndarray]
    neurons: np.ndarray
    fan_in: np.ndarray
    synapses: np.ndarray
    """[projections, tiles]"""
    stored: np.ndarray
    memory_bits: np.ndarray
    synmem: np.ndarray
    """Loihi 2 synaptic memory register units per tile (zeros without a :class:`CompilerModel`)."""
    lists: np.ndarray | None = None
    """Axon lists per tile (one per input axon, or per source channel and kernel tap with a shared kernel)."""
    list_bits: np.ndarray | None = None
    """Synapse bits per tile as the :class:`CompilerModel` lays them out (weight bits for population-coded
    projections, its dense synapse width otherwise); without one, the weight bits."""

    @property
    def count(self) -> int:
        return int(self.neurons.size)

    def memory_use(self, profile: HardwareProfile) -> tuple[np.ndarray, int]:
        """Per tile: what the profile's synaptic memory limit is checked against, and that limit."""
        if profile.compiler:
            return self.synmem, profile.compiler.synmem_units_per_core
        return self.memory_bits, 8 * profile.synaptic_memory_bytes_per_core


def _outer(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (a[:, None, None] * b[None, :, None] * c[None, None, :]).ravel()


def population_coded(pop: Population, proj: Projection, compiler: CompilerModel | None) -> bool:
    """Loihi 2's convolutional connectivity: a shared-kernel projection onto a spatial population arrives on one
    population-coded axon per source core (the compiler's ``AxonIn`` of 1-2 for conv layers), not one per neuron."""
    return compiler is not None and proj.shared_per_channel > 0 and pop.shape[1] * pop.shape[2] > 1


def _tiling(pop: Population, tile: tuple[int, int, int], sharing: bool,
            compiler: CompilerModel | None = None) -> Tiling:
    """Metrics of every tile. With sharing, a conv's kernel slices are stored once per core even when it reads
    several summands (the same weights serve every source population). With a :class:`CompilerModel`, also the
    synaptic memory register units: one list per input axon (per source channel and kernel tap with a shared
    kernel), each ``header + ceil(synapses x units per synapse)``; population-coded projections count one input
    axon each."""
    blocks = tuple(_blocks(n, t) for n, t in zip(pop.shape, tile))
    n_c, n_h, n_w = (b[:, 1] - b[:, 0] for b in blocks)
    neurons = _outer(n_c, n_h, n_w)
    fan_in = np.zeros_like(neurons)
    stored = np.zeros_like(neurons)
    memory = np.zeros_like(neurons)
    synmem = np.zeros_like(neurons)
    all_lists = np.zeros_like(neurons)
    list_bits = np.zeros_like(neurons)
    synapses = np.zeros((len(pop.projections), neurons.size), dtype=np.int64)
    shared_done: set[str] = set()
    spatial = len(n_h) * len(n_w)
    for j, proj in enumerate(pop.projections):
        chans = np.array([len(c) for c in _channel_sets(proj.channels, pop.shape[0], tile[0])])
        rows, taps_h = _proj_spatial(proj, pop.shape, tile, 0)
        cols, taps_w = _proj_spatial(proj, pop.shape, tile, 1)
        axons = _outer(chans, rows[:, 1] - rows[:, 0], cols[:, 1] - cols[:, 0])
        fan_in += 1 if population_coded(pop, proj, compiler) else axons
        synapses[j] = (_unrolled_synapses(proj, pop.shape, tile) if proj.unrolled
                       else _outer(n_c * proj.channels.per_channel, taps_h, taps_w))
        if sharing and proj.shared_per_channel:
            if proj.synapse in shared_done:
                continue
            shared_done.add(proj.synapse)
            kept = np.repeat(n_c * proj.shared_per_channel, spatial)
            lists = np.repeat(chans * (proj.shared_per_channel // proj.channels.per_channel), spatial)
        else:
            kept, lists = synapses[j], axons
        stored += kept
        memory += kept * proj.weight_bits
        all_lists += lists
        bits = proj.weight_bits if compiler is None or population_coded(pop, proj, compiler) else None
        list_bits += kept * (compiler.dense_synapse_bits if bits is None else bits)
        if compiler:
            synmem += compiler.synmem_units(lists, kept, bits)
    return Tiling(tile, blocks, neurons, fan_in, synapses, stored, memory, synmem, all_lists, list_bits)


def _unrolled_synapses(proj: Projection, shape: Shape, tile: tuple[int, int, int]) -> np.ndarray:
    """Per tile: the synapses of a conv held unrolled (:attr:`Projection.unrolled`), its non-zero weights at the
    kernel taps that land inside the source (what Lava's ``DelaySparse`` of ``conv_pairs`` holds)."""
    per_channel = np.asarray(proj.unrolled).reshape(shape[0], *proj.kernel)
    blocks = np.add.reduceat(per_channel, _blocks(shape[0], tile[0])[:, 0], axis=0)  # [channel blocks, kh, kw]
    inside = []
    for axis in (0, 1):
        size, k = shape[1 + axis], proj.kernel[axis]
        at = np.arange(size)[:, None] * proj.stride[axis] - proj.padding[axis] + np.arange(k)[None, :]
        hits = ((at >= 0) & (at < proj.source_shape[1 + axis])).astype(np.int64)  # [target rows, taps]
        inside.append(np.add.reduceat(hits, _blocks(size, tile[1 + axis])[:, 0], axis=0))
    return np.einsum("cij,hi,wj->chw", blocks, *inside).ravel()


def _candidates(shape: Shape, cap: int) -> list[tuple[int, int, int]]:
    """Box shapes worth trying (each axis split into k near-equal parts), fewest cores first."""
    sizes = [sorted({-(-n // k) for k in range(1, n + 1)}) for n in shape]
    boxes = [t for t in cartesian(*sizes) if t[0] * t[1] * t[2] <= cap]
    return sorted(boxes, key=lambda t: (math.prod(-(-n // s) for n, s in zip(shape, t)), -t[0] * t[1] * t[2], t))


def _single_neuron(pop: Population, sharing: bool, compiler: CompilerModel | None = None) -> tuple[int, int]:
    """(fan-in, memory) of the worst single neuron: memory in bits, or in synaptic memory register units with a
    :class:`CompilerModel`. Maxima are taken per axis and projection: exact for one projection, an upper bound for
    several (their worst neurons are the interior ones, so it is tight in practice)."""
    fan_in = memory = 0
    shared_done: set[str] = set()
    for proj in pop.projections:
        chans = max(len(c) for c in _channel_sets(proj.channels, pop.shape[0], 1))
        (rows, taps_h), (cols, taps_w) = (_proj_spatial(proj, pop.shape, (1, 1, 1), axis) for axis in (0, 1))
        axons = chans * int((rows[:, 1] - rows[:, 0]).max()) * int((cols[:, 1] - cols[:, 0]).max())
        fan_in += 1 if population_coded(pop, proj, compiler) else axons
        if sharing and proj.shared_per_channel:
            kept = 0 if proj.synapse in shared_done else proj.shared_per_channel
            lists = 0 if proj.synapse in shared_done else proj.shared_per_channel // proj.channels.per_channel
            shared_done.add(proj.synapse)
        else:
            kept = proj.channels.per_channel * int(taps_h.max()) * int(taps_w.max())
            lists = axons
        if compiler:
            memory += int(compiler.synmem_units(np.array(lists), np.array(kept), proj.weight_bits
                                                if population_coded(pop, proj, compiler) else None))
        else:
            memory += kept * proj.weight_bits
    return fan_in, memory


def _over(t: Tiling, profile: HardwareProfile, ignore: set[str]) -> float:
    """How far the fullest tile is over the fan-in and memory limits (a ratio; <= 1: it fits)."""
    memory, limit = t.memory_use(profile)
    ratios = [0.0]
    if "fan_in" not in ignore:
        ratios.append(t.fan_in.max() / profile.fan_in_per_core)
    if "memory" not in ignore:
        ratios.append(memory.max() / limit)
    return float(max(ratios))


def _partition(pop: Population, profile: HardwareProfile, sharing: bool, cap: int,
               ignore: set[str]) -> Tiling:
    cap = min(cap, profile.neurons_per_core_for(pop.variant))
    if profile.compiler:
        found = _compiler_partition(pop, profile, sharing, cap, ignore)
        if found is not None:
            return found
    chosen: Tiling | None = None
    best_key = None
    best_cores = None
    for tile in _candidates(pop.shape, cap):
        cores = math.prod(-(-n // s) for n, s in zip(pop.shape, tile))
        if best_cores is not None and cores > best_cores:
            break
        t = _tiling(pop, tile, sharing, profile.compiler)
        if _over(t, profile, ignore) > 1:
            continue
        key = (int(t.fan_in.max()), int(t.memory_use(profile)[0].max()))
        if best_key is None or key < best_key:
            chosen, best_key, best_cores = t, key, cores
    assert chosen is not None, "the 1 x 1 x 1 box always fits once single-neuron violations are ignored"
    return chosen


def _compiler_partition(pop: Population, profile: HardwareProfile, sharing: bool, cap: int,
                        ignore: set[str]) -> Tiling | None:
    """Loihi 2's compiler as its printed output shows it (:class:`~snn_deploy.graph.profiles.CompilerModel`):
    a spatial layer is cut into W slices of whole (C, H) planes, the whole layer first, then 2^k columns; a
    non-spatial layer is cut into equal channel groups, their number multiplied by the ratio of the fullest core's
    synaptic memory to its limit until every core fits (the compiler's rule); a layer over on input axons alone
    (the spike products' ``kv`` sums) gets the fewest groups whose cores fit instead. None where no such cut fits
    (the free search takes over)."""
    c, h, w = pop.shape
    if h * w > 1:
        widths = [w] + [1 << k for k in range(max(w - 1, 1).bit_length() - 1, -1, -1) if (1 << k) < w]
        for width in widths:
            if c * h * width <= cap:
                t = _tiling(pop, (c, h, width), sharing, profile.compiler)
                if _over(t, profile, ignore) <= 1:
                    return t
        return None
    groups = -(-c // cap)
    while True:
        t = _tiling(pop, (-(-c // groups), 1, 1), sharing, profile.compiler)
        if _over(t, profile, ignore) <= 1:
            return t
        if groups >= c:
            return None
        memory = _over(t, profile, ignore | {"fan_in"})
        if memory > 1:  # the compiler's rule, as printed for PilotNet's dense layers
            groups = min(c, groups * max(2, math.ceil(memory)))
        else:  # over on input axons only: the compiler printed no such split; input axons grow with the channels
            # a core holds, so the fewest groups that fit is found directly (no doubling past the bound)
            groups = min(c, max(groups + 1, math.ceil(groups * _over(t, profile, ignore | {"memory"}))))


def _neuron_violations(pop: Population, profile: HardwareProfile, sharing: bool) -> tuple[set[str], list[Problem]]:
    """Limits a single neuron of ``pop`` breaks: no partition can fix these."""
    fan_in, used = _single_neuron(pop, sharing, profile.compiler)
    broken, problems = set(), []
    if fan_in > profile.fan_in_per_core:
        broken.add("fan_in")
        problems.append(Problem(pop.name, f"one neuron reads {fan_in} input axons, over the {profile.name} limit of "
                                f"{profile.fan_in_per_core} per core", "reduce the layer's fan-in (fewer input "
                                "channels or summands, a smaller kernel) or split its input channels"))
    if profile.compiler:
        limit, unit, memory = profile.compiler.synmem_units_per_core, "units", "synaptic memory register"
    else:
        limit, unit, memory = 8 * profile.synaptic_memory_bytes_per_core, "bits", "synaptic memory"
    if used > limit:
        broken.add("memory")
        problems.append(Problem(pop.name, f"one neuron's synapses need {used} {unit}, over the {limit}-{unit[:-1]} "
                                f"{memory} of a core", "use fewer or narrower weights per neuron"))
    for proj in pop.projections:
        if proj.weight_bits > profile.weight_bits:
            problems.append(Problem(proj.synapse, f"weights need {proj.weight_bits} bits, {profile.name} stores "
                                    f"{profile.weight_bits}", "re-quantize with narrower weights"))
    return broken, problems


# --- fan-out and traffic ----------------------------------------------------------------------------------------

def _overlap(src: Tiling, dst: Tiling, pop: Population, proj: Projection) -> np.ndarray:
    """[source tiles, destination tiles]: source neurons of each source tile that each destination tile reads."""
    (scb, shb, swb) = src.blocks
    sets = _channel_sets(proj.channels, pop.shape[0], dst.tile[0])
    ch = np.array([[np.searchsorted(s, b) - np.searchsorted(s, a) for s in sets] for a, b in scb])
    rows, _ = _proj_spatial(proj, pop.shape, dst.tile, 0)
    cols, _ = _proj_spatial(proj, pop.shape, dst.tile, 1)

    def inter(blocks: np.ndarray, fields: np.ndarray) -> np.ndarray:
        lo = np.maximum(blocks[:, None, 0], fields[None, :, 0])
        hi = np.minimum(blocks[:, None, 1], fields[None, :, 1])
        return np.clip(hi - lo, 0, None)

    r, c = inter(shb, rows), inter(swb, cols)
    full = ch[:, None, None, :, None, None] * r[None, :, None, None, :, None] * c[None, None, :, None, None, :]
    return full.reshape(src.count, dst.count)


def _whole(shape: Shape) -> Tiling:
    """A source off the neuro cores (host input, embedded core) as one tile covering it."""
    c, h, w = shape
    whole = np.array([c * h * w])
    none = np.zeros(1, dtype=np.int64)
    return Tiling((c, h, w), (np.array([[0, c]]), np.array([[0, h]]), np.array([[0, w]])), whole, none,
                  np.zeros((0, 1), dtype=np.int64), none, none, none)


# --- placement ------------------------------------------------------------------------------------------------

def _tile_of(core: int, profile: HardwareProfile, chips_per_row: int) -> tuple[int, tuple[int, int]]:
    per_chip = profile.cores_per_chip
    chip, local = divmod(core, per_chip)
    rows, cols = profile.mesh
    row, col = divmod(local // profile.cores_per_tile, cols)
    if row % 2:
        col = cols - 1 - col
    chip_row, chip_col = divmod(chip, chips_per_row)
    return chip, (chip_row * rows + row, chip_col * cols + col)


def _chip_corner(chip: int, profile: HardwareProfile, chips_per_row: int) -> tuple[int, int]:
    chip_row, chip_col = divmod(chip, chips_per_row)
    return chip_row * profile.mesh[0], chip_col * profile.mesh[1]


# --- the mapper -----------------------------------------------------------------------------------------------

def map_graph(graph: Graph, profile: HardwareProfile, *, products: str | None = None, sums: str | None = None,
              kernel_sharing: bool = True) -> Mapping:
    """Partition and place ``graph`` on ``profile``'s cores; violations are collected, never raised.

    ``products``: the spike products' lowering (default the graph's, ``Graph.attention``) or ``embedded``.
    ``sums``: ``relay`` (default where the target has graded spikes) or ``expand`` (default otherwise).
    """
    sums = sums or ("relay" if profile.graded_spikes else "expand")
    products = products or graph.attention
    lowered = lower(graph, products, sums)
    pops = list(lowered.populations)
    by_name = {p.name: p for p in pops}
    depths = dict(lowered.depths)
    problems = list(target_problems(graph, profile))
    ignore: dict[str, set[str]] = {}
    for pop in pops:
        ignore[pop.name], found = _neuron_violations(pop, profile, kernel_sharing)
        problems += found
    caps = {p.name: profile.neurons_per_core_for(p.variant) for p in pops}
    tilings = {p.name: _partition(p, profile, kernel_sharing, caps[p.name], ignore[p.name]) for p in pops}
    for _ in range(MAX_FAN_OUT_ROUNDS):
        fan_out = _fan_out(graph, pops, tilings, products, profile.compiler)
        over = [name for name, f in fan_out.items() if f.max() > profile.fan_out_per_core and caps[name] > 1]
        if not over:
            break
        for name in over:
            t = tilings[name]
            caps[name] = max(1, min(caps[name] - 1, int(t.neurons.max() * profile.fan_out_per_core
                                                         // fan_out[name].max())))
            tilings[name] = _partition(by_name[name], profile, kernel_sharing, caps[name], ignore[name])
    fan_out = _fan_out(graph, pops, tilings, products, profile.compiler)
    for name, f in fan_out.items():
        if f.max() > profile.fan_out_per_core:
            problems.append(Problem(name, f"a core sends {int(f.max())} output axons, over the {profile.name} limit "
                                    f"of {profile.fan_out_per_core}", "fewer consumers or wider consumer cores"))
    problems += _delay_problems(pops, depths, profile, lowered.ticks_per_step)
    problems += attention_problems(graph, profile, products)

    total = sum(t.count for t in tilings.values())
    chips_per_row = max(1, math.ceil(math.sqrt(-(-total // profile.cores_per_chip))))
    cores, layers, first = _place(pops, tilings, fan_out, depths, profile, chips_per_row)
    traffic = _traffic(graph, pops, tilings, first, cores, products, profile, chips_per_row)
    per_core = {p.name: tilings[p.name].synapses for p in pops}
    return Mapping(profile, products, sums, kernel_sharing, pops, {**_host_layers(graph), **layers}, cores, traffic,
                   problems, depths, per_core, lowered.ticks_per_step)


def _host_layers(graph: Graph) -> dict[str, LayerMap]:
    """The LIFs the host computes, listed (not dropped) with no cores and no on-chip synapses."""
    return {n.name: LayerMap(n.name, "lif", n.name, n.shape, n.neurons, 0, 0, n.shape, range(0), None, 0, "host")
            for n in graph.of_kind(LIFNode) if n.name in graph.host}


@dataclass(frozen=True)
class _Edge:
    population: Population | None
    """Destination population; None for q, k, v spikes sent to an embedded core."""
    projection: int
    source: str
    overlap: np.ndarray
    product: str = ""


def _edges(graph: Graph, pops: list[Population], tilings: dict[str, Tiling], products: str):
    """Every projection's overlap matrix [source tiles, destination tiles], and in the embedded model the q, k, v
    spikes each product's embedded core receives (one axon per neuron)."""
    for pop in pops:
        for j, proj in enumerate(pop.projections):
            src = tilings.get(proj.source) or _whole(proj.source_shape)
            yield _Edge(pop, j, proj.source, _overlap(src, tilings[pop.name], pop, proj))
    choices = product_choices(graph, products)
    for node in graph.of_kind(SpikeProductNode):
        if choices[node.name] == "embedded":
            for name in node.inputs:
                yield _Edge(None, -1, name, tilings[name].neurons[:, None], node.name)


def _fan_out(graph: Graph, pops: list[Population], tilings: dict[str, Tiling], products: str,
             compiler: CompilerModel | None = None) -> dict[str, np.ndarray]:
    """Output axons per core: one per (neuron, destination core); with a :class:`CompilerModel`, one per (source
    core, destination core) for population-coded targets and one per (neuron, destination layer) otherwise."""
    fan_out = {p.name: np.zeros(tilings[p.name].count, dtype=np.int64) for p in pops}
    for edge in _edges(graph, pops, tilings, products):
        if edge.source not in fan_out:
            continue
        if compiler is None:
            fan_out[edge.source] += edge.overlap.sum(1)
        elif edge.population is not None and population_coded(
                edge.population, edge.population.projections[edge.projection], compiler):
            fan_out[edge.source] += (edge.overlap > 0).sum(1)
        else:
            fan_out[edge.source] += edge.overlap.max(1)
    return fan_out


def _delay_problems(pops: list[Population], depths: dict[str, int], profile: HardwareProfile, ticks: int = 1
                    ) -> list[Problem]:
    """Shorter paths are delayed to the longest one with synaptic delays; each delay is bounded."""
    out = []
    for pop in pops:
        for proj in pop.projections:
            if proj.kind == "recurrent":
                continue
            delay = depths[pop.name] - 1 - proj.wait - depths[proj.source]
            delay = (delay % ticks if proj.periodic else delay) + proj.max_delay
            if delay > profile.max_synaptic_delay:
                out.append(Problem(pop.name, f"input {proj.source} must be delayed {delay} steps, over the "
                                   f"{profile.max_synaptic_delay}-step synaptic delay", "add relay neurons"))
    return out


def _place(pops: list[Population], tilings: dict[str, Tiling], fan_out: dict[str, np.ndarray],
           depths: dict[str, int], profile: HardwareProfile, chips_per_row: int
           ) -> tuple[list[Core], dict[str, LayerMap], dict[str, int]]:
    """Cores in population order on the mesh; per population its layer summary and first core index."""
    cores: list[Core] = []
    layers: dict[str, LayerMap] = {}
    first: dict[str, int] = {}
    for pop in pops:
        t = tilings[pop.name]
        first[pop.name] = len(cores)
        for i, (ci, hi, wi) in enumerate(np.ndindex(*(len(b) for b in t.blocks))):
            (c0, c1), (h0, h1), (w0, w1) = t.blocks[0][ci], t.blocks[1][hi], t.blocks[2][wi]
            chip, tile = _tile_of(len(cores), profile, chips_per_row)
            cores.append(Core(len(cores), pop.name, (int(c0), int(c1), int(h0), int(h1), int(w0), int(w1)), chip,
                              tile, int(t.neurons[i]), int(t.fan_in[i]), int(fan_out[pop.name][i]),
                              int(t.synapses[:, i].sum()), int(t.stored[i]), int(t.memory_bits[i]),
                              int(t.synmem[i]), pop.variant))
        span = range(first[pop.name], len(cores))
        use = [cores[i].utilisation(profile) for i in span]
        worst = max(u[m] for u in use for m in METRICS)
        limited = next(m for m in METRICS if any(u[m] == worst for u in use))
        layers[pop.name] = LayerMap(pop.name, pop.kind, pop.node, pop.shape, pop.neurons, int(t.synapses.sum()),
                                    int(t.stored.sum()), t.tile, span, limited, depths[pop.name])
    return cores, layers, first


def _traffic(graph: Graph, pops: list[Population], tilings: dict[str, Tiling], first: dict[str, int],
             cores: list[Core], products: str, profile: HardwareProfile, chips_per_row: int) -> list[Traffic]:
    """Edges with axons between cores. The host sits at the corner of chip 0; a product's embedded core at the corner
    of the chip holding its attention neurons' first core."""
    tiles = np.array([c.tile for c in cores]).reshape(-1, 2)
    product_names = {n.name for n in graph.of_kind(SpikeProductNode)}
    consumer = {p.source: pop.name for pop in pops for p in pop.projections if p.source in product_names}

    def corner(chip: int, n: int) -> np.ndarray:
        return np.tile(_chip_corner(chip, profile, chips_per_row), (n, 1))

    out = []
    for edge in _edges(graph, pops, tilings, products):
        s, d = np.nonzero(edge.overlap)
        axons = edge.overlap[s, d]
        if edge.population is None:
            src = first[edge.source] + s
            chip = cores[first[consumer[edge.product]]].chip
            out.append(Traffic(edge.product, -1, edge.source, src, np.full(len(s), HOST), tiles[src],
                               corner(chip, len(s)), axons))
            continue
        name = edge.population.name
        dst = first[name] + d
        if edge.source in first:
            src, src_tile = first[edge.source] + s, tiles[first[edge.source] + s]
        else:
            chip = cores[first[name]].chip if edge.source in consumer else 0
            src, src_tile = np.full(len(s), HOST), corner(chip, len(s))
        out.append(Traffic(name, edge.projection, edge.source, src, dst, src_tile, tiles[dst], axons))
    return out
