"""Per-tick cost of a mapped graph on Loihi-class hardware, and the SNN papers' 45 nm energy convention.

Why two models: the hardware estimate (:func:`hardware_cost`) is what a deployment costs on the target, built from
the mapper's cores and the simulated activity; the papers' convention (:func:`paper_energy`) is what Spikformer,
Spikformer V2 and QKFormer publish, so users can put their model next to the published numbers. They answer
different questions and are never mixed.

Hardware model (figures from the profile; docs/hardware.md has the derivation). Per core and tick:

* synaptic ops: the simulator's counts of each projection, shared among the population's cores in proportion to
  the synapses each holds (events spread uniformly); the ``packed`` lowering's populations and projections at the
  run's own counts of them (``packed events`` / ``packed ops``: exact, tests/test_lava_events.py);
* neuron (dendrite) updates: every neuron updates every tick; *active* = it spikes, *inactive* = the others;
* spikes out / in: a spike goes once to every destination core its neuron has an axon to (a message), routed X
  then Y (dimension order) over the mesh; a message costs a within-tile delivery plus one east-west hop per column
  and one north-south hop per row crossed.

Tick time, a max-affine (roofline) lower bound in the spirit of Timcheck et al. (arXiv 2601.10035): the largest of
every core's compute (synaptic ops x t_syn + active x t_active + inactive x t_inactive), every core's messages out
and in (x the within-tile spike time), and every mesh link's load under X-Y routing (x the hop time of its
direction); plus barrier synchronisation (interpolated over the tiles in use). Every time is multiplied by the
profile's calibrated time scale (1 without a calibration).

Energy per inference: dynamic = sum of operations x per-operation energy, times the calibrated energy scale;
static = the profile's static power per chip x chips x the run time of one inference streamed (``T`` ticks).

Timing: population ``p`` at depth ``d_p`` handles functional step ``t`` at tick ``t + d_p``. One inference alone
takes ``T + depth`` ticks (latency); samples streamed back to back take ``T`` ticks each, every tick mixing
steps of consecutive samples (throughput). Energy per inference counts ``T`` ticks of every neuron (streamed).
A lowering whose step takes ``P`` chip ticks (``Mapping.ticks_per_step``, token-serial) has depths in ticks and
handles step ``t`` at tick ``t P + d_p``: one inference takes ``T P + depth`` ticks, a streamed one ``T P``, and
every neuron updates ``T P`` times (:func:`_ticks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snn_deploy.graph import CMOS_45NM, Activity, ConvNode, Figure, Graph, HardwareProfile, SpikeProductNode
from snn_deploy.graph.hardware import PACKED_EVENTS, PACKED_OPS
from snn_deploy.sims.hardware.mapper import HOST, Mapping, product_choices

HOST_IO_EVIDENCE = ("a host-fed Loihi 2 run (PilotNet SDNN, frames streamed from the host) measured 16.87 "
                    "inferences / s where the chip-only PilotNet LIF run did 408.91 / s (lava-dl benchmark notebooks)")
"""What is known of the host I/O's cost: the figures assume the input is already on the chip."""
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


def _packed_count(activity: Activity, product: str, key: str) -> np.ndarray:
    """One of the ``packed`` lowering's counts of ``product`` (``hardware.packed_count_keys``), which every run and
    stated activity carries for a product that can be packed."""
    counts = activity.products[product]
    if key not in counts:
        raise ValueError(f"the activity has no {key!r} count of {product}: measure it again with this version "
                         "(runs count the packed lowering's events since it is priced exactly)")
    return counts[key]


