"""netx export: sequential graphs run in Lava through lava-dl's own loader, spike for spike against the simulator;
everything else is refused with every offending node named."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from export_testing import quantized
from graph_testing import Draw, lif
from snn_deploy.errors import UserError
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.exporters.formats.netx import layer_nodes, load_netx, netx_problems, to_netx
from snn_deploy.fixedpoint import torch_image_to_lava
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode, SpikeProductNode, SumNode, input_sequence
from snn_deploy.sims.backends.simulator import simulate
from snn_deploy.watchdog import stop_runtime


NETX_BIAS = dict(bias_mant=Draw(-40, 60), bias_exp=6)
"""Biases of the form mant << 6, what netx's CUBA neurons (bias_exp = 6) carry."""


def conv_chain(rng) -> Graph:
    """Graded payloads -> conv -> LIF -> strided conv (weight_exp 1) -> LIF -> dense (flatten) -> LIF -> 1x1 conv
    on a 1x1 map (dense) -> LIF, with leaky, non-leaky and memoryless neurons."""
    return Graph([
        InputNode("input", (), (2, 8, 8), scale=255.0),
        ConvNode("c1", ("input",), (4, 8, 8), weight=rng.integers(-60, 80, (4, 2, 3, 3)), padding=(1, 1), graded=True),
        lif("l1", "c1", (4, 8, 8), vth=200, du=1000, dv=500, rng=rng, **NETX_BIAS),
        ConvNode("c2", ("l1",), (6, 4, 4), weight=rng.integers(-100, 128, (6, 4, 3, 3)), stride=(2, 2), padding=(1, 1),
                 weight_exp=1),
        lif("l2", "c2", (6, 4, 4), vth=60, dv=2048, rng=rng, **NETX_BIAS),
        ConvNode("fc1", ("l2",), (10, 1, 1), weight=rng.integers(-256, 255, (10, 6, 4, 4))),
        lif("l3", "fc1", (10, 1, 1), vth=100, dv=2048, rng=rng, **NETX_BIAS),
        ConvNode("fc2", ("l3",), (5, 1, 1), weight=rng.integers(-200, 200, (5, 10, 1, 1))),
        lif("l4", "fc2", (5, 1, 1), vth=50, du=-1, dv=0, rng=rng, **NETX_BIAS),
        ReadoutNode("head", ("l4",), (5, 1, 1), weight=np.eye(5), bias=np.zeros(5)),
    ], T=5)


def dense_chain(rng) -> Graph:
    """Binary input (non-zero payload = one spike) straight into dense layers: a flat network input."""
    return Graph([
        InputNode("input", (), (3, 2, 2), scale=255.0),
        ConvNode("fc1", ("input",), (8, 1, 1), weight=rng.integers(0, 200, (8, 3, 2, 2))),
        lif("l1", "fc1", (8, 1, 1), vth=1200, du=2000, dv=100, rng=rng, **NETX_BIAS),
        ConvNode("fc2", ("l1",), (4, 1, 1), weight=-rng.integers(0, 8, (4, 8, 1, 1)) * 4),
        LIFNode("l2", ("fc2",), (4, 1, 1), du=4095, dv=4095, vth=0, bias_mant=np.array([40, 30, 20, 10]),
                bias_exp=np.full(4, 6)),
        ReadoutNode("head", ("l2",), (4, 1, 1), weight=np.eye(4), bias=np.zeros(4)),
    ], T=4)


