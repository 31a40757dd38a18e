"""The mapper on hand-sized layers whose partitions, synapse counts and violations can be worked out on paper."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from export_testing import quantized
from graph_testing import lif
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import ConvNode, Graph, InputNode, LOIHI, LOIHI2, ReadoutNode, SpikeProductNode, SumNode
from snn_deploy.sims.hardware.mapper import map_graph, population_depths, populations, weight_bits


def _layer(c_in: int, shape, kernel=(1, 1), padding=(0, 0), name: str = "lif") -> Graph:
    """input (c_in, H, W) -> conv (weights 127) -> LIF of ``shape``."""
    weight = np.full((shape[0], c_in, *kernel), 127, dtype=np.int64)
    return Graph([
        InputNode("input", (), (c_in, *shape[1:])),
        ConvNode("conv", ("input",), shape, weight=weight, padding=padding, graded=True),
        lif(name, "conv", shape, dv=2048, vth=1),
        ReadoutNode("head", (name,), shape, weight=np.zeros((2, shape[0])), bias=np.zeros(2)),
    ], T=2)


def _profile(**limits):
    """Loihi 2's graded spikes with the generic mapper (free box search, one axon per source neuron, memory in
    bits): hand-sized cases of its rules. The compiler model (``LOIHI2.compiler``) is checked against Intel's
    compiler on PilotNet in test_loihi2_calibration.py."""
    return replace(LOIHI2, compiler=None, **limits)


def test_weight_bits_follow_lavas_encoding():
    assert weight_bits(np.array([255, 3])) == 8 and weight_bits(np.array([-255, -1])) == 8
    assert weight_bits(np.array([-256, 254])) == 8  # Lava's even mixed-sign range: w / 2 in 8-bit two's complement
    assert weight_bits(np.array([-255, 1])) == 9 and weight_bits(np.array([32])) == 1  # 32 = 1 << weight_exp 5
    assert weight_bits(np.array([0])) == 1


def test_a_layer_that_fits_exactly_takes_one_full_core():
    mapping = map_graph(_layer(2, (4, 4, 4)), _profile(neurons_per_core=64))
    assert len(mapping.cores) == 1 and not mapping.violations
    core = mapping.cores[0]
    assert core.neurons == 64 and core.utilisation(mapping.profile)["neurons"] == 1.0
    assert mapping.layers["lif"].limited_by == "neurons"


def test_one_neuron_too_many_takes_two_cores():
    mapping = map_graph(_layer(2, (65, 1, 1)), _profile(neurons_per_core=64))
    assert [c.neurons for c in mapping.cores] == [33, 32]
    assert not mapping.violations


def test_synapses_are_counted_border_aware_and_stored_once_per_core_with_kernel_sharing():
    """3x3 conv, padding 1, on a 3x3 map: an output row reads 2, 3, 2 input rows, so one (out, in) channel pair has
    (2 + 3 + 2)^2 = 49 synapses; a shared kernel stores 3 x 3 weights per channel pair on each core."""
    graph = _layer(2, (4, 3, 3), kernel=(3, 3), padding=(1, 1))
    shared = map_graph(graph, LOIHI2).layers["lif"]
    assert shared.synapses == 4 * 2 * 49
    assert shared.stored_synapses == 4 * 2 * 9
    explicit = map_graph(graph, LOIHI2, kernel_sharing=False).layers["lif"]
    assert explicit.stored_synapses == explicit.synapses == 4 * 2 * 49
    assert map_graph(graph, LOIHI2).cores[0].memory_bits == 4 * 2 * 9 * 7  # 127 needs 7 bits, positive: no sign bit


def test_fan_in_over_the_limit_is_a_named_violation_that_no_partition_fixes():
    mapping = map_graph(_layer(10, (4, 2, 2), name="wide"), _profile(fan_in_per_core=8))
    assert [(v.node, "10 input axons" in v.what) for v in mapping.violations] == [("wide", True)]
    assert mapping.layers["wide"].cores  # still mapped, so the rest of the report is available


def _residual_graph() -> Graph:
    """input -> a, b (5 channels each); c = 1x1 conv (3 channels) of a + b."""
    nodes = [InputNode("input", (), (5, 1, 1))]
    for name in "ab":
        nodes += [ConvNode(f"{name}_conv", ("input",), (5, 1, 1), weight=np.full((5, 5, 1, 1), 127), graded=True),
                  lif(name, f"{name}_conv", (5, 1, 1), dv=2048, vth=1)]
    nodes += [SumNode("sum", ("a", "b"), (5, 1, 1)),
              ConvNode("c_conv", ("sum",), (3, 1, 1), weight=np.full((3, 5, 1, 1), 127), graded=True),
              lif("c", "c_conv", (3, 1, 1), dv=2048, vth=1),
              ReadoutNode("head", ("c",), (3, 1, 1), weight=np.zeros((2, 3)), bias=np.zeros(2))]
    return Graph(nodes, T=2)


def test_expanded_sums_give_every_summand_its_own_axons():
    """The graph's semantics: a sum has no hardware, so a conv reading a + b receives both populations' spikes."""
    mapping = map_graph(_residual_graph(), _profile(fan_in_per_core=8), sums="expand")
    assert [v.node for v in mapping.violations] == ["c"]
    assert "10 input axons" in mapping.violations[0].what
    assert mapping.layers["c"].synapses == 2 * 3 * 5 and mapping.layers["c"].stored_synapses == 3 * 5
    assert mapping.layers["c"].depth == 2


def test_relayed_sums_are_one_population_a_step_deep():
    mapping = map_graph(_residual_graph(), _profile(fan_in_per_core=8))
    assert mapping.sums == "relay" and not mapping.violations
    relay, c = mapping.layers["sum"], mapping.layers["c"]
    assert (relay.kind, relay.neurons, relay.synapses, relay.depth) == ("sum", 5, 10, 2)
    assert (c.synapses, c.depth, mapping.cores[c.cores.start].fan_in) == (15, 3, 5)
    assert map_graph(_residual_graph(), LOIHI).sums == "expand"  # binary spikes cannot carry a sum


def test_weights_over_the_synaptic_memory_split_the_layer():
    """1x1 conv 16 -> 8 channels on 2x2 tokens, 7-bit weights: 8 x 16 x 7 = 896 bits for the whole kernel; a core
    of 256 bits holds the kernels of 2 output channels (2 x 16 x 7 = 224 bits), so the layer takes 4 cores."""
    mapping = map_graph(_layer(16, (8, 2, 2)), _profile(synaptic_memory_bytes_per_core=32))
    layer = mapping.layers["lif"]
    assert len(layer.cores) == 4 and layer.limited_by == "memory" and not mapping.violations
    assert all(c.memory_bits == 2 * 16 * 7 for c in mapping.cores)


def test_weights_of_one_neuron_over_the_synaptic_memory_are_a_named_violation():
    mapping = map_graph(_layer(16, (8, 2, 2), name="heavy"), _profile(synaptic_memory_bytes_per_core=8))
    assert [v.node for v in mapping.violations] == ["heavy"]
    assert "112 bits" in mapping.violations[0].what  # 16 weights x 7 bits


def test_every_violation_is_reported_at_once():
    """Loihi 1 (binary spikes) with tiny cores: graded input, fan-in, memory and an over-wide weight, all listed."""
    weight = np.ones((4, 10, 1, 1), dtype=np.int64)
    wide = np.full((4, 4, 1, 1), 1001, dtype=np.int64)
    graph = Graph([
        InputNode("input", (), (10, 2, 2)),
        ConvNode("conv1", ("input",), (4, 2, 2), weight=weight, graded=True),
        lif("fan_in", "conv1", (4, 2, 2), dv=2048, vth=1),
        ConvNode("conv2", ("fan_in",), (4, 2, 2), weight=wide),
        lif("memory", "conv2", (4, 2, 2), dv=2048, vth=1),
        ReadoutNode("head", ("memory",), (4, 2, 2), weight=np.zeros((2, 4)), bias=np.zeros(2)),
    ], T=2)
    mapping = map_graph(graph, replace(LOIHI, fan_in_per_core=8, synaptic_memory_bytes_per_core=4))
    found = {(v.node, v.what.split(",")[0].split(" over")[0]) for v in mapping.violations}
    assert found == {
        ("conv1", "analog input as graded spikes"),
        ("fan_in", "one neuron reads 10 input axons"),
        ("memory", "one neuron's synapses need 40 bits"),  # 4 weights of 10 bits
        ("conv2", "weights need 10 bits"),
    }


def test_fan_out_of_every_core_equals_the_fan_in_it_feeds():
    """Every output axon is some core's input axon: totals agree on a real model, in both product models (one axon
    per source neuron and destination core: the generic model; Loihi 2's compiler codes conv axons per core)."""
    graph = lower(quantized("qkformer-tiny"))
    for products in ("coincidence", "graded", "token-serial", "embedded"):
        mapping = map_graph(graph, _profile(), products=products)
        to_cores = sum(int(t.axons.sum()) for t in mapping.traffic if t.projection >= 0)
        from_host = sum(int(t.axons.sum()) for t in mapping.traffic if t.projection >= 0 and (t.src < 0).all())
        to_embedded = sum(int(t.axons.sum()) for t in mapping.traffic if t.projection < 0)
        assert sum(c.fan_in for c in mapping.cores) == to_cores
        assert sum(c.fan_out for c in mapping.cores) == to_cores - from_host + to_embedded
        assert all(c.neurons <= LOIHI2.neurons_per_core_for(c.variant) for c in mapping.cores)
        assert [v.what.split(":")[0] for v in mapping.violations] == (["token-serial"] if products == "token-serial"
                                                                      else [])


