"""exporters.lava_build against the functional simulator: every LIF node's spikes must match exactly.

Hand-built graphs cover each node kind and each kind of path balancing; samples run back to back, with leaky
neurons and biases so that state left over from one sample would change the next one's spikes. One real
quantized model closes the loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graph_testing import Draw, lif, random_conv, readout
from snn_deploy.sims.backends import lava_build
from snn_deploy.graph import Graph, InputNode, Node, SpikeProductNode, SumNode, input_sequence
from snn_deploy.graph.hardware import lower
from snn_deploy.sims.backends.simulator import simulate

pytestmark = pytest.mark.lava
LEAKY = dict(du=3000, dv=500, bias_mant=Draw(-40, 40), bias_exp=Draw(0, 3))
"""Leaky in both u and v, with positive and negative biases: state carries over steps (and would over samples)."""


def residual_and_graph(steps: int = 4) -> Graph:
    """Graded input conv with a weight exponent, a residual sum over paths of depth 1 and 2 (a binary delay line),
    a strided non-square conv of the graded sum, a depthwise conv, and a LIF fed two currents of depths 3 and 4
    (a graded delay line). H != W everywhere, so a transposed layout cannot pass."""
    rng = np.random.default_rng(1)
    nodes: list[Node] = [
        InputNode("input", (), (2, 6, 5), scale=15.0, payload_bits=4),
        random_conv(rng, "c1", "input", (4, 6, 5), 2, padding=(1, 1), graded=True, weight_exp=1),
        lif("l1", ("c1",), (4, 6, 5), vth=700, rng=rng, **LEAKY),
        random_conv(rng, "c2", "l1", (4, 6, 5), 4, padding=(1, 1)),
        lif("l2", ("c2",), (4, 6, 5), vth=40, rng=rng, **LEAKY),
        SumNode("add", ("l1", "l2"), (4, 6, 5)),
        random_conv(rng, "c3", "add", (6, 3, 4), 4, (3, 2), stride=(2, 1), padding=(1, 0), graded=True),
        lif("l3", ("c3",), (6, 3, 4), vth=80, rng=rng, **LEAKY),
        random_conv(rng, "pool", "l3", (6, 3, 4), 6, low=1, high=3, padding=(1, 1), groups=6),
        lif("and", ("c3", "pool"), (6, 3, 4), vth=100, rng=rng, **LEAKY),
    ]
    return Graph([*nodes, readout("and", (6, 1, 1))], steps)


def spike_product_graph(steps: int = 3) -> Graph:
    """SSA's product with two heads and a multiplier; v comes one layer later, so q and k need binary delays."""
    rng = np.random.default_rng(2)
    shape = (4, 3, 2)
    nodes: list[Node] = [
        InputNode("input", (), (2, 3, 2), scale=15.0, payload_bits=4),
        *[node for name in "qkv" for node in (
            random_conv(rng, f"{name}_conv", "input", shape, 2, padding=(1, 1), graded=True),
            lif(f"{name}_lif", (f"{name}_conv",), shape, vth=200, rng=rng, **LEAKY))],
        random_conv(rng, "v2_conv", "v_lif", shape, 4, (1, 1)),
        lif("v2_lif", ("v2_conv",), shape, vth=10, rng=rng, **LEAKY),
        SpikeProductNode("product", ("q_lif", "k_lif", "v2_lif"), shape, heads=2, multiplier=3),
        lif("attn_lif", ("product",), shape, vth=5, rng=rng, **LEAKY),
    ]
    return Graph([*nodes, readout("attn_lif", (4, 1, 1))], steps)


def _compare(graph: Graph, samples: int, seed: int = 0, **run_args) -> lava_build.LavaRun:
    x = torch.rand(samples, *graph.input.shape, generator=torch.Generator().manual_seed(seed))
    expected = simulate(graph, x).spikes
    result = lava_build.run(graph, input_sequence(graph, x), **run_args)
    assert result.spikes.keys() == expected.keys()
    for name, spikes in expected.items():
        assert 0 < spikes.float().mean() < 1, f"{name}: the test needs some but not all neurons spiking"
        assert torch.equal(result.spikes[name], spikes), f"{name}: Lava differs from the simulator"
    return result


def test_residual_and_back_to_back():
    graph = residual_and_graph()
    calls: list[tuple[int, int]] = []
    result = _compare(graph, samples=3, progress=lambda done, total: calls.append((done, total)))
    depth = lower(graph, sums=lava_build.SUMS).depths["and"]  # the lowering Lava builds
    assert result.steps == 3 * graph.T + depth
    assert calls == [(graph.T, result.steps), (2 * graph.T, result.steps), (3 * graph.T, result.steps),
                     (result.steps, result.steps)]


@pytest.mark.parametrize("shift", [-1, 1])
def test_reset_offset_off_by_one_is_caught(monkeypatch, shift):
    """The negative control: with every reset one step early or late the back-to-back run must differ."""
    graph = residual_and_graph()
    x = torch.rand(3, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    expected = simulate(graph, x).spikes
    correct = lava_build.reset_offset
    monkeypatch.setattr(lava_build, "reset_offset", lambda depth, steps: correct(depth + shift, steps))
    result = lava_build.run(graph, input_sequence(graph, x))
    assert any(not torch.equal(result.spikes[name], s) for name, s in expected.items())


def test_spike_product_back_to_back():
    _compare(spike_product_graph(), samples=2)


def test_many_groups_are_expanded():
    """Lava keeps Conv groups in an int8: a depthwise conv over 130 channels runs as an equivalent dense kernel."""
    rng = np.random.default_rng(3)
    shape = (130, 2, 3)
    graph = Graph([InputNode("input", (), shape, scale=15.0, payload_bits=4),
                   random_conv(rng, "pool", "input", shape, 130, low=1, high=4, padding=(1, 1), groups=130,
                               graded=True),
                   lif("or", ("pool",), shape, vth=60, rng=rng, **LEAKY), readout("or", (130, 1, 1))], 2)
    _compare(graph, samples=1)


def spiking_zoo_graph(name: str = "spikformer-tiny") -> Graph:
    """A zoo model (random weights, seed 0), quantized and lowered as ``export --target loihi2`` does (QKFormer's
    max pools moved after their LIFs), with trained-like batch norms so that every layer spikes."""
    from snn_deploy import models
    from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.quant import quantize

    torch.manual_seed(0)
    net = models.create(name, mode="loihi").eval()
    if blocking_problems(net):
        net, _ = apply_rewrites(net, ["maxpool-after-lif"])
    with torch.no_grad():
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.weight.uniform_(1, 3), bn.bias.uniform_(0, 1.2)
            bn.running_var.uniform_(0.5, 2), bn.running_mean.uniform_(-0.2, 0.2)
    quantize(net)
    return lower(net)


def test_spikformer_tiny_matches_simulator():
    _compare(spiking_zoo_graph(), samples=2)
