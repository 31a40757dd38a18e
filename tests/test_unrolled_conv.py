"""A conv that carries a synaptic delay is held unrolled (Lava ``DelaySparse`` of ``conv_pairs``, zero weights left
out): the lowering marks it, and the mapper counts and stores on each core exactly the synapses Lava holds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from snn_deploy.graph import LOIHI2, ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.graph.hardware import conv_pairs, lower
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.hardware.stated_activity import conv_synapses

SHAPE = (4, 6, 6)


def _graph() -> Graph:
    """l1 reads c1 (from l0, depth 1) and ``delayed`` (from the input, depth 0): ``delayed`` waits one step. Its
    3x3 kernel (padding 1, two groups) has zero weights; c1's has none."""
    rng = np.random.default_rng(3)
    weight = rng.integers(-3, 4, (4, 1, 3, 3)) * (rng.random((4, 1, 3, 3)) < 0.5)
    weight[0, 0, 1, 1] = 2  # every group reads something

    def lif(name: str, *sources: str) -> LIFNode:
        return LIFNode(name, sources, SHAPE, vth=2, bias_mant=np.zeros(4, dtype=np.int64),
                       bias_exp=np.zeros(4, dtype=np.int64))

    return Graph([
        InputNode("input", (), (2, 6, 6)),
        ConvNode("c0", ("input",), SHAPE, weight=rng.integers(1, 4, (4, 2, 1, 1)), graded=True), lif("l0", "c0"),
        ConvNode("c1", ("l0",), SHAPE, weight=rng.integers(1, 4, (4, 4, 3, 3)), padding=(1, 1)),
        ConvNode("delayed", ("input",), SHAPE, weight=weight, padding=(1, 1), groups=2, graded=True),
        lif("l1", "c1", "delayed"),
        ReadoutNode("head", ("l1",), SHAPE, weight=np.zeros((2, 4)), bias=np.zeros(2)),
    ], T=2)


def _per_core(rows: np.ndarray, boxes: list[tuple[int, ...]]) -> list[int]:
    """Synapses (target neuron indices, flat (C, H, W)) that land in each core's box."""
    c, rest = np.divmod(rows, SHAPE[1] * SHAPE[2])
    h, w = np.divmod(rest, SHAPE[2])
    return [int(((c >= c0) & (c < c1) & (h >= h0) & (h < h1) & (w >= w0) & (w < w1)).sum())
            for c0, c1, h0, h1, w0, w1 in boxes]


def test_lowering_marks_only_the_delayed_conv_unrolled():
    graph = _graph()
    lowering = lower(graph, "coincidence", "relay")
    l1 = next(p for p in lowering.populations if p.name == "l1")
    shared, delayed = l1.projections
    assert lowering.delay(l1, shared) == 0 and not shared.unrolled and shared.shared_per_channel == 36
    assert lowering.delay(l1, delayed) == 1 and delayed.shared_per_channel == 0
    assert delayed.unrolled == tuple((graph["delayed"].weight != 0).sum(1).ravel().tolist())


@pytest.mark.parametrize("neurons_per_core", [144, 20])
def test_mapper_counts_the_unrolled_synapses_on_every_core(neurons_per_core):
    graph = _graph()
    mapping = map_graph(graph, replace(LOIHI2, compiler=None, neurons_per_core=neurons_per_core))
    cores = [mapping.cores[i] for i in mapping.layers["l1"].cores]
    assert (len(cores) > 1) == (neurons_per_core < 144)  # one core, or boxes of channels, rows and columns
    rows, _, _ = conv_pairs(graph["delayed"], graph.input.shape)
    assert 0 < rows.size < conv_synapses(graph["delayed"], graph.input.shape)  # zeros left out
    expected = _per_core(rows, [c.box for c in cores])
    assert mapping.per_core_synapses["l1"][1].tolist() == expected
    # stored: c1's shared kernel once per core (36 weights a channel), every unrolled synapse
    assert [c.stored_synapses for c in cores] == [(c.box[1] - c.box[0]) * 36 + e for c, e in zip(cores, expected)]


@pytest.mark.lava
def test_lava_holds_the_synapses_the_mapper_counts():
    from lava.proc.conv.process import Conv
    from lava.proc.sparse.process import DelaySparse

    from snn_deploy.sims.backends import lava_build
    graph = _graph()
    net = lava_build.build(graph, np.zeros((graph.T, 1, *graph.input.shape), dtype=np.int64))
    mapping = map_graph(graph, LOIHI2)
    shared, delayed = net.synapses[-2:]
    assert isinstance(shared, Conv) and isinstance(delayed, DelaySparse)
    assert delayed.weights.init.nnz == int(mapping.per_core_synapses["l1"][1].sum())
