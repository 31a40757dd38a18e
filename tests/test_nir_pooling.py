"""Pooling and strided convolutions from standard NIR stay convolutions (issue 22, item 2).

A pool next to a conv composes into one strided convolution when that is exact; a lone strided conv between two
neuron layers keeps its kernel even when the output reads its layer neuron by neuron. The reference for "exact" is
the full-map kernel the import built before (``framework_nets.as_dense``): every layer's spikes must be identical,
with fewer cores, synapses and synaptic operations. The Sinabs network is Sinabs's own export (``sinabs.to_nir``)."""

from __future__ import annotations

import importlib.util

import nir
import numpy as np
import pytest
import torch

import framework_nets as fn
from snn_deploy.exporters.nir import importer as nir_import
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.graph import ConvNode, LIFNode, profile
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.backends.simulator import simulate


@pytest.mark.skipif(importlib.util.find_spec("sinabs") is None, reason="sinabs is not installed")
def test_sinabs_sumpool_then_conv_is_one_strided_conv_with_identical_spikes():
    fit = fn.digits("train", 256)
    x, _ = fn.digits("test", 64)
    net = fn.sinabs_pool_net(fit)
    assert any(isinstance(n, nir.SumPool2d) for n in net.ir.nodes.values())
    graph, _ = nir_import.to_graph(net.ir, dt=net.dt, steps=fn.STEPS, calibration=fit[0])
    pool_conv = graph[net.layers[1]].inputs[0]
    conv = graph[pool_conv]
    assert (conv.weight.shape, conv.stride, conv.padding) == ((fn.POOL_CHANNELS, fn.CHANNELS, 6, 6), (2, 2), (2, 2))
    dense = fn.as_dense(graph, pool_conv)
    ours, before = simulate(graph, x), simulate(dense, x)
    for layer in net.layers:
        assert ours.spikes[layer].float().mean() > 0.01, layer
        assert torch.equal(ours.spikes[layer].flatten(2), before.spikes[layer].flatten(2)), layer
    torch.testing.assert_close(ours.logits, before.logits)
    cores = len(map_graph(graph, profile("loihi2")).cores)
    assert cores < len(map_graph(dense, profile("loihi2")).cores)
    # the full-map kernel's zeros are synapses the chip would process: the strided conv has about half the ops
    assert 0 < ours.synaptic_ops[pool_conv].sum() < 0.6 * before.synaptic_ops[pool_conv].sum()
    source = net.run(x, fn.STEPS)
    for layer, ref in zip(net.layers, source):
        assert fn._iou(ours.spikes[layer], ref) > 0.25, layer  # float Sinabs (v >= 1) against Loihi (v > vth)


def test_a_lone_strided_conv_between_two_if_layers_stays_a_conv():
    """The issue's case: 2 -> 4 -> 8 channels on 16x16, 6x6 stride-2 convs. The output reads the last layer neuron
    by neuron; that used to lay the layer out as a vector and turn its conv into a dense matrix."""
    graph, _ = nir_import.to_graph(fn.strided_conv_net(2), dt=1.0, steps=4)
    convs = graph.of_kind(ConvNode)
    assert [(c.weight.shape, c.stride) for c in convs] == [((4, 2, 6, 6), (2, 2)), ((8, 4, 6, 6), (2, 2))]
    assert [n.shape for n in graph.of_kind(LIFNode)] == [(4, 8, 8), (8, 4, 4)]
    assert graph.classifier.per_neuron and graph.classifier.weight.shape == (128, 128)
    x = torch.rand(8, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    ours = simulate(graph, x)
    assert ours.spikes["if2"].float().mean() > 0.01
    back = nir_io.from_nir(nir_io.to_nir(graph))  # the per-neuron readout survives the bundle's file
    again = simulate(back, x)
    torch.testing.assert_close(again.logits, ours.logits)
    torch.testing.assert_close(ours.logits, ours.spikes["if2"].double().flatten(2).mean(0))  # identity readout
    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    spikes, logits = run_onnx(to_onnx(graph), graph, x)
    assert all(torch.equal(spikes[k].bool(), ours.spikes[k].bool()) for k in ours.spikes)
    torch.testing.assert_close(logits, ours.logits)


def test_a_pool_then_a_padded_conv_composes_only_where_exact():
    """A conv's zero padding after a pool stands for pooled windows outside the map. With a 2x2 stride-2 pool those
    windows lie wholly in the composed conv's own zero padding (exact: one strided conv); with an overlapping 3x3
    stride-2 pool they would cover the map's first row, so the import keeps the exact full-map kernel."""
    ok = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph, _ = nir_import.to_graph(fn.strided_conv_net(2, pool=ok), dt=1.0, steps=4)
    conv = graph["conv2"]
    assert (conv.weight.shape[2:], conv.stride, conv.padding) == ((12, 12), (4, 4), (4, 4))
    overlapping = dict(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph, _ = nir_import.to_graph(fn.strided_conv_net(2, pool=overlapping), dt=1.0, steps=4)
    assert [c.name for c in graph.of_kind(ConvNode)] == ["conv1", "if2.from.if1"]  # the full-map kernel
