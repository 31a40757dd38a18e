"""Per-tick cost of a mapped graph on Loihi-class hardware, and the SNN papers' 45 nm energy convention.

Why two models: the hardware estimate (:func:`hardware_cost`) is what a deployment costs on the target, built from
the mapper's cores and the simulated activity; the papers' convention (:func:`paper_energy`) is what Spikformer,
Spikformer V2 and QKFormer publish, so users can put their model next to the published numbers. They answer
different questions and are never mixed.

Hardware model, per core and tick (figures from the profile; docs/hardware.md has the derivation):

* synaptic ops: the simulator's counts of each projection, shared among the population's cores in proportion to
  the synapses each holds (events spread uniformly);
* neuron updates: every neuron updates every tick; *active* = it spikes, *inactive* = the others;
* spike messages: a spike goes once to every destination core its neuron has an axon to; a message costs a
  within-tile delivery plus one east-west hop per column and one north-south hop per row of the mesh crossed;
* tick time = slowest core (ops x per-op time) + routing (the busiest sender's messages x within-tile spike time,
  plus the longest path in hops) + barrier synchronisation (interpolated over the tiles in use).

Timing: population ``p`` at depth ``d_p`` handles functional step ``t`` at tick ``t + d_p``. One inference alone
takes ``T + depth`` ticks (latency); samples streamed back to back take ``T`` ticks each, every tick mixing
steps of consecutive samples (throughput). Energy per inference counts ``T`` ticks of every neuron (streamed).
Static power is not modelled (no published figure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snn_deploy.graph import CMOS_45NM, ConvNode, Figure, Graph, HardwareProfile, SpikeProductNode
from snn_deploy.sims.driver import Activity
from snn_deploy.sims.mapper import HOST, Mapping

COMPONENTS = ("synaptic_ops", "neuron_updates_active", "neuron_updates_inactive", "spike_delivery",
              "mesh_hops_east_west", "mesh_hops_north_south")
ENERGY_KEYS = {"synaptic_ops": "synaptic_op", "neuron_updates_active": "neuron_update_active",
               "neuron_updates_inactive": "neuron_update_inactive", "spike_delivery": "spike_within_tile",
               "mesh_hops_east_west": "mesh_hop_east_west", "mesh_hops_north_south": "mesh_hop_north_south"}
"""Energy component -> the profile's per-event figure."""


def barrier_ns(profile: HardwareProfile, tiles: int) -> Figure:
    """Barrier synchronisation for ``tiles`` tiles: the published end points (1 and 32 tiles), linear between and
    beyond them (an estimate everywhere except at the end points)."""
    lo, hi = profile.time_ns["barrier_sync_1_tile"], profile.time_ns["barrier_sync_32_tiles"]
    value = lo.value + (hi.value - lo.value) * (tiles - 1) / 31
    exact = tiles in (1, 32)
    return Figure(value, "ns", f"{lo.source}; linear in the tile count between 1 and 32 tiles"
                  + ("" if exact else f" ({tiles} tiles: interpolated)"), estimated=lo.estimated or not exact)


@dataclass
class Rates:
    """Per-sample activity of every spike source and projection, per functional step."""

    spikes: dict[str, np.ndarray]
    """Spikes per step of every source: populations, the input node (non-zero payloads), embedded products."""
    synops: dict[str, np.ndarray]
    """Per population: synaptic ops [projections, T]."""


def rates(graph: Graph, mapping: Mapping, activity: Activity) -> Rates:
    """Turn the driver's totals into per-sample activity of the mapping's populations and projections."""
    n = max(activity.samples, 1)
    spikes = {name: s / n for name, s in activity.spikes.items()}
    spikes[graph.input.name] = activity.input_events / n
    spikes.update({name: s / n for name, s in activity.sum_events.items()})  # a relay's graded spikes
    array_counts = {"and": "pairs", "kv": "kv_nonzero", "gate": "gates"}
    for name, counts in activity.products.items():
        spikes[name] = counts["out_nonzero"] / n  # what an embedded core sends
    for pop in mapping.populations:
        if pop.kind in array_counts:
            spikes[pop.name] = activity.products[pop.node][array_counts[pop.kind]] / n
    convs = {node.name for node in graph.of_kind(ConvNode)}
    synops = {}
    for pop in mapping.populations:
        rows = []
        for j, proj in enumerate(pop.projections):
            if proj.synapse in convs:
                rows.append(activity.conv_events[(proj.synapse, proj.source)] / n)
            else:  # uniform fan-out: every source event reaches synapses / source neurons targets
                per_event = mapping.per_core_synapses[pop.name][j].sum() / np.prod(proj.source_shape)
                rows.append(spikes[proj.source] * per_event)
        synops[pop.name] = np.array(rows).reshape(len(pop.projections), activity.T)
    return Rates(spikes, synops)