def rates(graph: Graph, mapping: Mapping, activity: Activity) -> Rates:
    """Turn the driver's totals into per-sample activity of the mapping's populations and projections."""
    n = max(activity.samples, 1)
    spikes = {name: s / n for name, s in activity.spikes.items()}
    spikes[graph.input.name] = activity.input_events / n
    spikes.update({name: s / n for name, s in activity.sum_events.items()})  # a relay's graded spikes
    array_counts = {"and": "pairs", "kvrow": "kvrow_nonzero", "kv": "kv_nonzero", "gate": "gates",
                    "demux": "out_nonzero"}
    for name, counts in activity.products.items():
        spikes[name] = counts["out_nonzero"] / n  # what an embedded core sends
    choices = product_choices(graph, mapping.products)
    packed: dict[str, str] = {}  # population -> its suffix, for the packed lowering's own counts
    for pop in mapping.populations:
        if pop.node in choices and choices[pop.node] == "packed":
            packed[pop.name] = pop.name.removeprefix(pop.node + ".")
            spikes[pop.name] = _packed_count(activity, pop.node, PACKED_EVENTS + packed[pop.name]) / n
        elif pop.kind in array_counts:
            spikes[pop.name] = activity.products[pop.node][array_counts[pop.kind]] / n
        if pop.kind == "clock":  # one spike a step
            spikes[pop.name] = np.ones(activity.T)
        elif pop.neuron == "accumulator":  # sends its window's sum on every tick it is non-zero: at most the step's
            spikes[pop.name] = spikes[pop.name] * mapping.ticks_per_step  # ticks (an upper bound)
    convs = {node.name for node in graph.of_kind(ConvNode)}
    synops = {}
    for pop in mapping.populations:
        rows = []
        for j, proj in enumerate(pop.projections):
            if pop.name in packed:  # counted per source channel, at the fan-out Lava holds (exact)
                rows.append(_packed_count(activity, pop.node, f"{PACKED_OPS}{packed[pop.name]} {j}") / n)
            elif proj.synapse in convs and not proj.unrolled:
                rows.append(activity.conv_events[(proj.synapse, proj.source)] / n)
            else:  # uniform fan-out: every source event reaches synapses / source neurons targets (for an unrolled
                # conv: its non-zero synapses; exact where every source neuron has as many, as an identity relay)
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
    receiver: np.ndarray
    """Index of the receiving core, HOST for an embedded core."""
    src_tile: np.ndarray
    """[E, 2] global (row, column) of the sender's tile."""
    dst_tile: np.ndarray
    owner: np.ndarray
    """Per edge, the index into ``owners`` of the population its energy is charged to: its sender, or the receiver
    for off-core senders."""
    owners: list[str]


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
    messages, ew, ns, edge_depth, sender, receiver, src_tile, dst_tile, owner = [], [], [], [], [], [], [], [], []
    owners: dict[str, int] = {}
    for tr in mapping.traffic:
        source_neurons = _source_neurons(graph, mapping, tr.source)
        rate = r.spikes[tr.source] / source_neurons
        messages.append(tr.axons[:, None] * rate[None, :])
        ew.append(np.abs(tr.src_tile[:, 1] - tr.dst_tile[:, 1]))
        ns.append(np.abs(tr.src_tile[:, 0] - tr.dst_tile[:, 0]))
        edge_depth.append(np.full(len(tr.axons), mapping.depths[tr.source]))
        sender.append(tr.src)
        receiver.append(tr.dst)
        src_tile.append(tr.src_tile.reshape(-1, 2))
        dst_tile.append(tr.dst_tile.reshape(-1, 2))
        name = tr.population if (tr.src == HOST).all() else tr.source
        owner.append(np.full(len(tr.axons), owners.setdefault(name, len(owners))))
    edges = EdgeLoad(np.concatenate(messages) if messages else np.zeros((0, T)),
                     *(np.concatenate(a) if a else np.zeros(0, int) for a in (ew, ns, edge_depth, sender, receiver)),
                     *(np.concatenate(a) if a else np.zeros((0, 2), int) for a in (src_tile, dst_tile)),
                     np.concatenate(owner) if owner else np.zeros(0, int), list(owners))
    return CoreLoad(synops, spikes, neurons, depth), edges


def _source_neurons(graph: Graph, mapping: Mapping, name: str) -> int:
    if name in mapping.layers:
        return mapping.layers[name].neurons
    return int(np.prod(graph[name].shape))


TIME_KEYS = ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_within_tile",
             "mesh_hop_east_west", "mesh_hop_north_south")
