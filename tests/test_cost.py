"""The cost model and the 45 nm convention against hand computations, and the driver's counts against the
simulator's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from export_testing import images, quantized
from graph_testing import lif
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import ConvNode, Graph, InputNode, LOIHI, LOIHI2, ReadoutNode, SumNode
from snn_deploy.sims.hardware.cost import barrier_ns, hardware_cost, paper_energy, rates
from snn_deploy.sims.runs.driver import Shard, run_dataset
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.backends.simulator import simulate


def corner_event(*extra) -> tuple[Graph, torch.Tensor]:
    """tests/test_simulator.py's case: one 3x3 conv (padding 1) on a 3x3 map with one event in the corner: 8
    synaptic ops and 8 spikes per step; ``extra`` nodes are appended before the readout."""
    nodes = [InputNode("input", (), (1, 3, 3), scale=1.0),
             ConvNode("conv", ("input",), (2, 3, 3), weight=np.ones((2, 1, 3, 3), dtype=np.int64), padding=(1, 1),
                      graded=True),
             lif("lif", "conv", (2, 3, 3)), *extra]
    last = nodes[-1]
    graph = Graph([*nodes, ReadoutNode("head", (last.name,), last.shape, weight=np.zeros((2, last.shape[0])),
                                       bias=np.zeros(2))], T=2)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0
    return graph, x


def test_energy_and_latency_per_tick_by_hand_with_loihi_figures():
    graph, x = corner_event()
    activity = run_dataset(graph, x, torch.zeros(1, dtype=torch.long))
    mapping = map_graph(graph, LOIHI, kernel_sharing=False)
    assert len(mapping.cores) == 1 and mapping.cores[0].tile == (0, 0)  # next to the host: no hops
    cost = hardware_cost(graph, mapping, activity)
    # per inference (T = 2): 16 synaptic ops, 16 spikes, 18 x 2 - 16 = 20 idle updates, 2 input messages
    # (one event per step reaches the single core once), Davies et al. 2018 figures
    expected = {"synaptic_ops": 16 * 23.6, "neuron_updates_active": 16 * 81.0, "neuron_updates_inactive": 20 * 52.0,
                "spike_delivery": 2 * 1.7, "mesh_hops_east_west": 0.0, "mesh_hops_north_south": 0.0}
    assert cost.energy_pj == pytest.approx(expected)
    assert cost.energy_total_pj == pytest.approx(2717.0)
    # ticks of one inference: T + depth 1 = 3; the LIF handles step t at tick t + 1; the input message of step t
    # reaches the core at tick t (2.1 ns within the tile); no mesh link used; barrier for 1 tile 113 ns. A tick is
    # the largest bound (compute, messages out, messages in, links) plus the barrier.
    idle = 18 * 5.3
    busy = 8 * 3.5 + 8 * 8.4 + 10 * 5.3
    assert cost.tick_ns["compute"] == pytest.approx([idle, busy, busy])
    assert cost.tick_ns["spikes_in"] == pytest.approx([2.1, 2.1, 0.0])
    assert cost.tick_ns["spikes_out"] == pytest.approx([0, 0, 0]) and cost.tick_ns["links"] == pytest.approx([0, 0, 0])
    assert cost.tick_ns["total"] == pytest.approx([idle + 113, busy + 113, busy + 113])
    assert cost.latency_ns == pytest.approx(idle + 2 * busy + 3 * 113)
    # streamed: two ticks per sample, each with one busy LIF step
    assert cost.time_per_sample_ns == pytest.approx(2 * (busy + 113))
    assert cost.core_time_ns.tolist() == [pytest.approx([busy, busy])] and cost.bottleneck_core == 0
    assert cost.layer_time_ns == {"lif": pytest.approx(2 * busy)} and cost.static_energy_pj == 0.0
    assert cost.constants["energy.synaptic_op"].source.startswith("Davies et al.")
    assert not cost.constants["energy.synaptic_op"].estimated and cost.constants["time.synaptic_op"].value == 3.5


def test_loihi2_costs_are_calibrated_estimates_with_measured_static_power():
    graph, x = corner_event()
    activity = run_dataset(graph, x, torch.zeros(1, dtype=torch.long))
    cost = hardware_cost(graph, map_graph(graph, LOIHI2), activity)
    static = cost.constants.pop("static_power_per_chip")
    assert not static.estimated and static.value == 0.232078
    assert all(f.estimated for f in cost.constants.values())
    cal = LOIHI2.calibration
    assert cost.constants["time.synaptic_op"].value == pytest.approx(3.5 * cal.time_scale.value)
    assert cost.constants["energy.synaptic_op"].value == pytest.approx(23.6 * cal.energy_scale.value)
    assert cost.labels["energy"].startswith("calibrated on PilotNet LIF (lava-dl benchmark), residual")
    # static energy: one chip for the streamed time of one inference
    assert cost.static_energy_pj == pytest.approx(0.232078 * cost.time_per_sample_ns * 1e3)
    assert cost.energy_total_pj == pytest.approx(cost.dynamic_energy_pj + cost.static_energy_pj)


def test_barrier_uses_published_end_points_and_flags_interpolation():
    assert barrier_ns(LOIHI, 1).value == 113.0 and not barrier_ns(LOIHI, 1).estimated
    assert barrier_ns(LOIHI, 32).value == 465.0 and not barrier_ns(LOIHI, 32).estimated
    middle = barrier_ns(LOIHI, 16)
    assert middle.value == pytest.approx(113 + 352 * 15 / 31) and middle.estimated


def test_45nm_convention_by_hand():
    """First conv: 9 positions x 2 x 9 weights = 162 MACs (counted once) at 4.6 pJ. Then a 1x1 conv 2 -> 3 channels:
    54 FLOPs per step; its input fires 8 of 18 neurons per step, so SOPs = 8/18 x T x 54 = 48 at 0.9 pJ."""
    second = ConvNode("conv2", ("lif",), (3, 3, 3), weight=np.ones((3, 2, 1, 1), dtype=np.int64))
    graph, x = corner_event(second, lif("lif2", "conv2", (3, 3, 3)))
    activity = run_dataset(graph, x, torch.zeros(1, dtype=torch.long))
    paper = paper_energy(graph, activity)
    first, layer = paper.layers
    assert (first.kind, first.flops, first.energy_pj) == ("mac", 162, pytest.approx(162 * 4.6))
    assert (layer.kind, layer.flops) == ("ac", 54)
    assert layer.input_rate == pytest.approx(8 / 18) and layer.sops == pytest.approx(48)
    assert paper.energy_pj == pytest.approx(162 * 4.6 + 48 * 0.9)
    assert paper.sops == pytest.approx(48) and paper.mac_flops == 162
    assert paper.constants["accumulate"].value == 0.9 and "Horowitz" in paper.constants["mac"].source
    # the convention's SOPs equal the events the simulator counts for a pointwise layer
    assert activity.conv_events[("conv2", "lif")].sum() == 48


def test_residual_sum_events_expanded_and_relayed():
    """lif fires 8 per step. Expanded, lif + lif reaches the 1x1 conv as two spikes per position (the simulator
    sees one integer): 2 x 8 events x 1 output channel per step. Relayed, the relay neurons receive the 2 x 8
    spikes and send 8 graded spikes, which the conv sees as the simulator does."""
    extra = [SumNode("sum", ("lif", "lif"), (2, 3, 3)),
             ConvNode("conv2", ("sum",), (1, 3, 3), weight=np.ones((1, 2, 1, 1), dtype=np.int64), graded=True),
             lif("lif2", "conv2", (1, 3, 3))]
    graph, x = corner_event(*extra)
    activity = run_dataset(graph, x, torch.zeros(1, dtype=torch.long))
    assert activity.conv_events[("conv2", "lif")].tolist() == [8, 8]
    expanded = map_graph(graph, LOIHI2, sums="expand")
    # a summand neuron is its own input axon (two each), except in Loihi 2's compiler model, where a conv projection
    # arrives on one population-coded axon per source core
    generic = map_graph(graph, replace(LOIHI2, compiler=None), sums="expand")
    assert len(generic.layers["lif2"].cores) == 1 and generic.cores[-1].fan_in == 2 * 2 * 9
    assert len(expanded.layers["lif2"].cores) == 1 and expanded.cores[-1].fan_in == 2
    assert rates(graph, expanded, activity).synops["lif2"].sum(0).tolist() == [16, 16]
    relayed = map_graph(graph, LOIHI2, sums="relay")
    r = rates(graph, relayed, activity)
    assert r.synops["sum"].sum(0).tolist() == [16, 16] and r.spikes["sum"].tolist() == [8, 8]
    assert r.synops["lif2"].sum(0).tolist() == simulate(graph, x).synaptic_ops["conv2"].tolist() == [8, 8]


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny"])
def test_driver_counts_agree_with_the_simulator(name):
    graph = lower(quantized(name))
    x = images(6)
    activity = run_dataset(graph, x, torch.zeros(6, dtype=torch.long), batch_size=4)
    result = simulate(graph, x)
    assert activity.samples == 6
    for lif, counts in result.spike_counts.items():
        assert (activity.spikes[lif] == counts).all(), lif
    for node in graph.of_kind(ConvNode):
        events = [v for k, v in activity.conv_events.items() if k[0] == node.name]
        if len(events) == 1:  # no residual sum in front: the simulator's count is the chip's
            assert (events[0] == result.synaptic_ops[node.name]).all(), node.name
    for product, counts in activity.products.items():
        assert (counts["accumulates"] == result.synaptic_ops[product]).all()
        assert (counts["pairs"] <= counts["accumulates"]).all() and counts["gates"].sum() > 0


def test_shards_cover_every_sample_once():
    parts = [Shard(r, 3).slice(10) for r in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]


@pytest.mark.lava
def test_lava_backend_counts_the_same_activity():
    graph, x = corner_event(ConvNode("conv2", ("lif",), (3, 3, 3), weight=np.ones((3, 2, 1, 1), dtype=np.int64)),
                            lif("lif2", "conv2", (3, 3, 3)))
    x = torch.cat([x, x.flip(-1)])
    labels = torch.tensor([0, 1])
    sim, lava = (run_dataset(graph, x, labels, backend=b) for b in ("sim", "lava"))
    assert lava.backend == "lava" and (lava.samples, lava.correct) == (sim.samples, sim.correct)
    assert all((lava.spikes[k] == v).all() for k, v in sim.spikes.items())
    assert all((lava.conv_events[k] == v).all() for k, v in sim.conv_events.items())


def test_every_profile_limit_needs_a_source():
    with pytest.raises(ValueError, match="no source for"):
        replace(LOIHI, limit_sources={})
    limits = LOIHI2.limits()
    assert limits["neurons_per_core"]["estimated"] and not limits["cores_per_chip"]["estimated"]
    assert all(v["source"] for v in limits.values())
