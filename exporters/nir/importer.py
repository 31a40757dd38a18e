"""Standard NIR graphs (written by snnTorch, Norse, SpikingJelly, ...) -> the deployed integer graph.

A frontend of the graph: the NIR file's continuous-time float parameters become Loihi CUBA LIF populations with
integer weights, through the one quantizer every frontend uses (:func:`snn_deploy.quant.quantize_layer`, with its
per-layer report). Files written by snn-deploy itself carry their exact integers and are read by
:func:`snn_deploy.exporters.nir.io.from_nir` instead (bit-exact, no quantization).

The mapping (docs/nir_mapping.md, "Importing standard NIR", has the derivation):

* Every neuron node (``LIF``, ``CubaLIF``, ``IF``, ``Threshold``) is one :class:`LIFNode`; forward Euler at the
  consumer's step ``dt`` gives its per-step dynamics (:func:`neuron_dynamics`, the only place the equations are
  written). Thresholds are divided out per neuron (the float threshold becomes 1), so per-neuron thresholds cost
  nothing.
* The linear nodes between two neuron layers (``Conv1d``, ``Conv2d``, ``Linear``, ``Affine``, ``Scale``,
  ``SumPool2d``, ``AvgPool2d``, ``Flatten``, zero ``Delay``; several edges into a node sum) compose into one
  linear map per source layer. A path of convolutions and pools (``Conv1d``, ``Conv2d``, ``SumPool2d``,
  ``AvgPool2d``, each with one input) stays a :class:`ConvNode`: a pool is a depthwise conv of ones, and a pool
  before or after a conv composes with it into one strided convolution where that is exact (checked); any other
  composition becomes an exact full-map kernel (a dense synapse), and the layer it feeds is then laid out as a
  vector ``(n, 1, 1)``.
* A recurrent edge (a cycle from a neuron node back to itself through linear nodes only, as snnTorch 1.0 writes
  ``RLeaky`` / ``RSynaptic``: ``lif -> w_rec -> lif``) becomes a recurrent :class:`ConvNode` of the composed map
  (a dense kernel; the neuron is laid out as a vector): its currents from step t - 1's spikes join step t's input,
  the one-step delay every discrete-time framework gives the edge (``recurrent(spk)`` of the previous step) and the
  hardware's synapse has. Its weights share the layer's weight exponent; constant terms go to the bias.
* The ``Output`` node is read on the host: a :class:`ReadoutNode` of the spike counts of the last spiking layer
  (identity), or of the linear nodes between them (an ``Affine`` readout), averaged over steps, per channel where
  the map weighs every position of a channel alike, else per neuron (the layer keeps its (C, H, W) layout).

Reset: NIR's neurons reset v to ``v_reset`` after a spike, and Loihi's to 0, so ``v_reset = 0`` is what the file
must say; reset by subtraction (snnTorch's and SpikingJelly's ``v_reset=None`` default) is not in a NIR file at all
(snnTorch writes ``v_reset = 0`` whatever its mechanism). The import assumes reset to zero (``reset="zero"``);
``reset="subtract"`` says the network was trained with subtraction, which Loihi's LIF cannot do: every neuron node
with a state is then refused by name.

What the deployed graph cannot express is refused, every offending node in one error: non-zero ``v_reset``,
thresholds <= 0, time constants shorter than ``dt``, non-uniform time constants within a node, cycles through more
than one neuron or mixing other inputs into the feedback, nested graphs, non-spiking neurons (``LI``, ``CubaLI``,
``I``: Loihi transmits spikes), non-zero delays.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.errors import UserError
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.exporters.nir import ops
from snn_deploy.exporters.formats.bundle_check import MAX_T, check_graph
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, Node, Problem, ReadoutNode, Shape, summarize
from snn_deploy.quant import INPUT_PAYLOAD_BITS, QuantReport, balanced_input_scale, calibrate_input, quantize_layer

DEFAULT_DT = nir_io.DT
"""The consumer's step when the file names none: 1e-4 s, snnTorch's fixed step and SpikingJelly's default."""
DEFAULT_STEPS = 16
"""Time steps of an imported network when the file names none (NIR is continuous-time; ``--time-steps`` sets it)."""
OWN_FRONTEND = "snn-deploy NIR file (exact integers from its metadata)"
DENSE_LIMIT = 1 << 25
"""Largest composed dense kernel (entries) built while importing: beyond it the network is not a small one."""

NEURONS = (nir.CubaLIF, nir.LIF, nir.IF, nir.Threshold)
LINEAR = (*ops.LINEAR, nir.Delay)
"""The linear nodes imported: NIR's (:data:`~snn_deploy.exporters.nir.ops.LINEAR`) and Delay without delays."""
NON_SPIKING = (nir.CubaLI, nir.LI, nir.I)
IMPORT_SCHEMA = 1
READOUT_FIX = "end with a spiking layer, or a Linear/Affine readout of one"
RESETS = ("zero", "subtract")
"""What the network was trained with after a spike (``--reset``): NIR files do not say (module docstring)."""
NEURON_FIX = "see docs/nir_mapping.md, 'Importing standard NIR'"