BOUNDS = ("compute", "spikes_out", "spikes_in", "links")
"""The affine bounds of a tick, before the barrier: per-core compute, per-core messages out and in, mesh links."""


@dataclass
class HardwareCost:
    """Per-inference energy and timing of one mapping (figures built on the profile's, labelled by provenance)."""

    products: str
    energy_pj: dict[str, float]
    """Dynamic energy by component (calibrated energy scale applied)."""
    layer_energy_pj: dict[str, dict[str, float]]
    layer_synops: dict[str, float]
    core_synops: np.ndarray
    """Synaptic ops per core and inference."""
    tick_ns: dict[str, np.ndarray]
    """Each bound of :data:`BOUNDS`, ``barrier`` and ``total`` per tick of one inference alone (T + depth ticks)."""
    steady_tick_ns: np.ndarray
    """Tick times with samples streamed back to back (T ticks per sample)."""
    core_time_ns: np.ndarray
    """[cores, T]: each core's own bound (the largest of its compute, messages out and in) per streamed tick."""
    layer_time_ns: dict[str, float]
    """Per layer: its slowest core's time summed over the T streamed ticks of one inference (0 on the host)."""
    static_energy_pj: float
    """Static power x chips x the streamed time of one inference (0 where the profile has no static figure)."""
    barrier: Figure
    constants: dict[str, Figure]
    labels: dict[str, str]
    """``time`` and ``energy``: how the figures were obtained (calibrated on what with which residual, or
    estimated from what)."""
    embedded_accumulates: float | None = None
    """Embedded model: accumulates per inference on the embedded cores (time and energy not published)."""
    notes: list[str] = field(default_factory=list)
    static_modelled: bool = True
    """False where the profile has no static power figure (``static_energy_pj`` is then 0: not modelled)."""
    not_modelled: list[dict[str, str]] = field(default_factory=list)
    """Work the chip does (or waits for) that no figure includes: ``what``, the figures it would change
    (``affects``) and what is known of its size (``evidence``)."""
    ticks_per_step: int = 1
    """Chip ticks per functional step (the mapping's; > 1 for a token-serial lowering)."""

    @property
    def dynamic_energy_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    @property
    def energy_total_pj(self) -> float:
        return self.dynamic_energy_pj + self.static_energy_pj

    @property
    def static_energy_single_pj(self) -> float:
        """Static energy of one inference on its own (static power x chips over its latency, pipeline fill and
        drain included), where ``static_energy_pj`` uses the streamed time per sample."""
        per_sample = self.time_per_sample_ns
        return self.static_energy_pj * self.latency_ns / per_sample if per_sample else 0.0

    @property
    def latency_ns(self) -> float:
        return float(self.tick_ns["total"].sum())

    @property
    def time_per_sample_ns(self) -> float:
        return float(self.steady_tick_ns.sum())

    @property
    def time_per_step_ns(self) -> float:
        return self.time_per_sample_ns * self.ticks_per_step / max(self.steady_tick_ns.size, 1)

    @property
    def synaptic_ops(self) -> float:
        return float(self.core_synops.sum())

    @property
    def bottleneck_core(self) -> int:
        """The core whose own bound, summed over a streamed inference, is the largest (-1: no cores)."""
        totals = self.core_time_ns.sum(1)
        return int(totals.argmax()) if totals.size else -1


def scales(profile: HardwareProfile) -> tuple[float, float]:
    """(time, energy) scales of the profile's calibration; (1, 1) without one."""
    cal = profile.calibration
    return (cal.time_scale.value, cal.energy_scale.value) if cal else (1.0, 1.0)


def labels(profile: HardwareProfile) -> dict[str, str]:
    """How the profile's time and energy figures were obtained, as reports print them."""
    cal = profile.calibration
    if cal:
        return {"time": cal.label("time_per_step"), "energy": cal.label("dynamic_energy"),
                "total_energy": cal.label("total_energy")}
    source = profile.energy_pj["synaptic_op"].source if profile.energy_pj else profile.name
    text = f"estimated from {source}"
    return {"time": text, "energy": text, "total_energy": text}


