"""What NIR's linear nodes compute, stated once: the importer (shapes, calibration of the quantization) and the
reference executor (running a whole file) both apply a node with :func:`apply` to the :func:`prepare`\\ d
parameters.

Every node maps its input ``x`` [B, *shape] (the batch first; NIR's shapes are per sample) to one output:

* ``Conv1d`` / ``Conv2d``: ``conv(x, weight) + bias`` (stride, padding, including NIR's ``"same"``/``"valid"``,
  dilation, groups);
* ``Linear``: ``x W^T``; ``Affine``: ``x W^T + b``;
* ``Scale``: ``x * scale`` (per channel or element, broadcast);
* ``SumPool2d``: the sum over each window (zero padding), ``AvgPool2d``: that sum over the window's size
  (padding counted);
* ``Flatten``: ``start_dim..end_dim`` of a sample merged (NIR's dimensions exclude the batch).

``bias`` False drops the constant terms (the importer measures the linear part alone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.exporters.nir.io import pair

LINEAR = (nir.Conv1d, nir.Conv2d, nir.Linear, nir.Affine, nir.Scale, nir.SumPool2d, nir.AvgPool2d, nir.Flatten)
"""NIR's linear node types, whose meaning :func:`apply` states."""


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(value))


def prepare(node: nir.NIRNode, tensor: Callable[[Any], torch.Tensor]) -> dict[str, Any]:
    """``node``'s parameters as :func:`apply` reads them, arrays turned into tensors by ``tensor`` (once, where a
    caller applies the node at every step)."""
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        padding = node.padding if isinstance(node.padding, str) else _ints(node.padding)
        return dict(weight=tensor(node.weight), bias=None if node.bias is None else tensor(node.bias),
                    stride=_ints(node.stride), padding=padding, dilation=_ints(node.dilation), groups=int(node.groups))
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return dict(kernel_size=pair(node.kernel_size), stride=pair(node.stride), padding=pair(node.padding),
                    divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
    if isinstance(node, (nir.Affine, nir.Linear)):
        return dict(weight=tensor(node.weight), bias=tensor(node.bias) if isinstance(node, nir.Affine) else None)
    if isinstance(node, nir.Scale):
        return dict(scale=tensor(node.scale))
    if isinstance(node, nir.Flatten):
        return dict(start=_batched(int(node.start_dim)), end=_batched(int(node.end_dim)))
    raise TypeError(f"{type(node).__name__} is not a linear NIR node")


def _batched(dim: int) -> int:
    """A NIR (per-sample) dimension as a batched tensor's dimension."""
    return dim + 1 if dim >= 0 else dim


def apply(node: nir.NIRNode, p: dict[str, Any], x: torch.Tensor, *, bias: bool = True) -> torch.Tensor:
    """The output of linear ``node`` (parameters ``p`` from :func:`prepare`) for input ``x`` [B, *shape]."""
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        conv = F.conv1d if isinstance(node, nir.Conv1d) else F.conv2d
        return conv(x, p["weight"], p["bias"] if bias else None, p["stride"], p["padding"], p["dilation"],
                    p["groups"])
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return F.avg_pool2d(x, count_include_pad=True, **p)
    if isinstance(node, (nir.Affine, nir.Linear)):
        return F.linear(x, p["weight"], p["bias"] if bias else None)
    if isinstance(node, nir.Scale):
        return x * p["scale"]
    if isinstance(node, nir.Flatten):
        return x.flatten(p["start"], p["end"])
    raise TypeError(f"{type(node).__name__} is not a linear NIR node")