@dataclass
class CoreLoad:
    """Per core and functional step (per sample): synaptic ops and spikes (active updates); neurons and depth."""

    synops: np.ndarray
    spikes: np.ndarray
    neurons: np.ndarray
    depth: np.ndarray


@dataclass
class EdgeLoad:
    """Messages per functional step on every core-to-core edge, their hops, and the source's depth."""

    messages: np.ndarray
    east_west: np.ndarray
    north_south: np.ndarray
    depth: np.ndarray
    sender: np.ndarray
    """Index of the sending core, HOST for the host or an embedded core."""
    layer: list[str]
    """Population the edge's energy is charged to: its sender, or the receiver for off-core senders."""


def loads(graph: Graph, mapping: Mapping, r: Rates) -> tuple[CoreLoad, EdgeLoad]:
    """Per-core and per-edge activity (per sample and functional step) under uniform spiking within a population."""
    T = graph.T
    cores = mapping.cores
    synops = np.zeros((len(cores), T))
    spikes = np.zeros((len(cores), T))
    neurons = np.array([c.neurons for c in cores], dtype=float)
    depth = np.array([mapping.layers[c.population].depth for c in cores])
    for pop in mapping.populations:
        span = mapping.layers[pop.name].cores
        per_core = mapping.per_core_synapses[pop.name].astype(float)  # [P, cores]
        share = per_core / np.maximum(per_core.sum(1, keepdims=True), 1)
        synops[span.start:span.stop] = share.T @ r.synops[pop.name]
        spikes[span.start:span.stop] = neurons[span.start:span.stop, None] / pop.neurons * r.spikes[pop.name]
    messages, ew, ns, edge_depth, sender, layer = [], [], [], [], [], []
    for tr in mapping.traffic:
        source_neurons = _source_neurons(graph, mapping, tr.source)
        rate = r.spikes[tr.source] / source_neurons
        messages.append(tr.axons[:, None] * rate[None, :])
        ew.append(np.abs(tr.src_tile[:, 1] - tr.dst_tile[:, 1]))
        ns.append(np.abs(tr.src_tile[:, 0] - tr.dst_tile[:, 0]))
        edge_depth.append(np.full(len(tr.axons), mapping.depths[tr.source]))
        sender.append(tr.src)
        owner = tr.population if (tr.src == HOST).all() else tr.source
        layer += [owner] * len(tr.axons)
    edges = EdgeLoad(np.concatenate(messages) if messages else np.zeros((0, T)),
                     *(np.concatenate(a) if a else np.zeros(0, int) for a in (ew, ns, edge_depth, sender)), layer)
    return CoreLoad(synops, spikes, neurons, depth), edges


def _source_neurons(graph: Graph, mapping: Mapping, name: str) -> int:
    if name in mapping.layers:
        return mapping.layers[name].neurons
    return int(np.prod(graph[name].shape))


@dataclass
class HardwareCost:
    """Per-inference energy and timing of one mapping (every figure an estimate built on the profile's figures)."""

    products: str
    energy_pj: dict[str, float]
    layer_energy_pj: dict[str, dict[str, float]]
    layer_synops: dict[str, float]
    core_synops: np.ndarray
    """Synaptic ops per core and inference."""
    tick_ns: dict[str, np.ndarray]
    """``compute``, ``routing``, ``barrier`` and ``total`` per tick of one inference alone (T + depth ticks)."""
    steady_tick_ns: np.ndarray
    """Tick times with samples streamed back to back (T ticks per sample)."""
    barrier: Figure
    constants: dict[str, Figure]
    embedded_accumulates: float | None = None
    """Embedded model: accumulates per inference on the embedded cores (time and energy not published)."""
    notes: list[str] = field(default_factory=list)

    @property
    def energy_total_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    @property
    def latency_ns(self) -> float:
        return float(self.tick_ns["total"].sum())

    @property
    def time_per_sample_ns(self) -> float:
        return float(self.steady_tick_ns.sum())

    @property
    def synaptic_ops(self) -> float:
        return float(self.core_synops.sum())


