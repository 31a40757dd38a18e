"""ONNX export: onnxruntime against the simulator, spike for spike on every LIF node, and the exactness guards."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export_testing import images, quantized
from graph_testing import Draw, lif
from snn_deploy.errors import UserError
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.exporters.formats.onnx import (
    encode_input, onnx_bytes, onnx_session, run_onnx, save_onnx, to_onnx,
)
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode, input_sequence, value_bounds
from snn_deploy.sims.backends.simulator import ConvKernel, simulate


def _assert_same(graph: Graph, x: torch.Tensor, spikes: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
    reference = simulate(graph, x)
    assert set(spikes) == {n.name for n in graph.of_kind(LIFNode)}
    for name, expected in reference.spikes.items():
        assert spikes[name].dtype == torch.uint8 and spikes[name].shape == expected.shape, name
        assert torch.equal(spikes[name], expected), f"{name}: {int((spikes[name] != expected).sum())} spikes differ"
    assert torch.allclose(logits, reference.logits, rtol=0, atol=1e-9)
    assert torch.equal(logits.argmax(1), reference.predictions)


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny"])
def test_onnxruntime_matches_the_simulator_on_every_lif(name, tmp_path):
    graph = lower(quantized(name))
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    assert onnx_bytes(model) == onnx_bytes(to_onnx(graph)), "same graph, different bytes"
    path = tmp_path / "model.onnx"
    save_onnx(model, path)
    assert path.read_bytes() == onnx_bytes(model)
    x = images(4)
    spikes, logits = run_onnx(path, graph, x)
    _assert_same(graph, x, spikes, logits)
    active = [s for s in spikes.values() if 0 < int(s.sum()) < s.numel()]
    assert len(active) >= len(spikes) // 2, "too few layers spike for the comparison to mean anything"


def test_fixed_batch_and_per_step_inputs():
    graph = lower(quantized("spikformer-tiny"))
    session = onnx_session(to_onnx(graph, batch=2))
    x = torch.rand(graph.T, 2, *graph.input.shape, generator=torch.Generator().manual_seed(3))  # a map per step
    _assert_same(graph, x, *run_onnx(session, graph, x))
    assert np.array_equal(encode_input(graph, x), input_sequence(graph, x).numpy())
    with pytest.raises(UserError, match="unrolled for T=4"):
        run_onnx(session, graph, x[:3])


BIASES = dict(bias_mant=Draw(*L.BIAS_MANT_RANGE), bias_exp=Draw(-5, 8))
"""Every bias mantissa, exponents of both signs."""


def test_integer_corners_signed_payloads_decays_wrap_and_exponents():
    """Negative currents under decay (ORT's integer Div must truncate toward zero), u's 24-bit wrap (no current
    decay, currents above 2^17), weight exponents, binary reads of graded payloads, two inputs."""
    rng = np.random.default_rng(0)
    nodes = [
        InputNode("input", (), (2, 6, 6), scale=127.0, payload_bits=8, signed=True),
        ConvNode("c1", ("input",), (4, 6, 6), weight=rng.integers(-256, 256, (4, 2, 3, 3)), padding=(1, 1),
                 graded=True),
        lif("l1", ("c1",), (4, 6, 6), du=100, dv=3000, vth=300, rng=rng, **BIASES),
        ConvNode("c1b", ("input",), (4, 6, 6), weight=rng.integers(-256, 256, (4, 2, 3, 3)), padding=(1, 1),
                 weight_exp=3),
        ConvNode("c2", ("l1",), (4, 6, 6), weight=rng.integers(-256, 256, (4, 4, 3, 3)), padding=(1, 1), weight_exp=5),
        lif("l2", ("c1b", "c2"), (4, 6, 6), du=-1, dv=0, vth=L.VTH_RANGE[1], rng=rng, **BIASES),
        ConvNode("c3", ("input",), (3, 3, 3), weight=rng.integers(0, 256, (3, 2, 5, 5)), stride=(2, 2),
                 padding=(2, 2), graded=True),
        lif("l3", ("c3",), (3, 3, 3), du=-1, dv=0, vth=L.VTH_RANGE[1], rng=rng, **BIASES),
        ReadoutNode("head", ("l2",), (4, 6, 6), weight=rng.normal(size=(3, 4)), bias=rng.normal(size=3)),
    ]
    graph = Graph(nodes, T=8)
    x = torch.from_numpy(rng.uniform(-1.2, 1.2, (graph.T, 5, 2, 6, 6)))
    currents = ConvKernel(graph["c3"], graph.input.shape).currents(input_sequence(graph, x)[0])
    assert int(currents.abs().max()) << L.ACT_SHIFT > L.UV_HALF, "the wrap must be exercised"
    _assert_same(graph, x, *run_onnx(to_onnx(graph), graph, x))


def test_decays_truncate_toward_zero():
    """A current of -1 then 0 into du = 4094, dv = 4095, bias 1, vth 0: u = -64, v = -63; then u = trunc(-64 / 4096)
    = 0 and v = trunc(-63 / 4096) + 0 + 1 = 1 > 0 fires. Flooring either decay (-1) would keep it silent."""
    nodes = [
        InputNode("input", (), (1, 1, 1), scale=1.0),
        ConvNode("syn", ("input",), (1, 1, 1), weight=np.full((1, 1, 1, 1), -1), graded=True),
        LIFNode("lif", ("syn",), (1, 1, 1), du=4094, dv=4095, vth=0, bias_mant=np.ones(1, np.int64),
                bias_exp=np.zeros(1, np.int64)),
        ReadoutNode("head", ("lif",), (1, 1, 1), weight=np.eye(1), bias=np.zeros(1)),
    ]
    graph = Graph(nodes, T=2)
    x = torch.tensor([1.0, 0.0]).reshape(2, 1, 1, 1, 1)
    spikes, logits = run_onnx(to_onnx(graph), graph, x)
    assert spikes["lif"].flatten().tolist() == [0, 1]
    _assert_same(graph, x, spikes, logits)


def test_conv_not_provably_exact_in_float32_is_refused_by_name():
    wide = InputNode("input", (), (1, 4, 4), scale=1.0, payload_bits=16)
    conv = ConvNode("stem.conv", ("input",), (2, 4, 4), weight=np.full((2, 1, 3, 3), 255), padding=(1, 1), graded=True)
    lif = LIFNode("stem.lif", ("stem.conv",), (2, 4, 4), bias_mant=np.zeros(2, np.int64),
                  bias_exp=np.zeros(2, np.int64))
    graph = Graph([wide, conv, lif, ReadoutNode("head", ("stem.lif",), (2, 4, 4), weight=np.eye(2), bias=np.zeros(2))],
                  T=2)
    assert value_bounds(graph)["stem.conv"] == 65535 * 9 * 255
    with pytest.raises(UserError, match=r"conv 'stem\.conv'.*2\^24"):
        to_onnx(graph)
