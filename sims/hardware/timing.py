"""Where the time of a step goes: per core and per layer, the estimated busy time, its share of the step and what
limits it (the view Arm Vela gives per layer and lava-dl's Loihi 2 profiler per core).

Why a module of its own: reports read time through one small interface, :class:`CoreTimes` (per core and functional
step, the nanoseconds each *term* of the cost model takes and how the terms combine into the core's busy time), so
the cost model can change its time model without the report changing. Everything here is derived from the cost
model's per-core loads and the profile's per-operation times at its calibrated scale (:func:`cost.scales`).

Loihi cores run in parallel and meet at a barrier every step, so a layer's time is the busy time of its slowest
core, and its *share* is that time over the mean step time: shares do not add up to 100 %; the largest share
belongs to the layer that sets the step (the bottleneck).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from snn_deploy.graph import Activity, Graph
from snn_deploy.sims.hardware.cost import HardwareCost, Loads, mapping_loads, scales
from snn_deploy.sims.hardware.mapper import HOST, Mapping

TERMS = ("synaptic_ops", "neuron_updates", "spikes_out", "spikes_in")
"""What can limit a core: its synaptic operations, its neuron updates (active and inactive), the spike messages it
sends and receives (serialised through its router port)."""
TERM_LABELS = {"synaptic_ops": "synaptic ops", "neuron_updates": "neuron updates", "spikes_out": "spikes out",
               "spikes_in": "spikes in"}


@dataclass(frozen=True)
class CoreActivity:
    """Per core and functional step of one sample: counts the chip would see."""

    synaptic_ops: np.ndarray
    spikes: np.ndarray
    """Neurons of the core that fire (active updates)."""
    messages_in: np.ndarray
    """Spike messages arriving (from cores, the host or embedded cores)."""
    messages_out: np.ndarray
    """Spike messages the core sends (one per destination core of each firing neuron)."""


@dataclass(frozen=True)
class CoreTimes:
    """The time interface reports read: nanoseconds per core [cores, T] of terms of :data:`TERMS`, per functional
    step of one sample in a stream, and how they combine into a core's busy time: the terms of a group run one
    after the other (their times add), groups overlap (the slowest group bounds the core): a max-affine bound.
    One group of every term is a purely additive model."""

    terms: dict[str, np.ndarray]
    groups: tuple[tuple[str, ...], ...]

    def _group_times(self) -> np.ndarray:
        return np.stack([sum(self.terms[t] for t in group) for group in self.groups])  # [groups, cores, T]

    @property
    def busy(self) -> np.ndarray:
        return self._group_times().max(0)

    def limiter(self, core: int) -> str:
        """What bounds ``core`` (over the steps): the longest term of its slowest group."""
        group = self.groups[int(np.argmax(self._group_times()[:, core].sum(-1)))]
        return max(group, key=lambda t: float(self.terms[t][core].sum()))


def core_activity(graph: Graph, mapping: Mapping, activity: Activity, *, loaded: Loads | None = None) -> CoreActivity:
    """Per-core counts from the cost model's loads (spikes spread uniformly over a population's cores; ``loaded``:
    the :func:`~snn_deploy.sims.hardware.cost.mapping_loads` the caller has)."""
    loaded = loaded or mapping_loads(graph, mapping, activity)
    core, edge = loaded.core, loaded.edge
    n, T = len(mapping.cores), graph.T
    sent, received = np.zeros((n, T)), np.zeros((n, T))
    for index, total in ((edge.sender, sent), (edge.receiver, received)):
        on_chip = index != HOST
        np.add.at(total, index[on_chip], edge.messages[on_chip])
    return CoreActivity(core.synops, core.spikes, received, sent)


def core_times(mapping: Mapping, counts: CoreActivity) -> CoreTimes:
    """Busy time per core and step as :mod:`cost` bounds a core (its max-affine bound): compute (synaptic ops and
    neuron updates, one after the other), messages out, messages in (each at the within-tile spike time); the
    slowest of the three; every time at the profile's calibrated scale."""
    time_scale, _ = scales(mapping.profile)
    t = {k: f.value * time_scale for k, f in mapping.profile.time_ns.items()}
    neurons = np.array([c.neurons for c in mapping.cores], dtype=float)[:, None]
    updates = counts.spikes * t["neuron_update_active"] + (neurons - counts.spikes) * t["neuron_update_inactive"]
    return CoreTimes({"synaptic_ops": counts.synaptic_ops * t["synaptic_op"], "neuron_updates": updates,
                      "spikes_out": counts.messages_out * t["spike_within_tile"],
                      "spikes_in": counts.messages_in * t["spike_within_tile"]},
                     (("synaptic_ops", "neuron_updates"), ("spikes_out",), ("spikes_in",)))


def idle_updates_ns(mapping: Mapping) -> np.ndarray:
    """Per core: a tick on which it receives nothing still updates every neuron (inactive), the ``P - 1`` other
    ticks of a step of ``P`` ticks (a token-serial lowering)."""
    time_scale, _ = scales(mapping.profile)
    t = mapping.profile.time_ns["neuron_update_inactive"].value * time_scale
    return np.array([c.neurons for c in mapping.cores], dtype=float) * t


@dataclass(frozen=True)
class LayerTime:
    """One layer's place in the step."""

    layer: str
    time_ns: float
    """Busy time per step of the layer's slowest core (mean over the T steps); 0 on the host."""
    share: float
    """``time_ns`` over the mean step time (layers run in parallel: shares do not add up)."""
    core: int | None
    """The bottleneck core (slowest of the layer); None for a layer computed on the host."""
    limited_by: str | None
    """The :data:`TERMS` entry that takes most of the bottleneck core's time."""
    terms_ns: dict[str, float]
    """Per step (mean), the bottleneck core's time in each term."""


def layer_times(mapping: Mapping, times: CoreTimes, step_ns: float) -> list[LayerTime]:
    """Per layer of ``mapping`` (in its order): slowest core, its time per step, share and limiting term."""
    busy = times.busy.mean(1) if times.busy.size else np.zeros(0)
    out = []
    for name, layer in mapping.layers.items():
        if not len(layer.cores):
            out.append(LayerTime(name, 0.0, 0.0, None, None, dict.fromkeys(times.terms, 0.0)))
            continue
        core = layer.cores.start + int(np.argmax(busy[layer.cores.start:layer.cores.stop]))
        time = float(busy[core])
        out.append(LayerTime(name, time, time / step_ns if step_ns else 0.0, core, times.limiter(core),
                             {t: float(v[core].mean()) for t, v in times.terms.items()}))
    return out


def step_time_ns(cost: HardwareCost) -> float:
    """Mean time of one step with samples streamed back to back (the cost model's steady ticks)."""
    return cost.time_per_step_ns