def hardware_cost(graph: Graph, mapping: Mapping, activity: Activity) -> HardwareCost:
    """Energy per inference by component and layer, and tick times, of ``mapping`` running ``activity``."""
    profile = mapping.profile
    e, t = profile.energy_pj, profile.time_ns
    r = rates(graph, mapping, activity)
    core, edge = loads(graph, mapping, r)
    T = activity.T
    inactive = core.neurons[:, None] - core.spikes
    per_core = {"synaptic_ops": core.synops, "neuron_updates_active": core.spikes,
                "neuron_updates_inactive": inactive}
    hop_messages = {"spike_delivery": edge.messages, "mesh_hops_east_west": edge.messages * edge.east_west[:, None],
                    "mesh_hops_north_south": edge.messages * edge.north_south[:, None]}
    energy = {k: float(v.sum()) * e[ENERGY_KEYS[k]].value for k, v in {**per_core, **hop_messages}.items()}
    layer_energy = {name: dict.fromkeys(COMPONENTS, 0.0) for name in mapping.layers}
    for name, layer in mapping.layers.items():
        for k, v in per_core.items():
            layer_energy[name][k] = float(v[layer.cores.start:layer.cores.stop].sum()) * e[ENERGY_KEYS[k]].value
    for k, v in hop_messages.items():
        per_edge = v.sum(1) * e[ENERGY_KEYS[k]].value
        for owner, value in zip(edge.layer, per_edge):
            layer_energy[owner][k] += float(value)
    layer_synops = {name: float(core.synops[layer.cores.start:layer.cores.stop].sum())
                    for name, layer in mapping.layers.items()}
    barrier = barrier_ns(profile, mapping.tiles_used)
    single = _ticks(core, edge, t, T, T + mapping.pipeline_depth, barrier.value, streamed=False)
    steady = _ticks(core, edge, t, T, T, barrier.value, streamed=True)["total"]
    constants = {f"energy.{k}": e[k] for k in ENERGY_KEYS.values()}
    constants.update({f"time.{k}": t[k] for k in ("synaptic_op", "neuron_update_active", "neuron_update_inactive",
                                                  "spike_within_tile", "mesh_hop_east_west", "mesh_hop_north_south")})
    constants["time.barrier_sync"] = barrier
    notes = ["static (leakage) power is not modelled: no published figure",
             "chip-to-chip links are costed as on-chip mesh hops (no published figure): a lower bound"]
    accumulates = None
    if mapping.products == "embedded" and activity.products:
        accumulates = float(sum(c["accumulates"].sum() for c in activity.products.values())) / max(activity.samples, 1)
        notes.append("spike products run on embedded x86 cores: their accumulates are counted but not timed or "
                     "costed (Intel publishes no per-operation figures for them)")
    return HardwareCost(mapping.products, energy, layer_energy, layer_synops, core.synops.sum(1), single, steady,
                        barrier, constants, accumulates, notes)


def _ticks(core: CoreLoad, edge: EdgeLoad, t: dict[str, Figure], T: int, ticks: int, barrier: float, *,
           streamed: bool) -> dict[str, np.ndarray]:
    """Tick times: population at depth d handles step (tick - d), modulo T when samples are streamed."""
    def at(values: np.ndarray, depth: np.ndarray) -> np.ndarray:
        step = np.arange(ticks)[None, :] - depth[:, None]
        if streamed:
            step %= T
        valid = (step >= 0) & (step < T)
        picked = np.take_along_axis(values, np.clip(step, 0, T - 1), 1) if values.size else values
        return np.where(valid, picked, 0.0)

    synops, spikes = at(core.synops, core.depth), at(core.spikes, core.depth)
    compute = (synops * t["synaptic_op"].value + spikes * t["neuron_update_active"].value
               + (core.neurons[:, None] - spikes) * t["neuron_update_inactive"].value)
    messages = at(edge.messages, edge.depth)
    sent = np.zeros((len(core.neurons), ticks))
    on_core = edge.sender != HOST
    np.add.at(sent, edge.sender[on_core], messages[on_core])
    path = (t["spike_within_tile"].value + edge.east_west * t["mesh_hop_east_west"].value
            + edge.north_south * t["mesh_hop_north_south"].value)
    longest = np.where(messages > 0, path[:, None], 0.0).max(0) if len(path) else np.zeros(ticks)
    routing = (sent.max(0) if len(sent) else np.zeros(ticks)) * t["spike_within_tile"].value + longest
    parts = {"compute": compute.max(0) if len(compute) else np.zeros(ticks), "routing": routing,
             "barrier": np.full(ticks, barrier)}
    parts["total"] = parts["compute"] + parts["routing"] + parts["barrier"]
    return parts