@dataclass(frozen=True)
class NeuronDynamics:
    """A NIR neuron population as Loihi's CUBA neuron at step ``dt`` (arrays per neuron, NIR shape).

    Loihi: ``u[t] = (1 - (du + 1)/4096) u[t-1] + a[t]``, ``v[t] = (1 - dv/4096) v[t-1] + u[t] + bias``, a spike
    and ``v = 0`` iff ``v > vth``. In float units of the NIR node (threshold divided out, so the threshold is 1):
    ``a = gain * (W x)`` for the synaptic input ``W x``, ``bias = bias_gain * b + leak`` for a constant synaptic
    input ``b`` (its steady state through the current filter; exact when the current has no memory).
    """

    du: int
    dv: int
    gain: np.ndarray
    bias_gain: np.ndarray
    leak: np.ndarray
    notes: tuple[str, ...] = ()


def _array(value, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return np.zeros(shape)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    value = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise _Refused(f"a parameter shaped {list(value.shape)} does not fit the node's input {list(shape)}") from None


def _decay(step_fraction: np.ndarray, offset: int, what: str) -> tuple[int, str | None]:
    """The 12-bit decay ``d`` with ``(d + offset)/4096 = dt/tau`` (Loihi's current has offset 1, its voltage 0)."""
    if step_fraction.size and not np.allclose(step_fraction, step_fraction.flat[0], rtol=1e-9, atol=0):
        raise _Refused(f"{what} differs between neurons (one Loihi population has one decay)")
    fraction = float(step_fraction.flat[0]) if step_fraction.size else 1.0
    if not 0 <= fraction <= 1 + 1e-9:
        raise _Refused(f"{what} is shorter than the step dt (dt/tau = {fraction:.4g} > 1: forward Euler is unstable; "
                       "pass the step the file was written for, --dt)")
    exact = fraction * L.DECAY_UNITY - offset
    d = int(np.clip(round(exact), L.DU_RANGE[0] if offset else L.DV_RANGE[0], L.DECAY_UNITY - 1))
    note = None if abs(d - exact) < 1e-3 else f"{what}: decay 4096 dt/tau = {exact + offset:.4f} rounded to {d + offset}"
    return d, note


class _Refused(Exception):
    """A node whose parameters Loihi's neuron cannot express (collected, then reported together)."""


def neuron_dynamics(node: nir.NIRNode, shape: tuple[int, ...], dt: float) -> NeuronDynamics:
    """Forward Euler at step ``dt`` of a NIR neuron node, as Loihi CUBA parameters (see :class:`NeuronDynamics`).

    * ``LIF``: ``tau dv/dt = (v_leak - v) + r I``  ->  ``v += (dt/tau) (v_leak - v + r I)``:
      ``dv = 4096 dt/tau``, ``du = 4095`` (no current memory), ``gain = bias_gain = (dt/tau) r``,
      ``leak = (dt/tau) v_leak``.
    * ``CubaLIF``: also ``tau_syn dI/dt = -I + w_in S``  ->  ``I += (dt/tau_syn)(w_in S - I)``:
      ``du = 4096 dt/tau_syn - 1``, ``gain = (dt/tau_mem) r (dt/tau_syn) w_in``, ``bias_gain = (dt/tau_mem) r w_in``.
    * ``IF``: ``dv/dt = r I``  ->  ``v += dt r I``: ``dv = 0``, ``gain = bias_gain = dt r``.
    * ``Threshold``: memoryless, ``dv = 4095`` (Loihi keeps ``trunc(v / 4096)``), gain 1.

    All of them fire where ``v > v_threshold`` and reset to 0, divided by ``v_threshold`` here.
    """
    full = lambda value: _array(value, shape)  # noqa: E731
    if isinstance(node, nir.Threshold):
        theta = full(node.threshold)
        one = np.ones(shape)
        return _normalized(L.DECAY_UNITY - 1, L.DECAY_UNITY - 1, one, one, np.zeros(shape), theta, (), None)
    if np.any(full(getattr(node, "v_reset", None)) != 0):
        raise _Refused("v_reset is not 0 (Loihi resets v to 0)")
    if isinstance(node, nir.IF):
        gain = dt * full(node.r)
        return _normalized(L.DECAY_UNITY - 1, 0, gain, gain, np.zeros(shape), full(node.v_threshold), (), None)
    tau_mem = full(node.tau if isinstance(node, nir.LIF) else node.tau_mem)
    if np.any(tau_mem <= 0):
        raise _Refused("a membrane time constant is <= 0")
    mem = dt / tau_mem
    dv, dv_note = _decay(mem, L.VOLTAGE_DECAY_OFFSET, "tau_mem")
    gain = mem * full(node.r)
    leak = mem * full(node.v_leak)
    if isinstance(node, nir.LIF):
        return _normalized(L.DECAY_UNITY - 1, dv, gain, gain, leak, full(node.v_threshold), (dv_note,), None)
    tau_syn = full(node.tau_syn)
    if np.any(tau_syn <= 0):
        raise _Refused("a synaptic time constant is <= 0")
    syn = dt / tau_syn
    du, du_note = _decay(syn, L.CURRENT_DECAY_OFFSET, "tau_syn")
    w_in = full(node.w_in)
    bias_note = "synaptic bias enters v at its steady state (exact after the current's transient)" if du < 4095 else None
    return _normalized(du, dv, gain * syn * w_in, gain * w_in, leak, full(node.v_threshold), (dv_note, du_note),
                       bias_note)


def _normalized(du: int, dv: int, gain, bias_gain, leak, theta, notes, bias_note) -> NeuronDynamics:
    if np.any(theta <= 0):
        raise _Refused("v_threshold is <= 0 (Loihi's threshold is positive)")
    return NeuronDynamics(du, dv, gain / theta, bias_gain / theta, leak / theta,
                          tuple(n for n in (*notes, bias_note) if n))


# --- reading -------------------------------------------------------------------------------------------------------

MAX_STANDARD_BYTES = 256 * 2**20
"""Bytes of all arrays of a standard NIR file as read (64-bit values): snnTorch, Norse, SpikingJelly and Sinabs
networks that fit a chip are far smaller (snn-deploy's own files have the bundle's limit, they hold no floats that
are read)."""
MAX_NODE_ELEMENTS = 1 << 24
"""Largest output of one NIR node (values per sample), checked before anything of that size is allocated."""


def load(path: Path) -> nir.NIRGraph:
    """Read a NIR file, its declared sizes and node types checked first (nothing large is read before); a missing,
    damaged or oversized file is a :class:`UserError`."""
    from snn_deploy.exporters.formats.bundle_check import MAX_NIR_BYTES, check_hdf5_sizes

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such NIR file")
    own = nir_io.written_by_snn_deploy_file(path)
    check_hdf5_sizes(path, max_bytes=MAX_NIR_BYTES if own else MAX_STANDARD_BYTES, what="NIR file",
                     fix="export it again")
    try:
        unknown = nir_io.unknown_types(path)
    except Exception as exc:  # not NIR's layout
        raise UserError(f"{path}: not a readable NIR file ({_detail(exc)}); export it again") from None
    if unknown:
        raise UserError(f"{path}: unknown NIR primitive(s) {', '.join(unknown[:5])} (this snn-deploy reads nir "
                        f"{nir.version}'s primitives); export with a NIR version that has them")
    try:
        return nir.read(str(path))
    except Exception as exc:  # h5py / nir raise many types for damaged or foreign files
        if "type mismatch" in str(exc):  # nir checks the edges' shapes while reading
            raise UserError(f"{path}: mismatched shapes ({str(exc).splitlines()[0]}); export it again") from None
        raise UserError(f"{path}: not a readable NIR file ({_detail(exc)}); export it again") from None


def _detail(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:160]


def written_by_snn_deploy(ir: nir.NIRGraph) -> bool:
    meta = ir.metadata.get("snn_deploy") if isinstance(ir.metadata, dict) else None
    return bool(meta) and nir_io._as_str(meta.get("format")) == nir_io.NIR_FORMAT


def layout(shape: tuple[int, ...]) -> Shape:
    """The deployed graph's (C, H, W) for a NIR shape: (C, L) -> (C, 1, L), (N,) -> (N, 1, 1)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (shape[0], 1, shape[1])
    if len(shape) == 1:
        return (shape[0], 1, 1)
    raise _Refused(f"shape {list(shape)} has no (C, H, W) layout")


# --- the graph's structure -----------------------------------------------------------------------------------------

@dataclass
class _Structure:
    order: list[str]
    preds: dict[str, list[str]]
    shapes: dict[str, tuple[int, ...]]
    """Output shape of every node (per sample, NIR convention)."""
    input: str
    output: str
    recurrent: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Neuron -> the linear nodes whose edges into it close a recurrent loop (left out of ``preds`` and ``order``)."""


def _check_finite(ir: nir.NIRGraph) -> list[Problem]:
    bad = []
    for name, node in ir.nodes.items():
        if isinstance(node, nir.Delay):
            continue  # NaN delays are snn-deploy's spike-product marker; refused below as a delay
        for field, value in vars(node).items():
            if field in ("input_type", "output_type", "metadata") or value is None or isinstance(value, str):
                continue
            try:
                array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if not np.all(np.isfinite(array)):
                bad.append(Problem(name, f"{field} is not finite (NaN or inf)", "fix the exported parameters"))
    return bad


def _sized(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` if one sample of it holds at most :data:`MAX_NODE_ELEMENTS` values (Python integers: no wrap)."""
    if math.prod(shape) > MAX_NODE_ELEMENTS:
        raise UserError(f"NIR node {name!r} is shaped {list(shape)}: {math.prod(shape):,} values per sample, more "
                        f"than the {MAX_NODE_ELEMENTS:,} any node of a deployable network has (crafted or damaged?)")
    return shape


def _apply(node: nir.NIRNode, x: torch.Tensor, bias: bool) -> torch.Tensor:
    """One linear node (:mod:`~snn_deploy.exporters.nir.ops`; a Delay of zero delays passes ``x`` on) on a batch
    x [B, *shape] (float64; on x's device); ``bias`` False drops constant terms."""
    if isinstance(node, nir.Delay):
        return x
    t = lambda v: torch.as_tensor(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v),  # noqa: E731
                                  dtype=torch.float64, device=x.device)
    return ops.apply(node, ops.prepare(node, t), x, bias=bias)


def _refusal(problems: list[Problem]) -> str:
    return f"{len(problems)} NIR node(s) cannot be deployed on Loihi: {summarize(problems)}"


def _structure(ir: nir.NIRGraph, dt: float = DEFAULT_DT) -> tuple[_Structure, list[Problem]]:
    """Order, shapes, and the nodes refused by kind or value (not finite, unsupported); shape errors raise."""
    problems = _check_finite(ir)
    if problems:  # damaged values: nothing below is meaningful
        raise UserError(_refusal(problems))
    for name, node in ir.nodes.items():
        if isinstance(node, nir.NIRGraph):
            problems.append(Problem(name, "nested graph (a recurrent layer such as RLeaky / RSynaptic)",
                                    "write its nodes and edges at the top level, as snnTorch 1.0 does: recurrent "
                                    "edges there are imported"))
        elif isinstance(node, NON_SPIKING):
            problems.append(Problem(name, f"non-spiking {type(node).__name__} neuron",
                                    "Loihi transmits spikes only; end the network with a spiking layer or a "
                                    "Linear/Affine readout"))
        elif isinstance(node, nir.Delay) and not np.all(_array(node.delay, np.shape(node.delay)) == 0):
            problems.append(Problem(name, "Delay with non-zero (or NaN) delays", "the deployed graph has no delays"))
        elif not isinstance(node, (*NEURONS, *LINEAR, nir.Input, nir.Output)):
            problems.append(Problem(name, f"unsupported primitive {type(node).__name__}",
                                    "see docs/nir_mapping.md for the supported ones"))
    order, preds, cyclic, recurrent = nir_io.with_loops(ir, NEURONS, LINEAR)
    if cyclic:  # no order, so no shapes: check each neuron on its own parameters' shape, then report it all
        problems.append(Problem(", ".join(cyclic), "cycle (recurrent edge) through these nodes",
                                "a recurrent edge is imported where a neuron feeds back to itself through linear "
                                "nodes that read nothing else"))
        for name, node in ir.nodes.items():
            if isinstance(node, NEURONS):
                try:
                    neuron_dynamics(node, np.shape(getattr(node, "threshold", getattr(node, "v_threshold", 1))), dt)
                except _Refused as exc:
                    problems.append(Problem(name, str(exc), NEURON_FIX))
        raise UserError(_refusal(problems))
    inputs = [n for n in order if isinstance(ir.nodes[n], nir.Input)]
    outputs = [n for n in order if isinstance(ir.nodes[n], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"NIR graph has {len(inputs)} Input and {len(outputs)} Output nodes; the deployed graph needs "
                        "exactly one of each")
    shapes: dict[str, tuple[int, ...]] = {}
    for name in order:
        node = ir.nodes[name]
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.atleast_1d(node.input_type["input"]))
            if not shape or min(shape) < 1:
                raise UserError(f"NIR Input {name!r} has no usable shape ({list(shape)})")
            shapes[name] = _sized(name, shape)
            continue
        if not preds[name]:
            raise UserError(f"NIR node {name!r} has no input edge")
        incoming = {shapes[p] for p in preds[name]}
        if len(incoming) > 1:
            raise UserError(f"mismatched shapes: NIR node {name!r} sums inputs shaped "
                            f"{', '.join(str(list(s)) for s in sorted(incoming))}")
        shape = incoming.pop()
        declared = getattr(node, "input_type", None) or {}
        want = declared.get("input") if isinstance(declared, dict) else None
        if want is not None and np.size(want) and tuple(int(s) for s in np.atleast_1d(want)) != shape:
            raise UserError(f"mismatched shapes: NIR node {name!r} declares input {list(np.atleast_1d(want))} but "
                            f"receives {list(shape)}")
        if isinstance(node, LINEAR):  # shapes only: on torch's "meta" device nothing is allocated
            try:
                shape = tuple(_apply(node, torch.zeros((1, *shape), dtype=torch.float64, device="meta"),
                                     True).shape[1:])
            except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as exc:
                raise UserError(f"mismatched shapes: NIR node {name!r} ({type(node).__name__}) cannot take input "
                                f"{list(shape)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                ) from None
        shapes[name] = _sized(name, shape)
    for name, back in recurrent.items():
        wrong = [p for p in back if shapes[p] != shapes[name]]
        if wrong:
            raise UserError(f"mismatched shapes: the recurrent edge from {wrong[0]!r} into NIR node {name!r} carries "
                            f"{list(shapes[wrong[0]])} where {name!r} takes {list(shapes[name])}")
    return _Structure(order, preds, shapes, inputs[0], outputs[0], recurrent), problems


# --- composing linear paths ----------------------------------------------------------------------------------------

def _sources(ir: nir.NIRGraph, s: _Structure, name: str) -> list[str]:
    """The neuron or input nodes that reach ``name``'s input through linear nodes only."""
    found: list[str] = []
    stack = list(s.preds[name])
    while stack:
        p = stack.pop()
        if isinstance(ir.nodes[p], LINEAR):
            stack.extend(s.preds[p])
        elif p not in found:
            found.append(p)
    return sorted(found, key=s.order.index)


def _response(ir: nir.NIRGraph, s: _Structure, target: str, given: dict[str, torch.Tensor], batch: int,
              bias: bool, into: list[str] | None = None) -> torch.Tensor:
    """The input of ``target`` when the source nodes output ``given`` (others 0): the linear nodes between.
    ``into``: the nodes whose outputs make that input (default: its predecessors; a recurrent loop's last nodes)."""
    memo: dict[str, torch.Tensor] = {}

    def value(name: str) -> torch.Tensor:
        if name in given:
            return given[name]
        node = ir.nodes[name]
        if not isinstance(node, LINEAR):
            return torch.zeros((batch, *s.shapes[name]), dtype=torch.float64)
        if name not in memo:
            memo[name] = _apply(node, sum(value(p) for p in s.preds[name]), bias)
        return memo[name]

    return sum(value(p) for p in (s.preds[target] if into is None else into))


def _dense(ir: nir.NIRGraph, s: _Structure, target: str, source: str, into: list[str] | None = None) -> np.ndarray:
    """The exact linear map from ``source``'s output to ``target``'s input: [out, in] over the NIR shapes."""
    n_in, n_out = math.prod(s.shapes[source]), math.prod(s.shapes[target])
    if n_in * max(n_in, n_out) > DENSE_LIMIT:  # the identity basis (n_in^2) and the map (n_in n_out)
        raise _Refused(f"composing the layers from {source} needs a {n_out} x {n_in} kernel (over "
                       f"{DENSE_LIMIT} entries)")
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *s.shapes[source])
    return _response(ir, s, target, {source: basis}, n_in, False, into).reshape(n_in, n_out).T.numpy()


def _constant(ir: nir.NIRGraph, s: _Structure, target: str) -> np.ndarray:
    """The constant part of ``target``'s input (biases of the linear nodes, its recurrent loop's included), NIR
    shape."""
    into = s.preds[target] + s.recurrent.get(target, [])
    return _response(ir, s, target, {}, 1, True, into)[0].numpy().reshape(s.shapes[target])


CHAINED = (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)
"""Linear nodes a path from one layer to the next may chain and still be one convolution."""


def _as_conv(node: nir.NIRNode, channels: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], int]:
    """(kernel [C_out, C_in / groups, kh, kw], stride, padding, groups) of a conv or pooling node over the (C, H, W)
    layout; a pool is the depthwise conv of ones (of 1/(kh kw) for an average)."""
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        kh, kw = nir_io.pair(node.kernel_size)
        weight = np.full((channels, 1, kh, kw), 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (kh * kw))
        return weight, nir_io.pair(node.stride), nir_io.pair(node.padding), channels
    weight = np.asarray(node.weight, dtype=np.float64)
    if isinstance(node, nir.Conv1d):
        return (weight[:, :, None, :], (1, int(np.atleast_1d(node.stride)[0])),
                (0, int(np.atleast_1d(node.padding)[0])), int(node.groups))
    return weight, nir_io.pair(node.stride), nir_io.pair(node.padding), int(node.groups)


def _ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    if groups == 1:
        return weight
    return ConvNode("", (), (1, 1, 1), weight=np.zeros((1, 1, 1, 1)), groups=groups).dense_kernel(weight)


def _chain(ir: nir.NIRGraph, s: _Structure, end: str) -> tuple[str, list[str]] | None:
    """(source, [conv or pool nodes from the source to ``end``]) when ``end`` is reached from one spiking layer or
    the input through such nodes only, each with one input; else None."""
    chain, current = [], end
    while isinstance(ir.nodes[current], CHAINED) and len(s.preds[current]) == 1:
        node = ir.nodes[current]
        if isinstance(node, (nir.Conv1d, nir.Conv2d)) and (
                isinstance(node.padding, str) or np.any(np.atleast_1d(node.dilation) != 1)):
            return None
        chain.insert(0, current)
        current = s.preds[current][0]
    if not chain or isinstance(ir.nodes[current], LINEAR):
        return None
    return current, chain


def _composed(ir: nir.NIRGraph, s: _Structure, target: str, source: str, chain: list[str]) -> _Path | None:
    """The chain as one convolution: conv ``(W1, s1, p1)`` then ``(W2, s2, p2)`` is the conv with kernel
    ``W2 (*) W1`` (W1 placed at every tap of W2, ``s1`` apart: a transposed convolution), stride ``s1 s2`` and
    padding ``p1 + p2 s1``. Exact unless the second's zero padding stands where the composed kernel reads inside
    the input: checked on random inputs against the nodes themselves (``None`` if it differs)."""
    channels = layout(s.shapes[source])[0]
    weight, stride, padding, groups = _as_conv(ir.nodes[chain[0]], channels)
    for name in chain[1:]:
        w2, s2, p2, g2 = _as_conv(ir.nodes[name], weight.shape[0])
        inner = torch.from_numpy(_ungrouped(weight, groups))
        outer = torch.from_numpy(_ungrouped(w2, g2))
        weight = F.conv_transpose2d(outer, inner, stride=stride).numpy()
        padding = (padding[0] + p2[0] * stride[0], padding[1] + p2[1] * stride[1])
        stride, groups = (stride[0] * s2[0], stride[1] * s2[1]), 1
    x = torch.rand((2, *layout(s.shapes[source])), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = _response(ir, s, target, {source: x.reshape(2, *s.shapes[source])}, 2, bias=False)
    try:
        got = F.conv2d(x, torch.from_numpy(weight), stride=stride, padding=padding, groups=groups)
    except RuntimeError:
        return None
    if got.numel() != want.numel() or not torch.allclose(got.reshape(want.shape), want, rtol=1e-9,
                                                          atol=1e-12 * float(want.abs().max() + 1)):
        return None
    consumers = sum(chain[-1] in preds for preds in s.preds.values())
    return _Path(source, chain[-1] if consumers == 1 else f"{target}.from.{source}", weight, stride, padding, groups)


def _conv_paths(ir: nir.NIRGraph, s: _Structure, target: str) -> list[_Path] | None:
    """One convolution per source layer when every input of ``target`` is a chain of convs and pools from its own
    source (several sum, as in a residual block; a pool before or after a conv composes into a strided conv);
    None when some path is not such a chain (it is then a full-map kernel)."""
    chains = [_chain(ir, s, p) for p in s.preds[target]]
    if any(c is None for c in chains) or len({c[0] for c in chains}) != len(chains):
        return None
    paths = [_composed(ir, s, target, source, chain) for source, chain in chains]
    return None if any(p is None for p in paths) else paths


# --- building the deployed graph -----------------------------------------------------------------------------------

@dataclass
class _Path:
    source: str
    name: str
    weight: np.ndarray
    """Float kernel [C_out, C_in, kh, kw] over the source's layout, rows scaled by the neuron's gain."""
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1


def _per_channel(values: np.ndarray) -> np.ndarray | None:
    """[C, ...] -> [C] where every channel holds one value, else None."""
    flat = values.reshape(values.shape[0], -1)
    return flat[:, 0] if np.allclose(flat, flat[:, :1], rtol=1e-12, atol=0) else None


def to_graph(ir: nir.NIRGraph, *, calibration: torch.Tensor | None = None, dt: float | None = None,
             steps: int | None = None, reset: str = "zero") -> tuple[Graph, dict]:
    """The deployed graph of a NIR graph, and the quantization record (JSON-serialisable).

    Files written by snn-deploy come back exactly from their metadata; any other NIR graph is imported with the
    mapping in the module docstring at step ``dt`` (default: the file's ``dt`` metadata, else
    :data:`DEFAULT_DT`) for ``steps`` time steps, its input scale set by ``calibration`` (inputs in [0, 1] without).
    ``reset``: what the network does to v after a spike, one of :data:`RESETS` (the file does not say; module
    docstring): ``subtract`` is refused for every neuron node with a state.
    """
    if reset not in RESETS:
        raise UserError(f"reset {reset!r} is not one of {', '.join(RESETS)}")
    if written_by_snn_deploy(ir):
        if reset != "zero":
            raise UserError("this NIR file was written by snn-deploy: its neurons reset to zero (Loihi's); drop "
                            "--reset subtract")
        if dt is not None or steps is not None:
            raise UserError("this NIR file was written by snn-deploy: it carries its own integers, T and dt; "
                            "drop --dt and --time-steps")
        return _own(ir), {"frontend": OWN_FRONTEND}
    meta = ir.metadata if isinstance(ir.metadata, dict) else {}
    dt = _number(dt if dt is not None else meta.get("dt", DEFAULT_DT), "dt", "--dt")
    if not 0 < dt < float("inf"):
        raise UserError(f"the import step dt must be a positive number (got dt={dt:g}); pass --dt")
    steps = import_steps(ir, steps)
    s, problems = _structure(ir, dt)
    if reset == "subtract":  # a Threshold node has no state to reset
        stateful = [n for n in s.order
                    if isinstance(ir.nodes[n], NEURONS) and not isinstance(ir.nodes[n], nir.Threshold)]
        problems += [Problem(n, "reset by subtraction (--reset subtract), which Loihi's LIF cannot do (it sets v to 0 "
                             "after a spike)", "retrain with reset to zero, then export with --reset zero")
                     for n in stateful]
    refused = {p.node for p in problems}
    input_scale, signed = calibrate_input(calibration)
    report = QuantReport(input_scale=input_scale, input_signed=signed)
    notes: dict[str, list[str]] = {}
    graph_shape: dict[str, Shape] = {}
    nodes: list[Node] = []
    try:
        graph_shape[s.input] = layout(s.shapes[s.input])
    except _Refused as exc:
        raise UserError(f"NIR Input {s.input!r}: {exc}") from None
    if calibration is not None and not problems:
        input_scale = _balanced_input_scale(ir, s, graph_shape, dt, input_scale, signed, steps, calibration)
        report.input_scale = input_scale
    nodes.append(InputNode(s.input, (), graph_shape[s.input], scale=input_scale, payload_bits=INPUT_PAYLOAD_BITS,
                           signed=signed))
    try:
        readout = _readout_map(ir, s)
    except _Refused as exc:
        problems.append(Problem(s.output, str(exc), READOUT_FIX))
        readout = None
    for name in s.order:
        node = ir.nodes[name]
        if not isinstance(node, NEURONS) or name in refused or refused & set(_sources(ir, s, name)):
            continue  # refused, or reads a refused node (reported there)
        try:
            built = _neuron(ir, s, name, graph_shape, dt, input_scale, signed, steps, calibration)
        except _Refused as exc:
            problems.append(Problem(name, str(exc), NEURON_FIX))
            refused.add(name)
            continue
        convs, lif, record, dyn = built
        nodes += [*(c for c in convs if not c.recurrent), lif, *(c for c in convs if c.recurrent)]
        graph_shape[name] = lif.shape
        report.units.append(record)
        if dyn.notes:
            notes[name] = list(dyn.notes)
    if not problems and readout is None:
        problems.append(Problem(s.output, "the output must read exactly one spiking layer", READOUT_FIX))
    if problems:
        raise UserError(_refusal(problems))
    nodes.append(_readout(s, graph_shape, *readout))
    record = report.to_dict()
    record["nir_import"] = {"schema_version": IMPORT_SCHEMA, "dt": dt, "steps": steps, "approximations": notes,
                            "reset": reset}
    graph = Graph(nodes, T=steps)
    check_graph(graph, "the imported NIR graph")  # the limits every bundle has (work per sample, ranges)
    return graph, record


def import_steps(ir: nir.NIRGraph, steps: int | None) -> int:
    """The steps an imported standard NIR graph runs: ``steps`` (``--time-steps``), else the file's ``T`` metadata,
    else :data:`DEFAULT_STEPS`; an integer in 1..``MAX_T`` or a one-line :class:`UserError`."""
    meta = ir.metadata if isinstance(ir.metadata, dict) else {}
    value = _number(steps if steps is not None else meta.get("T", DEFAULT_STEPS), "steps", "--time-steps")
    if value != int(value) or not 1 <= value <= MAX_T:
        raise UserError(f"the import needs the steps as an integer in 1..{MAX_T} (got {value:g}); pass --time-steps")
    return int(value)


def _own(ir: nir.NIRGraph) -> Graph:
    """A file written by snn-deploy: its exact graph, held to every check a bundle's network.nir passes."""
    graph = nir_io.from_nir(ir, "snn-deploy NIR file")
    check_graph(graph, "snn-deploy NIR file")
    return graph


def _number(value, what: str, option: str) -> float:
    """A scalar number (the file's dt or T metadata, or the option), else a one-line :class:`UserError`."""
    try:
        number = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"the NIR file's {what} {str(value)[:40]!r} is not a number; pass {option}") from None
    return number


def _neuron(ir: nir.NIRGraph, s: _Structure, name: str, graph_shape: dict[str, Shape], dt: float,
            input_scale: float, signed: bool, steps: int, calibration: torch.Tensor | None = None):
    """The ConvNodes (a recurrent one last) and LIFNode of neuron ``name`` (a neuron with a recurrent loop is laid
    out as a vector (n, 1, 1), its loop a dense recurrent kernel)."""
    shape = s.shapes[name]
    dyn = neuron_dynamics(ir.nodes[name], shape, dt)
    sources = _sources(ir, s, name)
    missing = [p for p in sources if p not in graph_shape]
    if missing:
        raise _Refused(f"reads {', '.join(missing)}, which is not a spiking layer or the input")
    analog = s.input in sources
    if analog and len(sources) > 1:
        raise _Refused("sums the analog input with spikes (the input layer must read the input alone)")
    nir_layout = layout(shape)
    bias = dyn.bias_gain * _constant(ir, s, name) + dyn.leak
    loop = s.recurrent.get(name)
    paths = _conv_paths(ir, s, name) if len(shape) >= 2 and not loop else None
    structural = paths is not None and all(graph_shape[p.source] == layout(s.shapes[p.source]) for p in paths)
    gain_c, bias_c = _per_channel(dyn.gain), _per_channel(bias)
    if structural and gain_c is not None and bias_c is not None:
        out_shape = nir_layout
        for path in paths:
            path.weight = path.weight * gain_c[:, None, None, None]
        bias_out = bias_c
    else:  # any composition: one exact full-map kernel per source, the neuron laid out as a vector
        n = int(np.prod(shape))
        out_shape = (n, 1, 1)
        gain, bias_out = dyn.gain.reshape(-1), bias.reshape(-1)
        paths = []
        for src in sources:
            matrix = _dense(ir, s, name, src) * gain[:, None]
            paths.append(_Path(src, f"{name}.from.{src}", matrix.reshape(n, *graph_shape[src])))
    if loop:  # per spike, where quantize_layer divides an analog layer's weights by the input scale
        matrix = _dense(ir, s, name, name, loop) * dyn.gain.reshape(-1)[:, None]
        paths.append(_Path(name, f"{name}.recurrent", matrix.reshape(n, n, 1, 1) * (input_scale if analog else 1.0)))
    widths = [p.weight[0].size for p in paths]
    stacked = torch.from_numpy(np.concatenate([p.weight.reshape(len(p.weight), -1) for p in paths], axis=1))
    peak = _input_peak(ir, s, name, dyn.gain, calibration) if analog else None
    record, wq = quantize_layer(name, stacked, torch.from_numpy(np.asarray(bias_out, dtype=np.float64)), 1.0,
                                input_scale=input_scale if analog else None, input_signed=signed, neuron=name,
                                input_peak=peak)
    _refuse_dead(ir.nodes[name], name, dt, steps, stacked, wq, np.asarray(bias_out, dtype=np.float64), record)
    convs = []
    for path, part in zip(paths, torch.split(wq, widths, dim=1)):
        kernel = part.reshape(path.weight.shape).to(torch.int64).numpy()
        feedback = path.source == name
        convs.append(ConvNode(path.name, (path.source,), out_shape, weight=kernel, stride=path.stride,
                              padding=path.padding, groups=path.groups, weight_exp=record.weight_exp,
                              graded=analog and not feedback, recurrent=feedback))
    lif = LIFNode(name, tuple(c.name for c in convs if not c.recurrent), out_shape, du=dyn.du, dv=dyn.dv,
                  vth=record.vth, bias_mant=np.asarray(record.bias_mant, dtype=np.int64),
                  bias_exp=np.asarray(record.bias_exp, dtype=np.int64))
    return convs, lif, record, dyn


CALIBRATION_PEAK_SAMPLES = 256
"""Calibration samples whose input-layer currents set that layer's register bound (more add nothing but time)."""


def _input_peak(ir: nir.NIRGraph, s: _Structure, name: str, gain: np.ndarray,
                calibration: torch.Tensor | None) -> float | None:
    """The largest |float synaptic input| of the input layer ``name`` on calibration data (None without it)."""
    if calibration is None:
        return None
    shape = s.shapes[s.input]
    x = calibration.reshape(-1, *shape)[:CALIBRATION_PEAK_SAMPLES].to(torch.float64)
    currents = _response(ir, s, name, {s.input: x}, len(x), bias=False) * torch.from_numpy(gain)
    return float(currents.abs().max()) or None


def _balanced_input_scale(ir: nir.NIRGraph, s: _Structure, graph_shape: dict[str, Shape], dt: float, scale: float,
                          signed: bool, steps: int, calibration: torch.Tensor) -> float:
    """:func:`~snn_deploy.quant.balanced_input_scale` over the layers that read the input (``scale`` unchanged when
    one of them is refused: that is reported when it is built)."""
    layers = [n for n in s.order if isinstance(ir.nodes[n], NEURONS) and s.input in _sources(ir, s, n)]

    def levels(candidate: float) -> int:
        return min(_neuron(ir, s, n, graph_shape, dt, candidate, signed, steps, calibration)[2].weight_levels
                   for n in layers)
    try:
        return balanced_input_scale(scale, calibration, levels)
    except (_Refused, UserError):
        return scale


DT_FIX = ("pass the step the file was written for with --dt (Sinabs and other IAF files: --dt 1; Norse: the "
          "square of Norse's dt; docs/nir_mapping.md)")


def _refuse_dead(node: nir.NIRNode, name: str, dt: float, steps: int, weight: torch.Tensor, wq: torch.Tensor,
                 bias: np.ndarray, record) -> None:
    """A layer that quantization silenced is an error, not a bundle: every non-zero float weight rounded to 0, or
    a bias (a synaptic bias or the leak towards ``v_leak``) that alone would reach the threshold within the run
    rounded to 0 everywhere. At the wrong ``dt`` the per-step gain ``dt r / tau`` is orders of magnitude off, which
    is how this happens to a valid file."""
    why = (f"at dt = {dt:g} s the {type(node).__name__} neuron's per-step input gain (dt r over v_threshold, and "
           "over tau for a leaky neuron) sets these values")
    if bool(weight.any()) and not bool(wq.any()):
        w_max, b_max = float(weight.abs().max()), float(np.abs(bias).max(initial=0))
        cause = (f"its bias (up to {b_max:.3g} per step) is {b_max / w_max:.3g}x its largest weight and caps the "
                 "threshold" if b_max > w_max else "even the largest 17-bit threshold leaves them below half a step of "
                 "the 8-bit weights")
        raise UserError(f"NIR layer {name!r}: quantization rounds all {wq.numel()} weights to 0 (largest |w| "
                        f"{w_max:.3g} of the threshold per unit input, vth {record.vth}: {cause}); {why}; {DT_FIX}")
    if np.abs(bias).max(initial=0) * steps >= 1 and not any(record.bias_mant):
        raise UserError(f"NIR layer {name!r}: quantization rounds its bias / leak to 0 (largest |bias| "
                        f"{np.abs(bias).max():.3g} of the threshold per step, enough to fire within {steps} steps); "
                        f"{why}; {DT_FIX}")


def _readout_map(ir: nir.NIRGraph, s: _Structure) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(source layer, [classes, n] map from its spikes, bias) of the ``Output``; None unless it reads one layer."""
    sources = _sources(ir, s, s.output)
    if len(sources) != 1 or sources[0] == s.input or not isinstance(ir.nodes[sources[0]], NEURONS):
        return None
    return sources[0], _dense(ir, s, s.output, sources[0]), _constant(ir, s, s.output).reshape(-1)


def _per_position(matrix: np.ndarray, shape: Shape) -> np.ndarray | None:
    """[classes, C] when ``matrix`` weighs every position of a channel of a (C, H, W) map alike, else None."""
    c, h, w = shape
    per = matrix.reshape(len(matrix), c, h * w)
    return per[:, :, 0] if np.allclose(per, per[:, :, :1], rtol=1e-12, atol=0) else None


def _readout(s: _Structure, graph_shape: dict[str, Shape], source: str, matrix: np.ndarray,
             bias: np.ndarray) -> ReadoutNode:
    """The host's classifier: the output's linear map from the last spiking layer, applied to its mean over steps
    and, for a (C, H, W) layer, over positions where the map weighs every position of a channel alike (else the
    readout reads every neuron, :attr:`ReadoutNode.per_neuron`)."""
    c, h, w = graph_shape[source]
    weight = _per_position(matrix, (c, h, w))
    weight = matrix if weight is None else weight * (h * w)
    return ReadoutNode(f"{s.output}.readout", (source,), (c, h, w), weight=weight, bias=bias)


def input_layout(ir: nir.NIRGraph) -> Shape:
    """The deployed (C, H, W) input shape of a NIR graph, for reading calibration data before importing."""
    if written_by_snn_deploy(ir):
        return _own(ir).input.shape
    s, _ = _structure(ir)
    try:
        return layout(s.shapes[s.input])
    except _Refused as exc:
        raise UserError(f"NIR Input {s.input!r}: {exc}") from None


__all__ = ["DEFAULT_DT", "DEFAULT_STEPS", "NeuronDynamics", "input_layout", "layout", "load",
           "neuron_dynamics", "to_graph", "written_by_snn_deploy"]
