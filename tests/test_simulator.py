"""The simulator's activity counts against independent counts taken from the PyTorch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from export_testing import images, quantized
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.fixedpoint import conv_step, lif_run
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.sims.backends.simulator import ConvKernel, simulate


def _unfold_sops(x: torch.Tensor, layer: nn.Module) -> int:
    """(input event, synapse) pairs by im2col: every tap of every output window that sees a non-zero input,
    times the output channels each input channel feeds."""
    if isinstance(layer, nn.Conv2d):
        k, s, p, groups, c_out = layer.kernel_size, layer.stride, layer.padding, layer.groups, layer.out_channels
    else:  # pointwise Conv1d / Linear on token maps
        k, s, p, groups = (1, 1), (1, 1), (0, 0), 1
        c_out = layer.weight.shape[0]
    cols = F.unfold((x != 0).to(torch.float64), k, padding=p, stride=s)
    return int(cols.sum().item()) * (c_out // groups)


def test_conv_sops_equal_an_im2col_count_from_forward_hooks():
    model = quantized("spikformer-tiny")
    graph = lower(model)
    x = images(4)
    counted: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Linear)) and name != "head":
            key = name[: -len(".layer")] if name.endswith(".layer") else name

            def hook(m, inputs, _out, key=key):
                flat = inputs[0]
                if not isinstance(m, nn.Conv2d):  # the model feeds token maps flattened to [N, C, L] or [N, L, C]
                    flat = flat if isinstance(m, nn.Conv1d) else flat.transpose(1, 2)
                    flat = flat.unsqueeze(-1)
                counted[key] = counted.get(key, 0) + _unfold_sops(flat, m)
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(x.double())
    for h in handles:
        h.remove()
    result = simulate(graph, x)
    compared = 0
    for node in graph.of_kind(ConvNode):
        if node.name in counted:
            assert result.synaptic_ops[node.name].sum() == counted[node.name], node.name
            compared += 1
    assert compared >= 15 and sum(counted.values()) > 0


def test_hand_computed_sops_and_spike_counts():
    """One 3x3 conv, padding 1, on a 3x3 map with a single event in the corner: it reaches 4 outputs x 2 channels."""
    weight = np.ones((2, 1, 3, 3), dtype=np.int64)
    graph = Graph([
        InputNode("input", (), (1, 3, 3), scale=1.0),
        ConvNode("conv", ("input",), (2, 3, 3), weight=weight, padding=(1, 1), graded=True),
        LIFNode("lif", ("conv",), (2, 3, 3), du=4095, dv=4095, vth=0, bias_mant=np.zeros(2, dtype=np.int64),
                bias_exp=np.zeros(2, dtype=np.int64)),
        ReadoutNode("head", ("lif",), (2, 3, 3), weight=np.eye(2), bias=np.zeros(2)),
    ], T=2)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0
    result = simulate(graph, x)
    assert result.synaptic_ops["conv"].tolist() == [8, 8]
    assert result.spike_counts["lif"].tolist() == [8, 8]  # vth 0: every output touched by the event fires
    assert torch.allclose(result.logits, torch.tensor([[4 / 9, 4 / 9]], dtype=torch.float64))


def test_membrane_traces_equal_lif_run_on_an_independently_computed_current():
    """Traces of the first LIF (leaky current and voltage, per-channel biases) against lif_run, the arithmetic
    tested against Lava's own LIF, driven by a float64 torch convolution of the integer payloads."""
    rng = np.random.default_rng(4)
    weight = rng.integers(-60, 80, (3, 2, 3, 3))
    mant, exp = rng.integers(-200, 200, 3), rng.integers(0, 4, 3)
    graph = Graph([
        InputNode("input", (), (2, 6, 6), scale=255.0),
        ConvNode("conv", ("input",), (3, 6, 6), weight=weight, padding=(1, 1), graded=True),
        LIFNode("lif", ("conv",), (3, 6, 6), du=3000, dv=700, vth=300, bias_mant=mant, bias_exp=exp),
        ReadoutNode("head", ("lif",), (3, 6, 6), weight=np.eye(3), bias=np.zeros(3)),
    ], T=5)
    x = torch.rand(2, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    result = simulate(graph, x, traces={"lif"})
    payload = torch.round(x.double() * 255)
    current = F.conv2d(payload, torch.from_numpy(weight).double(), padding=1).to(torch.int64)
    spikes, u, v = lif_run(current.unsqueeze(0).expand(5, -1, -1, -1, -1), du=3000, dv=700, vth=300,
                           bias_mant=torch.from_numpy(mant).reshape(3, 1, 1),
                           bias_exp=torch.from_numpy(exp).reshape(3, 1, 1))
    trace = result.traces["lif"]
    assert trace.u.dtype == torch.int64 and torch.equal(trace.u, u) and torch.equal(trace.v, v)
    assert torch.equal(result.spikes["lif"].to(torch.int64), spikes) and int(spikes.sum()) > 0
    assert simulate(graph, x).traces == {}  # none unless asked
    with pytest.raises(ValueError, match="membrane traces"):
        simulate(graph, x, traces={"conv"})


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_conv_kernel_equals_fixedpoint_conv_step(data):
    """The simulator's conv (float32 / float64 convolution or the pointwise matmul, then the exponent) against
    fixedpoint.conv_step, Lava Conv's arithmetic, shifted by the weight exponent: grouped, strided, padded,
    binary and graded inputs, 1x1 and larger kernels."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    groups = data.draw(st.sampled_from([1, 2]))
    c_in, c_out = 2 * data.draw(st.integers(1, 3)), 2 * data.draw(st.integers(1, 3))
    kernel = data.draw(st.sampled_from([(1, 1), (3, 3), (2, 3)]))
    stride = data.draw(st.sampled_from([(1, 1), (2, 2), (2, 1)]))
    padding = (0, 0) if kernel == (1, 1) and data.draw(st.booleans()) else data.draw(st.sampled_from([(0, 0), (1, 1)]))
    graded, weight_exp = data.draw(st.booleans()), data.draw(st.integers(0, 3))
    h, w = data.draw(st.integers(3, 7)), data.draw(st.integers(3, 7))
    out_hw = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip((h, w), padding, kernel, stride))
    weight = rng.integers(-256, 256, (c_out, c_in // groups, *kernel))
    node = ConvNode("conv", ("input",), (c_out, *out_hw), weight=weight, stride=stride, padding=padding,
                    groups=groups, weight_exp=weight_exp, graded=graded)
    x = torch.from_numpy(rng.integers(-300, 300, (3, c_in, h, w)) * (rng.random((3, c_in, h, w)) < 0.5))
    expected = conv_step(x, weight, stride=stride, padding=padding, groups=groups, graded=graded) << weight_exp
    got = ConvKernel(node, (c_in, h, w)).currents(x)
    assert got.dtype in (torch.float32, torch.float64)
    assert torch.equal(got.to(torch.int64), expected)


def test_counts_in_the_pass_equal_counts_from_the_spikes():
    """simulate(counts=True) counts the hardware's events inside its pass; count_events counts them afterwards from
    recorded spikes (other backends): the same numbers on a network with residual sums and spike products."""
    from snn_deploy.graph import ConvNode as Conv, SpikeProductNode, SumNode, input_sequence
    from snn_deploy.sims.backends.simulator import count_events

    graph = lower(quantized("spikformer-tiny"))
    assert graph.of_kind(SumNode) and graph.of_kind(SpikeProductNode)
    x = images(3)
    result = simulate(graph, x, counts=True)
    kernels = {n.name: ConvKernel(n, graph[n.inputs[0]].shape) for n in graph.of_kind(Conv)}
    after = count_events(graph, input_sequence(graph, x), result.spikes, kernels)
    inside = result.events
    assert np.array_equal(inside.input_events, after.input_events)
    for field in ("spikes", "conv_events", "sum_events"):
        ours, theirs = getattr(inside, field), getattr(after, field)
        assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours), field
    sources = [conv for conv, _ in inside.conv_events]
    assert max(sources.count(conv) for conv in sources) > 1  # a conv reading a residual sum: every summand counted
    for name, counts in after.products.items():
        assert all(np.array_equal(inside.products[name][k], v) for k, v in counts.items())
        assert np.array_equal(counts["accumulates"], result.synaptic_ops[name])