@dataclass
class Loads:
    """What ``mapping`` carries when it runs an activity: the rates of its sources and projections and the loads of
    its cores and edges, computed once (:func:`mapping_loads`) and read by the cost, the timing and the report."""

    rates: Rates
    core: CoreLoad
    edge: EdgeLoad


def mapping_loads(graph: Graph, mapping: Mapping, activity: Activity) -> Loads:
    """:func:`rates` and :func:`loads` of ``mapping`` running ``activity``, which must have been measured over the
    graph's T steps (the one run length both read)."""
    activity.check_steps(graph)
    r = rates(graph, mapping, activity)
    return Loads(r, *loads(graph, mapping, r))


def hardware_cost(graph: Graph, mapping: Mapping, activity: Activity, *, loaded: Loads | None = None) -> HardwareCost:
    """Energy per inference by component and layer, and tick times, of ``mapping`` running ``activity``
    (``loaded``: its :func:`mapping_loads`, where the caller has them)."""
    profile = mapping.profile
    time_scale, energy_scale = scales(profile)
    e = {k: f.value * energy_scale for k, f in profile.energy_pj.items()}
    t = {k: f.value * time_scale for k, f in profile.time_ns.items()}
    loaded = loaded or mapping_loads(graph, mapping, activity)
    core, edge = loaded.core, loaded.edge
    T, P = graph.T, mapping.ticks_per_step
    inactive = core.neurons[:, None] * P - core.spikes  # every neuron updates on every tick of a step
    per_core = {"synaptic_ops": core.synops, "neuron_updates_active": core.spikes,
                "neuron_updates_inactive": inactive}
    hop_messages = {"spike_delivery": edge.messages, "mesh_hops_east_west": edge.messages * edge.east_west[:, None],
                    "mesh_hops_north_south": edge.messages * edge.north_south[:, None]}
    energy = {k: float(v.sum()) * e[ENERGY_KEYS[k]] for k, v in {**per_core, **hop_messages}.items()}
    layer_energy = {name: dict.fromkeys(COMPONENTS, 0.0) for name in mapping.layers}
    for name, layer in mapping.layers.items():
        for k, v in per_core.items():
            layer_energy[name][k] = float(v[layer.cores.start:layer.cores.stop].sum()) * e[ENERGY_KEYS[k]]
    for k, v in hop_messages.items():
        per_edge = v.sum(1) * e[ENERGY_KEYS[k]]
        for name, value in zip(edge.owners, np.bincount(edge.owner, per_edge, minlength=len(edge.owners))):
            layer_energy[name][k] += float(value)
    layer_synops = {name: float(core.synops[layer.cores.start:layer.cores.stop].sum())
                    for name, layer in mapping.layers.items()}
    raw_barrier = barrier_ns(profile, mapping.tiles_used)
    barrier = Figure(raw_barrier.value * time_scale, "ns", raw_barrier.source, raw_barrier.estimated)
    mesh = (max((c.tile[0] for c in mapping.cores), default=0) + 1, max((c.tile[1] for c in mapping.cores),
                                                                          default=0) + 1)
    single, _ = _ticks(core, edge, t, T, T * P + mapping.pipeline_depth, barrier.value, mesh, streamed=False,
                       period=P)
    steady, core_time = _ticks(core, edge, t, T, T * P, barrier.value, mesh, streamed=True, period=P)
    layer_time = {name: float(core_time[layer.cores.start:layer.cores.stop].max(0).sum()) if len(layer.cores)
                  else 0.0 for name, layer in mapping.layers.items()}
    constants = {f"energy.{k}": _scaled(profile.energy_pj[k], energy_scale, profile, "energy")
                 for k in ENERGY_KEYS.values()}
    constants.update({f"time.{k}": _scaled(profile.time_ns[k], time_scale, profile, "time") for k in TIME_KEYS})
    constants["time.barrier_sync"] = _scaled(raw_barrier, time_scale, profile, "time")
    notes = list(profile.calibration.caveats) if profile.calibration else []  # most important first
    static_pj = 0.0
    if profile.static_power_w is not None:
        constants["static_power_per_chip"] = profile.static_power_w
        static_pj = profile.static_power_w.value * mapping.chips * float(steady["total"].sum()) * 1e3
    else:
        notes.append("static (leakage) power is not modelled: no published figure")
    notes.append("chip-to-chip links are costed as on-chip mesh hops (no published figure): a lower bound")
    accumulates = None
    cost_labels = labels(profile)
    missing = [{"what": "host I/O (input to the chip, results back)", "affects": "throughput, latency, energy",
                "evidence": HOST_IO_EVIDENCE}]
    embedded = [name for name, choice in product_choices(graph, mapping.products).items() if choice == "embedded"]
    if embedded and activity.products:
        accumulates = float(sum(activity.products[name]["accumulates"].sum() for name in embedded)
                            ) / max(activity.samples, 1)
        notes.append("spike products run on embedded x86 cores: their accumulates are counted but not timed or "
                     "costed (Intel publishes no per-operation figures for them)")
        missing.insert(0, {"what": f"embedded x86 cores: {accumulates:,.0f} accumulates per inference (spike products)",
                           "affects": "time per step, latency, throughput, energy",
                           "evidence": "no per-operation figures published for Loihi's embedded cores"})
        cost_labels = {k: f"{v}; neurocores only, embedded x86 work not modelled" for k, v in cost_labels.items()}
    return HardwareCost(mapping.products, energy, layer_energy, layer_synops, core.synops.sum(1), single,
                        steady["total"], core_time, layer_time, static_pj, barrier, constants, cost_labels,
                        accumulates, notes, profile.static_power_w is not None, missing, P)


