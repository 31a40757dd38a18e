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
                        f"more than {MAX_INPUT_BYTES:,}; pass fewer --time-steps or --samples")


def array_input(graph: Graph, path: Path, *, steps: int | None = None, layout: str = "chw") -> torch.Tensor:
    """One sample from the .npy file ``path`` as the simulator's per-step input [steps, 1, C, H, W] (float64):
    :func:`shaped_input` of the file's array (memory-mapped, so a per-step file is read only up to ``steps``)."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a NumPy .npy array ({exc})") from None
    if not isinstance(data, np.ndarray):
        raise UserError(f"{path}: expected one numeric .npy array")
    return shaped_input(graph, data, steps=steps, layout=layout, batched=False, where=str(path))


def shaped_input(graph: Graph, data: np.ndarray, *, steps: int | None = None, layout: str = "chw",
                 batched: bool = False, where: str = "the input array") -> torch.Tensor:
    """``data`` as the simulator's per-step input [steps, N, C, H, W] (float64).

    One sample (``batched`` False): ``chw`` [C, H, W] held over every step or [T, C, H, W] one map per step;
    ``whc`` [W, H, C] or [W, H, C, T]. A batch adds the sample axis N where each layout keeps it: ``chw``
    [N, C, H, W] or [T, N, C, H, W] (the simulator's own layout), ``whc`` [N, W, H, C] or [N, W, H, C, T].
    ``steps`` defaults to the graph's T for a held map and to the array's length for a per-step one; a per-step
    array shorter than ``steps`` is an error (nothing is padded). Refused in one line before anything is
    allocated: empty arrays, steps beyond :func:`with_steps`' limits, inputs over :data:`MAX_INPUT_BYTES`. Values
    must encode into the input's payload range without clipping, and a scale-1 input takes integers only.
    """
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if steps is not None:
        with_steps(graph, steps)  # T range and the work it implies, before anything is read
    if data.dtype.kind not in "biuf":
        raise UserError(f"{where}: expected a numeric array, got dtype {data.dtype}")
    node = graph.input
    c, h, w = node.shape
    sample = (c, h, w) if layout == "chw" else (w, h, c)
    given = list(data.shape)
    if not batched and data.ndim in (3, 4):  # the same array with a sample axis of 1
        data = data[None] if data.ndim == 3 or layout == "whc" else data[:, None]
    elif not batched:
        data = data[None, None, None]  # no such shape: refused below with the shapes that fit
    shape = tuple(data.shape)
    if data.ndim == 4 and shape[1:] == sample:  # held: [N, C, H, W] or [N, W, H, C]
        count = shape[0]
        steps = steps or graph.T
    elif data.ndim == 5 and (shape[2:] if layout == "chw" else shape[1:4]) == sample:
        count, length = (shape[1], shape[0]) if layout == "chw" else (shape[0], shape[4])
        if length == 0:
            raise UserError(f"{where}: holds 0 steps; give at least one map")
        steps = steps or length
        if steps > length:
            raise UserError(f"{where}: holds {length} steps, fewer than --time-steps {steps}")
        with_steps(graph, steps)
    else:
        n = "N, " if batched else ""
        held = f"[{n}{c}, {h}, {w}]" if layout == "chw" else f"[{n}{w}, {h}, {c}]"
        per_step = f"[T, {n}{c}, {h}, {w}]" if layout == "chw" else f"[{n}{w}, {h}, {c}, T]"
        raise UserError(f"{where}: shape {given} fits neither the bundle's input {held} nor {per_step} in layout "
                        f"{layout} (choose layout chw or whc)")
    if count == 0:
        raise UserError(f"{where}: holds 0 samples; give at least one")
    check_input_size(node.shape, count, steps, where)
    if data.ndim == 4:
        x = np.asarray(data, dtype=np.float64)
        x = x if layout == "chw" else x.transpose(0, 3, 2, 1)
    else:
        x = np.asarray(data[:steps] if layout == "chw" else data[..., :steps], dtype=np.float64)
        x = x if layout == "chw" else x.transpose(4, 0, 3, 2, 1)
    if not np.all(np.isfinite(x)):
        raise UserError(f"{where}: holds NaN or infinite values")
    payload = np.round(x * node.scale)
    lo, hi = node.payload_range
    if payload.size and (payload.min() < lo or payload.max() > hi):
        raise UserError(f"{where}: values encode to payloads in [{payload.min():.0f}, {payload.max():.0f}], outside "
                        f"the input's {node.payload_bits}-bit range [{lo}, {hi}] (scale {node.scale})")
    if node.scale == 1 and not np.array_equal(payload, x):
        raise UserError(f"{where}: holds fractional values, but this input takes integers as they are (scale 1: "
                        "an imported netx network's spikes, payloads or bias image); round them yourself")
    seq = np.broadcast_to(x, (steps, *x.shape)) if x.ndim == 4 else x
    return torch.from_numpy(np.array(seq, dtype=np.float64, order="C"))  # a copy: writable, not the file
