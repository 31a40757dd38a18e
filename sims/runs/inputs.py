"""Raw input arrays from a .npy file, shaped for a graph: run a bundle on any data, not only on a named data set.

The array holds what a data-set sample would: the values the input node encodes (payload = round(x * scale)).
For an imported lava-dl netx network the scale is 1, so the array holds the integers themselves: the bias image of
a bias-driven input layer (lava-dl's PilotNet writes ``image.npy`` into the input layer's ``bias_mant``), or the
spikes / graded payloads of a network whose first layer reads the input port.

Layouts: ``chw`` (snn-deploy's): ``[C, H, W]`` held over every step, or ``[T, C, H, W]`` one map per step;
``whc`` (Lava's, as lava-dl's data and golden traces are stored): ``[W, H, C]`` held, or ``[W, H, C, T]``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from snn_deploy.errors import UserError
from snn_deploy.exporters.formats.bundle_check import with_steps
from snn_deploy.graph import Graph

LAYOUTS = ("chw", "whc")
MAX_INPUT_BYTES = 256 * 2**20
"""Largest input sequence a run builds (float64 values of every step and sample), checked before allocating."""


def check_input_size(shape: tuple[int, ...], samples: int, steps: int, where: str) -> None:
    """Refuse (one line) an input of ``samples`` x ``steps`` maps shaped ``shape`` over :data:`MAX_INPUT_BYTES`
    (Python integers: no overflow)."""
    size = samples * steps * math.prod(shape) * 8
    if size > MAX_INPUT_BYTES:
        raise UserError(f"{where}: {samples} sample(s) x {steps} steps of a {list(shape)} input take {size:,} bytes, "
                        f"more than {MAX_INPUT_BYTES:,}; pass fewer --steps or --samples")


def array_input(graph: Graph, path: Path, *, steps: int | None = None, layout: str = "chw") -> torch.Tensor:
    """One sample from ``path`` as the simulator's per-step input [steps, 1, C, H, W] (float64).

    ``steps`` defaults to the graph's T for a held map and to the array's length for a per-step one; a per-step
    array shorter than ``steps`` is an error (nothing is padded). Values must encode into the input's payload range
    without clipping.
    """
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if steps is not None:
        with_steps(graph, steps)
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a NumPy .npy array ({exc})") from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise UserError(f"{path}: expected one numeric .npy array")
    node = graph.input
    c, h, w = node.shape
    held_shape = (c, h, w) if layout == "chw" else (w, h, c)
    if data.ndim == 3 and tuple(data.shape) == held_shape:
        steps = steps or graph.T
        check_input_size(node.shape, 1, steps, str(path))
        x = np.asarray(data, dtype=np.float64)
        x = x if layout == "chw" else x.transpose(2, 1, 0)
    elif data.ndim == 4 and tuple(data.shape[1:] if layout == "chw" else data.shape[:3]) == held_shape:
        length = int(data.shape[0] if layout == "chw" else data.shape[3])
        if length == 0:
            raise UserError(f"{path}: holds 0 steps; give at least one map")
        steps = steps or length
        if steps > length:
            raise UserError(f"{path}: holds {length} steps, fewer than --steps {steps}")
        with_steps(graph, steps)
        check_input_size(node.shape, 1, steps, str(path))
        x = np.asarray(data[:steps] if layout == "chw" else data[..., :steps], dtype=np.float64)
        x = x if layout == "chw" else x.transpose(3, 2, 1, 0)
    else:
        per_step = f"[T, {c}, {h}, {w}]" if layout == "chw" else f"[{w}, {h}, {c}, T]"
        raise UserError(f"{path}: shape {list(data.shape)} fits neither the bundle's input {list(held_shape)} nor "
                        f"{per_step} in layout {layout} (choose --layout chw or whc)")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: holds NaN or infinite values")
    payload = np.round(x * node.scale)
    lo, hi = node.payload_range
    if payload.size and (payload.min() < lo or payload.max() > hi):
        raise UserError(f"{path}: values encode to payloads in [{payload.min():.0f}, {payload.max():.0f}], outside "
                        f"the input's {node.payload_bits}-bit range [{lo}, {hi}] (scale {node.scale})")
    if node.scale == 1 and not np.array_equal(payload, x):
        raise UserError(f"{path}: holds fractional values, but this input takes integers as they are (scale 1: "
                        "an imported netx network's spikes, payloads or bias image); round them yourself")
    seq = np.broadcast_to(x, (steps, c, h, w)) if x.ndim == 3 else x
    return torch.from_numpy(np.ascontiguousarray(seq)).unsqueeze(1)
