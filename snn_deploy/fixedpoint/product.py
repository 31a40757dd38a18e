r"""The spike product of Spiking Self-Attention: per head, ``q (k^T v)`` between spike maps, times a multiplier.

For one head with spike matrices :math:`q, k, v \in \{0, 1\}^{N \times d}` (N tokens, d channels of the head):

.. math::

    y = m \cdot q\,(k^\top v), \qquad (k^\top v)_{ij} = \sum_n k_{ni} v_{nj},\qquad
    y_{nj} = m \sum_i q_{ni} (k^\top v)_{ij}

Evaluating ``k^T v`` first costs d x d per head instead of N x N, and equals ``(q k^T) v`` exactly: every term is
a small integer. Channel ``c`` belongs to head ``c // d``. Integer inputs give exact integers; float inputs are
exact while sums stay below 2^24 (float32) or 2^53 (float64), and the float model differentiates through it.
Every backend computes this product with :func:`spike_product` (torch model, simulator, Lava process) or is tested
against it (the ONNX graph, which builds it from MatMul nodes).
"""

from __future__ import annotations

import torch

from snn_deploy.fixedpoint._backend import Array, as_tensor, like_input


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[..., C, N] -> [..., heads, N, C/heads]; channel c belongs to head c // (C/heads)."""
    *lead, c, n = x.shape
    return x.reshape(*lead, heads, c // heads, n).transpose(-1, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_heads`: [..., heads, N, d] -> [..., heads * d, N]."""
    *lead, h, n, d = x.shape
    return x.transpose(-1, -2).reshape(*lead, h * d, n)


def spike_product(q: Array, k: Array, v: Array, heads: int, multiplier: int | float = 1) -> Array:
    """``multiplier * q (k^T v)`` per head of maps [..., C, N] (channels, tokens); numpy in -> numpy out.

    Integer arrays are computed in int64; float tensors in their own dtype (autograd flows through)."""
    qt, kt, vt = (as_tensor(x, None) for x in (q, k, v))
    if not qt.is_floating_point():
        qt, kt, vt = (x.to(torch.int64) for x in (qt, kt, vt))
    qh, kh, vh = (split_heads(x, heads) for x in (qt, kt, vt))
    out = merge_heads(qh @ (kh.transpose(-1, -2) @ vh))
    return like_input(q, out * multiplier if multiplier != 1 else out)
