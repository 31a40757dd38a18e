"""One validator for bundles read from disk: everything a crafted or damaged bundle could use to crash, escape,
exhaust memory or never finish is refused in one line, before anything large is read or allocated.

Order (each step only after the previous one passed):

1. ``manifest.json``: at most :data:`MAX_MANIFEST_BYTES`; a JSON object whose fields have the types downstream
   code reads; ``files`` names plain relative paths that stay inside the bundle directory (no ``..``, no absolute
   path, no symbolic link leading out), ``network.nir`` among them; hashes are read in chunks.
2. ``network.nir`` (HDF5): the declared size of every array, from HDF5 metadata alone and counted as read (64-bit
   values), at most :data:`MAX_NIR_BYTES` in total and :data:`MAX_NIR_ARRAYS` arrays, so a compressed file cannot
   inflate; every node's NIR type is one NIR defines.
3. The graph: every node's fields (types, shapes, ranges of the Loihi integers), edges that match shapes, and the
   work a run implies: ``T x sum over synapse nodes (output neurons x fan-in)`` plus the spike products' terms at
   most :data:`MAX_WORK` per sample, ``T x sum of node sizes`` at most :data:`MAX_STATE` per sample.

The limits are about 15x the largest model of the zoo (spikformer-8-768 at 224 x 224, T = 4: ~6e10 synaptic
operations and ~2e8 state values per sample, estimated from its layer sizes), so every real network passes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.fixedpoint.sigma_delta import bias_limit
from snn_deploy.graph import (
    CONV_ROLES, ConvNode, Graph, InputNode, LIFNode, ReadoutNode, SigmaDeltaNode, SpikeProductNode, SumNode,
    conv_output_hw,
)
from snn_deploy.io import sha256_file

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_NIR_BYTES = 4 * 2**30
"""Bytes of all arrays of network.nir as read (64-bit values; the largest zoo model needs < 2 GiB)."""
MAX_NIR_ARRAYS = 1_000_000
MAX_T = 100_000
MAX_SIZE = 1 << 16
"""Largest channel count, height or width of one node."""
MAX_WORK = 10**12
"""Dense synaptic operations per sample (T x output neurons x fan-in, summed), ~15x the largest zoo model."""
MAX_STATE = 2 * 10**9
"""Values the simulator holds per sample (T x elements of every node), ~10x the largest zoo model."""
PAYLOAD_BITS = (1, 24)
WEIGHT_EXP_RANGE = (-32, 32)
MAX_MULTIPLIER = 1 << 24
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _damaged(where: str, what: str) -> UserError:
    return UserError(f"{where}: {what}; the bundle is damaged or was not written by snn-deploy, export it again")


def read_manifest(bundle: Path, manifest_file: str) -> dict[str, Any]:
    """The manifest as a dict, size-checked before reading and JSON-checked."""
    path = bundle / manifest_file
    if not path.is_file():
        raise UserError(f"{bundle}: no {manifest_file}; not a snn-deploy bundle (export one with `snn-deploy export "
                        f"MODEL -o {bundle}`)")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise _damaged(str(path), f"{size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest can have")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _damaged(str(path), f"damaged JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise _damaged(str(path), f"a JSON {type(data).__name__}, not an object")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(bundle: Path, data: dict[str, Any], network_file: str) -> None:
    """Field types of the manifest and the ``files`` table (paths inside the bundle, sha256 hex digests)."""
    where = f"{bundle}/manifest.json"
    T = data.get("T")
    if not _is_int(T) or not 1 <= T <= MAX_T:
        raise _damaged(where, f"T is {T!r}, not an integer in 1..{MAX_T}")
    if "target" in data and not isinstance(data["target"], str):
        raise _damaged(where, f"target is a {type(data['target']).__name__}, not a string")
    if data.get("arch") is not None and not isinstance(data["arch"], str):  # null: imported, not from the zoo
        raise _damaged(where, f"arch is a {type(data['arch']).__name__}, not a string or null")
    if "input" in data and not isinstance(data["input"], dict):
        raise _damaged(where, "input is not an object")
    files = data.get("files")
    if not isinstance(files, dict) or network_file not in files:
        raise _damaged(where, f"'files' must map file names to sha256 digests and include {network_file}")
    root = bundle.resolve()
    for name, digest in files.items():
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _damaged(where, f"the digest of {name!r} is not a sha256 hex string")
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\\" in name:
            raise UserError(f"{where}: file {name!r} lies outside the bundle; bundle files are plain names inside "
                            "the bundle directory (a crafted bundle?), export it again")
        if not (bundle / name).resolve().is_relative_to(root):
            raise UserError(f"{where}: file {name!r} is a link leading outside the bundle; bundle files must be "
                            "regular files inside it, export it again")


def check_files(bundle: Path, files: dict[str, str], manifest_file: str) -> None:
    """Every listed file exists and matches its hash (read in chunks)."""
    for name, digest in files.items():
        file = bundle / name
        if not file.is_file():
            raise UserError(f"{bundle}: {name} is missing; export the bundle again")
        if sha256_file(file) != digest:
            raise UserError(f"{bundle}: {name} does not match its hash in {manifest_file} (modified or damaged); "
                            "export the bundle again")


def widened_bytes(dtype: Any) -> int:
    """Bytes per element once read: readers widen numbers to 64 bits (``astype(int)``, float64), complex to 128."""
    kind = np.dtype(dtype).kind
    return 16 if kind == "c" else 8 if kind in "biuf" else np.dtype(dtype).itemsize


def check_hdf5_sizes(path: Path, *, max_bytes: int, what: str, fix: str) -> None:
    """Declared sizes of every HDF5 array in ``path``, from metadata only (nothing is read or inflated): at most
    ``max_bytes`` in total as the readers widen them (:func:`widened_bytes`, Python integers: no overflow) and
    :data:`MAX_NIR_ARRAYS` arrays. ``what`` names the file's kind, ``fix`` what the user can do."""
    import h5py

    total, count = 0, 0
    found: list[str] = []

    def visit(name: str, item: Any) -> None:
        nonlocal total, count
        if isinstance(item, h5py.Dataset):
            count += 1
            total += math.prod(int(n) for n in item.shape or ()) * widened_bytes(item.dtype)
            if total > max_bytes or count > MAX_NIR_ARRAYS:
                found.append(name)
                return True  # stops the walk
        return None

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise UserError(f"{path}: not a readable {what} ({type(exc).__name__}: {_short(exc)}); {fix}") from None
    if found:
        raise UserError(f"{path} declares more than {max_bytes} bytes (as read, 64-bit values) or {MAX_NIR_ARRAYS} "
                        f"arrays (at {found[0]!r}; a decompression bomb or a crafted file?); {what}s of real "
                        f"networks are far smaller; {fix}")


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120]