def run_lava(path, graph: Graph, payload: np.ndarray) -> dict[str, np.ndarray]:
    """Stream the samples of ``payload`` [T, B, C, H, W] back to back through the netx network in Lava's fixed-point
    models; returns each layer's spikes [T, B, C, H, W], shifted back by the layer's depth."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    steps, batch = payload.shape[:2]
    depths = graph.depths()
    fill = max(depths.values())
    stream = np.concatenate([payload[:, b] for b in range(batch)])  # [B * T, C, H, W], sample after sample
    net = load_netx(path)
    flat_input = len(net.inp.shape) == 1  # a dense first layer reads torch's (C, H, W) flatten order
    frames = stream.reshape(len(stream), -1) if flat_input else torch_image_to_lava(stream)
    frames = np.concatenate([frames, np.zeros((fill, *frames.shape[1:]), dtype=frames.dtype)])
    source = Source(data=np.moveaxis(frames, 0, -1).astype(np.int32))
    source.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        sinks.append(Sink(shape=layer.out.shape, buffer=len(frames)))
        layer.out.connect(sinks[-1].a_in)
    try:
        net.run(condition=RunSteps(num_steps=len(frames)), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        recorded = [np.moveaxis(np.asarray(sink.data.get()), -1, 0) for sink in sinks]
    finally:
        stop_runtime(net)
    spikes = {}
    for name, out in zip(layer_nodes(path), recorded):
        shape = graph[name].shape
        out = out.reshape(len(out), *shape) if out.ndim == 2 else out.transpose(0, 3, 2, 1)  # (W, H, C) -> (C, H, W)
        window = out[depths[name]: depths[name] + batch * steps]
        spikes[name] = window.reshape(batch, steps, *shape).swapaxes(0, 1).astype(np.uint8)
    return spikes


@pytest.mark.lava
@pytest.mark.parametrize("make, input_bits", [(conv_chain, 8), (dense_chain, 0)])
def test_lava_runs_the_netx_file_spike_exact(make, input_bits, tmp_path):
    rng = np.random.default_rng(0)
    graph = make(rng)
    path = tmp_path / "net.h5"
    assert to_netx(graph, path) == input_bits
    x = torch.from_numpy(rng.uniform(-1, 1, (graph.T, 2, *graph.input.shape)))  # about half the payloads 0
    expected = simulate(graph, x).spikes
    got = run_lava(path, graph, input_sequence(graph, x).numpy())
    assert list(got) == [n.name for n in graph.of_kind(LIFNode)]
    for name, spikes in got.items():
        differ = int((spikes != expected[name].numpy()).sum())
        assert differ == 0, f"{name}: {differ} spikes differ"
        assert 0 < spikes.sum() < spikes.size, f"{name} is silent or saturated: the comparison would mean little"


def test_file_layout_is_what_netx_reads(tmp_path):
    path = tmp_path / "net.h5"
    to_netx(conv_chain(np.random.default_rng(0)), path)
    with h5py.File(path) as f:
        types = [f["layer"][str(i)]["type"][()].decode() for i in range(len(f["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense", "dense"]
        conv = f["layer/2"]
        assert conv["weight"].shape == (6, 4, 3, 3) and list(conv["stride"][()]) == [2, 2]
        neuron = f["layer/1/neuron"]
        assert (neuron["type"][()], int(neuron["iDecay"][()]), int(neuron["vDecay"][()])) == (b"CUBA", 1001, 500)
        assert f["layer/4/weight"].shape == (10, 6 * 4 * 4)


def test_transformer_is_refused_naming_every_node_netx_cannot_carry():
    graph = lower(quantized("qkformer-tiny"))
    problems = netx_problems(graph)
    must = {n.name for n in graph.nodes if isinstance(n, (SumNode, SpikeProductNode))}
    must |= {n.name for n in graph.of_kind(LIFNode) if len(n.inputs) > 1}  # Q-K attention's AND
    must |= {name for name, users in graph.consumers().items() if len(users) > 1}
    assert must <= set(problems)
    with pytest.raises(UserError) as caught:
        to_netx(graph, "unused.h5")
    message = str(caught.value)
    assert "\n" not in message and f"{len(problems)} node(s)" in message
    assert all(f"{name} (" in message for name in problems)


def test_parameters_netx_cannot_express_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    graph = conv_chain(rng)
    bad_bias = LIFNode("l2", ("c2",), (6, 4, 4), vth=60, bias_mant=np.full(6, 5), bias_exp=np.zeros(6, np.int64))
    bad_exp = ConvNode("fc2", ("l3",), (5, 1, 1), weight=np.full((5, 10, 1, 1), 200, np.int64), weight_exp=1)
    nodes = [bad_bias if n.name == "l2" else bad_exp if n.name == "fc2" else n for n in graph.nodes]
    problems = netx_problems(Graph(nodes, T=graph.T))
    assert set(problems) == {"l2", "fc2"}
    assert "bias" in problems["l2"][0] and "outside 8 bits" in problems["fc2"][0]
    with pytest.raises(UserError):
        to_netx(Graph(nodes, T=graph.T), tmp_path / "net.h5")
    assert not (tmp_path / "net.h5").exists()


def test_negative_weight_exponents_are_refused_by_the_graph():
    """Currents are (W x) << weight_exp with weight_exp >= 0 (Lava's Conv can fold only a left shift into its
    weights): a ConvNode with a negative exponent cannot be made, so no backend needs a right-shift branch."""
    with pytest.raises(ValueError, match="weight_exp -1"):
        ConvNode("fc2", ("l3",), (5, 1, 1), weight=np.ones((5, 10, 1, 1), np.int64), weight_exp=-1)