# --- the papers' 45 nm convention --------------------------------------------------------------------------------

def paper_flops(node: ConvNode) -> int:
    """Operations per step as the papers count a conv: output positions x kernel weights. A learned layer counts
    every weight; a fixed routing pattern of the lowering (all non-zero weights equal: head sums, channel
    expansion, relays of Q-K attention) counts only the connections it has."""
    nonzero = node.weight[node.weight != 0]
    fixed = nonzero.size > 0 and bool((nonzero == nonzero[0]).all())
    taps = int(nonzero.size) if fixed else int(node.weight.size)
    return node.shape[1] * node.shape[2] * taps


@dataclass(frozen=True)
class PaperLayer:
    """One synapse layer in the papers' convention."""

    name: str
    kind: str
    """``mac`` (analog input: multiply-accumulates), ``ac`` (spike-driven accumulates) or ``attention``."""
    flops: int
    """Per step; for ``attention``, ``q k^T v`` products: 2 heads N d^2."""
    input_rate: float
    """Mean events per input neuron and step (1 for the analog input)."""
    sops: float
    energy_pj: float


@dataclass(frozen=True)
class PaperEstimate:
    layers: list[PaperLayer]
    constants: dict[str, Figure]

    @property
    def energy_pj(self) -> float:
        return float(sum(layer.energy_pj for layer in self.layers))

    @property
    def sops(self) -> float:
        return float(sum(layer.sops for layer in self.layers if layer.kind != "mac"))

    @property
    def mac_flops(self) -> int:
        return sum(layer.flops for layer in self.layers if layer.kind == "mac")


def paper_energy(graph: Graph, activity: Activity) -> PaperEstimate:
    """Energy as Spikformer / QKFormer compute it (45 nm, 0.9 pJ per accumulate, 4.6 pJ per MAC).

    ``E = E_MAC FLOPs(first conv) + E_AC (sum of SOPs)``, with ``SOPs = input firing rate x T x FLOPs`` per layer.
    The first conv reads analog pixels and counts its FLOPs once, as in the papers' equation (the chip repeats it
    every step). An integer residual input's rate is its mean value (every summand spike is an accumulate).
    Spike products add ``T heads N d^2 (min(fr_k, fr_v) + fr_q)`` accumulates (the public Spikingformer counter).
    """
    T, n = activity.T, max(activity.samples, 1)
    e_ac, e_mac = CMOS_45NM["accumulate"].value, CMOS_45NM["mac"].value

    def rate(name: str) -> float:
        events = sum(float(activity.spikes[s].sum()) for s in graph.summands(name))
        return events / n / (np.prod(graph[name].shape) * T)

    layers = []
    for node in graph.nodes:
        if isinstance(node, ConvNode) and node.role != "spike_pool":  # the papers count no operations for pooling
            flops = paper_flops(node)
            if node.inputs[0] == graph.input.name:
                layers.append(PaperLayer(node.name, "mac", flops, 1.0, 0.0, e_mac * flops))
            else:
                fr = rate(node.inputs[0])
                layers.append(PaperLayer(node.name, "ac", flops, fr, fr * T * flops, e_ac * fr * T * flops))
        elif isinstance(node, SpikeProductNode):
            c, h, w = node.shape
            d = c // node.heads
            per_step = node.heads * h * w * d * d
            fq, fk, fv = (rate(i) for i in node.inputs)
            sops = T * per_step * (min(fk, fv) + fq)
            layers.append(PaperLayer(node.name, "attention", 2 * per_step, (min(fk, fv) + fq) / 2, sops, e_ac * sops))
    return PaperEstimate(layers, dict(CMOS_45NM))
