"""The torch reference backend: the integer-mode PyTorch model run with forward hooks on its neurons, so that
its spikes compare with every backend's, layer by layer (:mod:`snn_deploy.sims.runs.verify`)."""

from __future__ import annotations

import torch
from torch import nn

from snn_deploy.graph import Graph, LIFNode
from snn_deploy.neurons import IntegerLIF, QuantizedLIF

Spikes = dict[str, torch.Tensor]


def torch_spikes(model: nn.Module, graph: Graph, x: torch.Tensor) -> tuple[Spikes, torch.Tensor]:
    """Spikes of every graph LIF node that a module of ``model`` produces, and the model's logits."""
    lif_shapes = {n.name: n.shape for n in graph.of_kind(LIFNode)}
    caught: Spikes = {}
    handles = []
    for name, module in model.named_modules():
        if name in lif_shapes and isinstance(module, (IntegerLIF, QuantizedLIF, nn.MaxPool2d)):
            def hook(_m, _i, out, name=name):
                t = graph.T if isinstance(_m, nn.MaxPool2d) else out.shape[0]
                caught[name] = out.detach().reshape(t, -1, *lif_shapes[name]).to(torch.uint8)
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(x.to(torch.float64))
    finally:
        for h in handles:
            h.remove()
    return caught, logits
