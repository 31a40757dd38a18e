"""Per step, the messages each population of the ``packed`` attention lowering sends and the synaptic ops of each
of its projections, counted from q, k, v spikes: exact, from the integers the lowering computes.

Why here: the lowering (``snn_deploy/graph/hardware.py`` ``packed_arrays``) packs several products into one graded
payload, so its events are not the spike product's own counts (``PRODUCT_COUNTS``). A packed word is non-zero iff
one of its fields is; a shift relay's level floor(X / 2^s) iff X >= 2^s; an unpacked field iff its partial sum
is. Each is counted per channel of its population (the channel layouts of ``packed_arrays``) and turned into events
and synaptic ops by ``hardware.packed_counts`` (fan-out per source channel as Lava holds the synapses).
"""

from __future__ import annotations

import numpy as np
import torch

from snn_deploy.graph import SpikeProductNode
from snn_deploy.graph.hardware import Packing, packed_counts, product_packing


def _words(x: torch.Tensor, fields: int) -> torch.Tensor:
    """[..., d] -> [..., W, fields]: d zero-padded to whole words."""
    d = x.shape[-1]
    pad = -d % fields
    return torch.nn.functional.pad(x, (0, pad)).reshape(*x.shape[:-1], (d + pad) // fields, fields)


def _packed(x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """[..., d] counts -> [..., W] words sum_f x[w F + f] << b f (float64: exact below 2^53)."""
    scale = torch.tensor([float(1 << packing.bits * f) for f in range(packing.fields)], dtype=x.dtype)
    return (_words(x, packing.fields) * scale).sum(-1)


def packed_channels(node: SpikeProductNode, qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor, kv: torch.Tensor,
                    steps: int) -> dict[str, np.ndarray]:
    """Messages per step and channel [T, C] of q, k, v and of every ``packed`` population of ``node`` (keyed by its
    suffix), in the populations' channel layouts, from the caller's spikes split by head (float64
    [T * B, heads, N, d], :func:`~snn_deploy.fixedpoint.split_heads`) and their k^T v [T * B, heads, d, d]."""
    packing = product_packing(node)
    kvp = packing.kv
    _, h, w = node.shape
    heads, d = node.heads, qh.shape[-1]
    batch = qh.shape[0] // steps
    out: dict[str, torch.Tensor] = {"q": qh.sum(-2), "k": kh.sum(-2), "v": vh.sum(-2)}  # [S, heads, d]
    any_v = _words(vh, kvp.fields).amax(-1)  # [S, heads, N, W1]: token j sends a non-zero word w of v
    out["and"] = torch.einsum("shnw,shnc->shwc", any_v, kh)
    columns = torch.einsum("shyxw,shyxc->shxwc", any_v.reshape(*any_v.shape[:2], h, w, -1),
                           kh.reshape(*kh.shape[:2], h, w, d))  # per token column x: its H rows' coincidences
    out["kvrow"] = (columns != 0).sum(2)  # (head, w, c), summed over the token columns
    kv_word = _packed(kv, kvp).transpose(-1, -2)  # [S, heads, W1, d]
    out["kv"] = kv_word != 0
    if packing.repacked:
        for level, stage, shift in kvp.relays():
            out[f"kvshift{level}.{stage}"] = torch.floor(kv_word / 2.0 ** shift) != 0
        out["kvfield"] = kv != 0
    any_kv = (_words(kv, packing.fields) != 0).any(-1).to(torch.float64)  # [S, heads, d (c), W]
    out["gate"] = (out["q"][..., None] * any_kv).transpose(-1, -2)
    g, groups, words = packing.group, packing.groups(d), packing.words(d)
    group = torch.zeros(*qh.shape[:2], words, groups, dtype=torch.float64)
    unpack = torch.zeros(*qh.shape[:2], d, groups, dtype=torch.float64)
    levels = {key: torch.zeros_like(group) for key in packing.relays()}
    for j in range(groups):
        fields = qh[..., j * g:(j + 1) * g] @ kv[..., j * g:(j + 1) * g, :]  # [S, heads, N, d]: the group's sums
        unpack[..., j] = (fields != 0).sum(-2)
        x = _packed(fields, packing)  # [S, heads, N, W]: the group sums X
        group[..., j] = (x != 0).sum(-2)
        for key in levels:
            levels[key][..., j] = (torch.floor(x / 2.0 ** key[2]) != 0).sum(-2)
    out["group"], out["unpack"] = group, unpack
    for (level, stage, _), count in levels.items():
        if packing.carries(d):  # (block, half, group): half 0 a copy of X, half 1 its shift
            out[f"shift{level}.{stage}"] = torch.stack([group, count], -2)
        else:
            out[f"shift{level}.{stage}"] = count
    per_step = {key: x.to(torch.float64).reshape(steps, batch, -1).sum(1).round().to(torch.int64).numpy()
                for key, x in out.items()}
    return per_step


def packed_product_counts(node: SpikeProductNode, qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor,
                          kv: torch.Tensor, steps: int) -> dict[str, np.ndarray]:
    """The ``packed`` lowering's events and synaptic ops per step ([T] int64 each), where a packing fits (arguments
    as :func:`packed_channels`)."""
    if product_packing(node) is None:
        return {}
    return packed_counts(node, packed_channels(node, qh, kh, vh, kv, steps))