def check_nir_sizes(path: Path) -> None:
    """:func:`check_hdf5_sizes` of a bundle's network.nir (limit :data:`MAX_NIR_BYTES`)."""
    check_hdf5_sizes(path, max_bytes=MAX_NIR_BYTES, what="NIR file", fix="export the bundle again")


def _shape_ok(shape: Any) -> bool:
    return (isinstance(shape, tuple) and len(shape) == 3 and all(_is_int(s) for s in shape)
            and all(1 <= s <= MAX_SIZE for s in shape))


def _in_range(value: Any, bounds: tuple[int, int]) -> bool:
    return _is_int(value) and bounds[0] <= value <= bounds[1]


def _int_array_in(values: np.ndarray, bounds: tuple[int, int], size: int) -> bool:
    return (values.dtype.kind in "iu" and values.ndim <= 1 and values.size in (1, size)
            and bool(((values >= bounds[0]) & (values <= bounds[1])).all()))


def _node_problem(node: Any, shapes: dict[str, tuple[int, int, int]]) -> str | None:
    """What is wrong with one node (fields, ranges, agreement with its inputs' shapes), or None."""
    if not isinstance(node.name, str) or not node.name:
        return "a node without a name"
    if not _shape_ok(node.shape):
        return f"shape {node.shape!r} is not three integers in 1..{MAX_SIZE}"
    ins = [shapes[i] for i in node.inputs]
    c, h, w = node.shape
    if isinstance(node, InputNode):
        if node.inputs or not _in_range(node.payload_bits, PAYLOAD_BITS) or not math.isfinite(node.scale) \
                or node.scale <= 0:
            return f"input payload_bits {node.payload_bits!r} / scale {node.scale!r} out of range"
    elif isinstance(node, ConvNode):
        k = node.weight
        if len(ins) != 1 or k.ndim != 4 or k.shape[0] != c or not _in_range(node.groups, (1, MAX_SIZE)):
            return f"kernel shape {k.shape} does not fit output channels {c}, or not exactly one input"
        cin = ins[0][0]
        if cin % node.groups or c % node.groups or k.shape[1] * node.groups != cin:
            return f"kernel {k.shape} with {node.groups} group(s) does not fit {cin} input channels"
        if not (len(node.stride) == 2 and all(_in_range(s, (1, MAX_SIZE)) for s in node.stride)
                and len(node.padding) == 2 and all(_in_range(p, (0, MAX_SIZE)) for p in node.padding)):
            return f"stride {node.stride!r} / padding {node.padding!r} out of range"
        if conv_output_hw(ins[0][1:], k.shape[2:], node.stride, node.padding) != (h, w):
            return f"output size {h} x {w} does not follow from input {ins[0][1:]} and kernel {k.shape[2:]}"
        if not _in_range(node.weight_exp, WEIGHT_EXP_RANGE) or node.role not in CONV_ROLES:
            return f"weight_exp {node.weight_exp!r} outside {WEIGHT_EXP_RANGE} or unknown role {node.role!r}"
    elif isinstance(node, SigmaDeltaNode):
        if not ins or any(s != node.shape for s in ins):
            return f"input shapes {ins} differ from its shape {node.shape}"
        limit = bias_limit(node.spike_exp + node.state_exp)
        if not _int_array_in(node.bias_mant, (-limit, limit), c):
            return f"sigma-delta biases are not per-channel integers within +-{limit}"
    elif isinstance(node, LIFNode):
        if not ins or any(s != node.shape for s in ins):
            return f"input shapes {ins} differ from its shape {node.shape}"
        if not (_in_range(node.du, L.DU_RANGE) and _in_range(node.dv, L.DV_RANGE) and _in_range(node.vth, L.VTH_RANGE)):
            return f"du/dv/vth {node.du!r}/{node.dv!r}/{node.vth!r} outside Loihi's ranges"
        if not (_int_array_in(node.bias_mant, L.BIAS_MANT_RANGE, c)
                and _int_array_in(node.bias_exp, L.BIAS_EXP_RANGE, c)):
            return "bias mantissas/exponents are not per-channel integers in Loihi's ranges"
    elif isinstance(node, SumNode):
        if not ins or any(s != node.shape for s in ins):
            return f"input shapes {ins} differ from its shape {node.shape}"
    elif isinstance(node, SpikeProductNode):
        if len(ins) != 3 or any(s != node.shape for s in ins):
            return f"needs three inputs shaped {node.shape}, has {ins}"
        if not _in_range(node.heads, (1, c)) or c % node.heads or not _in_range(abs(node.multiplier),
                                                                                (0, MAX_MULTIPLIER)):
            return f"heads {node.heads!r} / multiplier {node.multiplier!r} out of range"
    elif isinstance(node, ReadoutNode):
        if len(ins) != 1 or ins[0] != node.shape:
            return f"input shapes {ins} differ from its shape {node.shape}"
        if node.weight.ndim != 2 or node.weight.shape[1] not in (c, c * h * w) \
                or node.bias.shape != node.weight.shape[:1] \
                or not np.isfinite(node.weight).all() or not np.isfinite(node.bias).all():
            return f"weight {node.weight.shape} / bias {node.bias.shape} do not fit {c} channels or are not finite"
    return None


