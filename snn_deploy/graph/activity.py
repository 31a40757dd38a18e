"""What a run of a deployed graph measured, as the hardware would see it: per-batch :class:`EventCounts`, the
run's totals (:class:`Activity`, with the T it was measured over) and a :class:`Raster` of a few neurons.

Ground floor, next to the graph: backends produce these (the simulator counts them in its pass, other backends'
spikes are counted afterwards), and the hardware model (mapper, cost, timing, NeuroBench, reports) only reads
them, so no hardware-model module depends on how a run was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from snn_deploy.graph.nodes import ConvNode, Graph

if TYPE_CHECKING:
    from snn_deploy.fixedpoint.lif import Overflow

PRODUCT_COUNTS = ("pairs", "kv_nonzero", "gates", "out_nonzero", "accumulates", "kvrow_nonzero")
"""Per spike product and step: k-v coincidences (the ``and`` array's spikes), non-zero entries of k^T v (``kv``
graded spikes), (token, i, j) with q[token, i] = 1 and kv[i, j] != 0 (``gate`` spikes), non-zero outputs (graded
currents an embedded core sends), the accumulates of ``q (k^T v)`` (the product's synaptic ops), and the non-zero
per-column partial sums of k^T v (``kvrow`` graded spikes: (head, i, j, token column) with a coincidence in that
column). A product that the ``packed`` lowering can pack also has that lowering's own counts
(``snn_deploy.graph.hardware.packed_count_keys``: every packed population's events and every projection's
synaptic ops)."""


@dataclass
class EventCounts:
    """The activity of one batch as the hardware sees it, per step ([T] int64, summed over the batch).

    A sum node has no hardware: a conv reading a residual stream receives every summand's spikes as separate
    events, so conv events are kept per (conv, source) for its input itself (one event per non-zero value) and
    for every summand behind it. :func:`~snn_deploy.sims.backends.simulator.simulate` counts these in its pass
    (``counts=True``); :func:`~snn_deploy.sims.backends.simulator.count_events` counts the same from the recorded
    spikes of a backend that returns spikes only.
    """

    input_events: np.ndarray
    """Non-zero input payloads (graded spikes the host sends; none for a bias-driven input)."""
    spikes: dict[str, np.ndarray]
    """Per LIF node."""
    conv_events: dict[tuple[str, str], np.ndarray]
    """Per (conv node, source): synaptic operations from that source's events (see the class docstring)."""
    sum_events: dict[str, np.ndarray]
    """Per sum node: non-zero values (the graded spikes a relay sends)."""
    products: dict[str, dict[str, np.ndarray]]
    """Per spike product: the :data:`PRODUCT_COUNTS` (and the ``packed`` lowering's counts)."""
    registers: dict[tuple[str, str], Overflow] = field(default_factory=dict)
    """Per (LIF node, register) that overflowed: see :data:`~snn_deploy.sims.backends.simulator.REGISTERS`
    (counted by the simulator only)."""


def conv_sources(graph: Graph, conv: ConvNode) -> list[str]:
    """The sources whose events a conv's synaptic ops are counted for: its input and every summand behind it."""
    return list(dict.fromkeys([conv.inputs[0], *graph.summands(conv.inputs[0])]))


@dataclass
class Raster:
    """Spikes of a few neurons: ``spikes`` [neurons, samples * T] uint8, one row per (layer, flat index)."""

    neurons: list[tuple[str, int]]
    spikes: np.ndarray


@dataclass
class Activity:
    """Totals over all samples (per step [T] int64 arrays), as the hardware would see them."""

    T: int
    backend: str
    samples: int = 0
    correct: int = 0
    labelled: bool = True
    """False for runs without labels (raw arrays, or a graph without a classifier): accuracy is then None."""
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    """Per LIF node."""
    conv_events: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    """Per (conv node, source): synaptic operations from that source's events. Sources: each summand behind the
    conv's input (a sum expanded), and the input itself (the input node, a LIF, or a sum relayed as graded
    spikes: one event per non-zero value, as the simulator counts)."""
    sum_events: dict[str, np.ndarray] = field(default_factory=dict)
    """Per sum node: non-zero values (the graded spikes a relay sends)."""
    input_events: np.ndarray | None = None
    """Non-zero input payloads (graded spikes the host sends)."""
    products: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Per spike product: the :data:`PRODUCT_COUNTS` (and the ``packed`` lowering's counts)."""
    backend_s: float = 0.0
    """Seconds spent in the backend (slowest process when sharded)."""
    processes: int = 1
    raster: Raster | None = None
    registers: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    """Per (LIF node, register of :data:`~snn_deploy.sims.backends.simulator.REGISTERS`): [values beyond its width,
    largest magnitude], as the simulator counts them (other backends count none)."""
    first_logits: np.ndarray | None = None
    """The classifier's logits of the first sample (rank 0's), where the graph has one: ``simulate --input``'s class."""
    first_counts: np.ndarray | None = None
    """The readout's input spike counts over the run of the first sample ([C * H * W]), where the graph has one."""

    def check_steps(self, graph: Graph) -> None:
        """The run length is one fact: an activity describes a run of the graph's T steps (a run of other length
        is a run of :func:`~snn_deploy.exporters.formats.bundle_check.with_steps`'s graph)."""
        if self.T != graph.T:
            raise ValueError(f"an activity measured over {self.T} steps cannot describe a graph of T = {graph.T}; "
                             "analyse the graph the run used")

    @property
    def accuracy(self) -> float | None:
        if not self.labelled:
            return None
        return self.correct / self.samples if self.samples else float("nan")

    def add(self, events: EventCounts) -> None:
        """Add one batch's counts."""
        self.input_events += events.input_events
        for totals, batch in ((self.spikes, events.spikes), (self.conv_events, events.conv_events),
                              (self.sum_events, events.sum_events)):
            for key, counts in totals.items():
                counts += batch[key]
        for name, counts in self.products.items():
            for key in counts:
                counts[key] += events.products[name][key]
        for key, found in events.registers.items():
            total = self.registers[key]
            total[0] += found.count
            total[1] = max(int(total[1]), found.worst)

    def arrays(self) -> list[np.ndarray]:
        """Every count array in a fixed order (for summing across processes)."""
        out = [d[k] for d in (self.spikes, self.conv_events, self.sum_events) for k in sorted(d)]
        out += [counts[c] for p in sorted(self.products) for counts in [self.products[p]] for c in sorted(counts)]
        return out + [self.input_events] + [self.registers[k][:1] for k in sorted(self.registers)]
