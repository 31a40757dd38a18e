"""Activity at a stated firing rate (sims/stated_activity.py) against independent counts: the mapper's synapse
totals, and the driver's spike-product counts on random spikes at that rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export_testing import quantized
from snn_deploy.errors import UserError
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2, ConvNode, LIFNode, SpikeProductNode
from snn_deploy.graph.hardware import conv_pairs
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.backends.simulator import product_counts
from snn_deploy.sims.hardware.stated_activity import conv_synapses, product_expectation, stated_activity


def test_synaptic_ops_are_rate_times_the_mappers_synapses():
    graph = lower(quantized("qkformer-tiny"))
    mapping = map_graph(graph, LOIHI2, sums="expand")
    convs = {n.name: n for n in graph.of_kind(ConvNode)}
    for pop in mapping.populations:
        for j, proj in enumerate(pop.projections):
            if proj.synapse in convs:
                total = int(mapping.per_core_synapses[pop.name][j].sum())
                if proj.unrolled:  # a delayed conv (QKFormer's k_relay): its non-zero synapses, as Lava holds it
                    assert conv_pairs(convs[proj.synapse], graph[proj.source].shape)[0].size == total, proj.synapse
                else:
                    assert conv_synapses(convs[proj.synapse], graph[proj.source].shape) == total, proj.synapse
    act = stated_activity(graph, 1.0)
    for lif in graph.of_kind(LIFNode):
        assert act.spikes[lif.name].tolist() == [lif.neurons] * graph.T
    assert act.input_events.tolist() == [int(np.prod(graph.input.shape))] * graph.T
    assert all(v.sum() == 0 for k, v in stated_activity(graph, 0.0).conv_events.items() if k[1] != graph.input.name)


def test_spike_product_counts_match_the_drivers_on_random_spikes():
    node = SpikeProductNode("p", ("q", "k", "v"), (8, 4, 4), heads=2)
    rate, trials = 0.3, 400
    gen = torch.Generator().manual_seed(0)
    q, k, v = ((torch.rand(1, trials, 8, 4, 4, generator=gen) < rate).float() for _ in range(3))
    measured = {key: float(value.sum()) for key, value in product_counts(node, q, k, v).items()}
    graph_free = product_expectation(node, rate)
    for key, expected in graph_free.items():
        assert measured[key] / trials == pytest.approx(expected, rel=0.05), key


def test_a_rate_outside_0_1_is_refused():
    with pytest.raises(UserError, match="firing rate"):
        stated_activity(lower(quantized("qkformer-tiny-8x8")), 1.5)