def _scaled(figure: Figure, scale: float, profile: HardwareProfile, what: str) -> Figure:
    """A per-operation figure as the model uses it: times the calibrated scale, with the calibration named."""
    if not profile.calibration or scale == 1.0:
        return figure
    return Figure(figure.value * scale, figure.unit, f"{figure.source}; x {scale:.4g} ({what} scale "
                  f"{labels(profile)['time' if what == 'time' else 'energy']})", estimated=figure.estimated)


def scatter(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """[size, steps]: ``values`` [n, steps] summed by ``index`` (np.add.at, by bincount: many times faster)."""
    if not len(index):
        return np.zeros((size, values.shape[1]))
    return np.stack([np.bincount(index, values[:, k], minlength=size) for k in range(values.shape[1])], 1)


def link_loads(src_tile: np.ndarray, dst_tile: np.ndarray, messages: np.ndarray, mesh: tuple[int, int]
               ) -> dict[str, np.ndarray]:
    """Messages per step on every directed mesh link under X-Y (dimension-order) routing: along the sender's row
    to the receiver's column, then along that column. ``messages`` [edges, steps]; keys ``east``, ``west``
    [rows, columns - 1, steps] and ``south``, ``north`` [rows - 1, columns, steps]."""
    rows, cols = mesh
    steps = messages.shape[1]
    (r0, c0), (r1, c1) = src_tile.T, dst_tile.T
    out = {}
    for name, axis, fixed, a, b, size in (("east", 1, r0, c0, c1, (rows, cols + 1)),
                                           ("west", 1, r0, c1, c0, (rows, cols + 1)),
                                           ("south", 0, c1, r0, r1, (rows + 1, cols)),
                                           ("north", 0, c1, r1, r0, (rows + 1, cols))):
        go = b > a  # links a -> b, indexed by their lower end
        start = np.ravel_multi_index((fixed[go], a[go]) if axis == 1 else (a[go], fixed[go]), size)
        end = np.ravel_multi_index((fixed[go], b[go]) if axis == 1 else (b[go], fixed[go]), size)
        diff = (scatter(start, messages[go], size[0] * size[1])
                - scatter(end, messages[go], size[0] * size[1])).reshape(*size, steps)
        load = np.cumsum(diff, axis=axis)
        out[name] = load[:, :-1] if axis == 1 else load[:-1]
    return out


def _ticks(core: CoreLoad, edge: EdgeLoad, t: dict[str, float], T: int, ticks: int, barrier: float,
           mesh: tuple[int, int], *, streamed: bool, period: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Tick times (population at depth d handles step (tick - d) / period where that divides, modulo T when
    streamed) and each core's own bound per tick. Messages are summed per step within each source depth before
    they are placed on ticks, so memory stays [edges, T] however deep the pipeline. With ``period`` > 1 (a
    token-serial lowering: depths in ticks) a serial array's events, which spread over its sub-steps, are placed on
    its first one (an upper bound for that tick); the ticks between carry every neuron's inactive update."""
    def place(values: np.ndarray, depth: np.ndarray | int) -> np.ndarray:
        """[..., T] per functional step -> [..., ticks]: step (tick - depth) / period (modulo T when streamed) where
        that divides, else 0."""
        shifted = np.arange(ticks) - np.asarray(depth)[..., None]
        if streamed:
            shifted = shifted % (T * period)
        step = shifted // period
        valid = (shifted >= 0) & (step < T) & (shifted % period == 0)
        picked = np.take_along_axis(values, np.broadcast_to(np.clip(step, 0, T - 1), values.shape[:-1] + (ticks,)),
                                    -1) if values.size else np.zeros(values.shape[:-1] + (ticks,))
        return np.where(valid, picked, 0.0)

    n = len(core.neurons)
    synops, spikes = place(core.synops, core.depth), place(core.spikes, core.depth)
    compute = (synops * t["synaptic_op"] + spikes * t["neuron_update_active"]
               + (core.neurons[:, None] - spikes) * t["neuron_update_inactive"])
    sent, received = np.zeros((n, ticks)), np.zeros((n, ticks))
    hop = {"east": t["mesh_hop_east_west"], "west": t["mesh_hop_east_west"],
           "south": t["mesh_hop_north_south"], "north": t["mesh_hop_north_south"]}
    link_time: dict[str, np.ndarray] = {}
    for depth in np.unique(edge.depth):
        group = edge.depth == depth
        messages = edge.messages[group]
        for index, total in ((edge.sender[group], sent), (edge.receiver[group], received)):
            on = index != HOST
            total += place(scatter(index[on], messages[on], n), int(depth))
        for name, load in link_loads(edge.src_tile[group], edge.dst_tile[group], messages, mesh).items():
            placed = place(load, int(depth))
            link_time[name] = link_time[name] + placed if name in link_time else placed
    links = np.zeros(ticks)
    for name, load in link_time.items():
        if load.size:
            links = np.maximum(links, load.reshape(-1, ticks).max(0) * hop[name])
    spike_out, spike_in = sent * t["spike_within_tile"], received * t["spike_within_tile"]
    core_time = np.maximum(np.maximum(compute, spike_out), spike_in)
    zero = np.zeros(ticks)
    parts = {"compute": compute.max(0) if n else zero, "spikes_out": spike_out.max(0) if n else zero,
             "spikes_in": spike_in.max(0) if n else zero, "links": links, "barrier": np.full(ticks, barrier)}
    parts["total"] = np.maximum.reduce([parts[b] for b in BOUNDS]) + parts["barrier"]
    return parts, core_time


# --- the papers' 45 nm convention --------------------------------------------------------------------------------

def paper_flops(node: ConvNode) -> int:
    """Operations per step as the papers count a conv: output positions x kernel weights. A learned layer counts
    every weight; a fixed routing pattern of the lowering (all non-zero weights equal: head sums, channel
    expansion, relays of Q-K attention) counts only the connections it has."""
    taps = int(np.count_nonzero(node.weight)) if is_routing(node) else int(node.weight.size)
    return node.shape[1] * node.shape[2] * taps


def is_routing(node: ConvNode) -> bool:
    """A fixed routing pattern of the lowering (every non-zero weight equal), not a learned layer."""
    nonzero = node.weight[node.weight != 0]
    return nonzero.size > 0 and bool((nonzero == nonzero[0]).all())


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