def work(graph: Graph) -> tuple[int, int]:
    """(dense synaptic operations, state values) one sample implies: see the module docstring."""
    ops = 0
    for node in graph.nodes:
        c, h, w = node.shape
        if isinstance(node, ConvNode):
            ops += c * h * w * int(np.prod(node.weight.shape[1:]))
        elif isinstance(node, SpikeProductNode):
            ops += 2 * h * w * c * (c // node.heads)  # k^T v and q (k^T v): tokens x head_dim^2 per head
    state = sum(int(np.prod(n.shape)) for n in graph.nodes)
    return graph.T * ops, graph.T * state


def check_graph(graph: Graph, where: str) -> None:
    """Every node valid, edges matching shapes, and the implied work within :data:`MAX_WORK` / :data:`MAX_STATE`."""
    if not _is_int(graph.T) or not 1 <= graph.T <= MAX_T:
        raise _damaged(where, f"T is {graph.T!r}, not an integer in 1..{MAX_T}")
    shapes: dict[str, tuple[int, int, int]] = {}
    for node in graph.nodes:
        problem = _node_problem(node, shapes)
        if problem:
            raise _damaged(where, f"node {node.name!r} ({node.kind}): {problem}")
        shapes[node.name] = node.shape
    readouts = [i for i, node in enumerate(graph.nodes) if isinstance(node, ReadoutNode)]
    if readouts and readouts != [len(graph.nodes) - 1]:  # a classifier is optional (imported regression networks)
        raise _damaged(where, "a readout node that is not the graph's last node")
    ops, state = work(graph)
    if ops > MAX_WORK or state > MAX_STATE:
        raise UserError(f"{where}: the network implies {ops:.3g} synaptic operations and {state:.3g} state values "
                        f"per sample (T = {graph.T}), over the limits of {MAX_WORK:.0e} and {MAX_STATE:.0e} (about "
                        "15x the largest zoo model); it is crafted or far too large to simulate")


def with_steps(graph: Graph, steps: int, option: str = "--time-steps") -> Graph:
    """``graph`` run for ``steps`` steps, refused in one line unless ``steps`` lies in 1..:data:`MAX_T` and the
    work it implies stays within :data:`MAX_WORK` / :data:`MAX_STATE` (checked before anything is allocated)."""
    import dataclasses

    if not _is_int(steps) or not 1 <= steps <= MAX_T:
        raise UserError(f"{option} {steps!r} must be an integer in 1..{MAX_T}; pass fewer steps")
    longer = dataclasses.replace(graph, T=steps)
    ops, state = work(longer)
    if ops > MAX_WORK or state > MAX_STATE:
        raise UserError(f"{option} {steps}: the network would take {ops:.3g} synaptic operations and {state:.3g} "
                        f"state values per sample, over the limits of {MAX_WORK:.0e} and {MAX_STATE:.0e}; pass "
                        "fewer steps")
    return longer