def test_cores_fill_tiles_then_chips():
    profile = replace(LOIHI2, neurons_per_core=1, cores_per_chip=4, mesh=(1, 2), cores_per_tile=2)
    mapping = map_graph(_layer(1, (9, 1, 1)), profile)
    assert [c.chip for c in mapping.cores] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert [c.tile for c in mapping.cores[:4]] == [(0, 0), (0, 0), (0, 1), (0, 1)]
    assert mapping.chips == 3 and mapping.cores[4].tile == (0, 2) and mapping.cores[8].tile == (1, 0)


def test_spike_product_as_coincidence_neurons_has_the_documented_arrays():
    """heads 2, d 2, N = 6 tokens (3 x 2): and/gate arrays of heads N d^2 = 48 neurons, kvrow of heads d^2 W = 16
    (3 rows each), kv of heads d^2 = 8 (2 columns each)."""
    shape = (4, 3, 2)
    nodes = [InputNode("input", (), shape)]
    for name in "qkv":
        nodes += [ConvNode(f"{name}_conv", ("input",), shape, weight=np.eye(4, dtype=np.int64)[:, :, None, None],
                           graded=True), lif(name, f"{name}_conv", shape, dv=2048, vth=1)]
    nodes += [SpikeProductNode("p", ("q", "k", "v"), shape, heads=2, multiplier=3),
              lif("attn", "p", shape, dv=2048, vth=1),
              ReadoutNode("head", ("attn",), shape, weight=np.zeros((2, 4)), bias=np.zeros(2))]
    graph = Graph(nodes, T=2)
    mapping = map_graph(graph, LOIHI2)
    layers = mapping.layers
    assert [(n, layers[n].neurons, layers[n].synapses) for n in ("p.and", "p.kvrow", "p.kv", "p.gate", "attn")] == [
        ("p.and", 48, 96), ("p.kvrow", 16, 48), ("p.kv", 8, 16), ("p.gate", 48, 96), ("attn", 24, 48)]
    assert [layers[n].depth for n in ("q", "p.and", "p.kvrow", "p.kv", "p.gate", "attn")] == [1, 2, 3, 4, 5, 6]
    embedded = map_graph(graph, LOIHI2, products="embedded")
    assert "p.and" not in embedded.layers and embedded.layers["attn"].depth == graph.depths()["attn"] == 2
    assert population_depths(graph, populations(graph, "embedded"))["attn"] == 2


def test_unknown_product_model_is_refused():
    with pytest.raises(ValueError, match="products"):
        populations(_layer(1, (1, 1, 1)), "fpga")
