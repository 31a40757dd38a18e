"""lava-dl netx HDF5 -> the deployed integer graph: a frontend, exact (netx files already hold Loihi integers).

What each layer becomes is what lava-dl's own loader (``lava.lib.dl.netx.hdf5.Network``, lava-dl 0.6) builds in
Lava, read from its source (docs/netx_import.md has the table):

* ``input`` with a neuron: netx's Input block, a LIF driven only through its ``bias_mant`` (bias_exp 6); the file's
  input ``weight`` and ``bias`` are not used by netx. Here: an :class:`InputNode` with ``drive="bias"`` (payload =
  the bias mantissa image, 13-bit signed) read by a LIF node named ``input``. Without a neuron: only its shape;
  the first synapse reads the network's input port: binary spikes, or graded payloads when the loader is given
  ``input_message_bits`` (files written by ``export --target netx`` record it). No input layer: a dense first
  layer sizes the input port from its weight (``weight.reshape(n_out, -1)``); a conv first layer has no input
  shape (lava-dl cannot infer one either) and is refused saying so.
* ``conv``: kernel as stored (torch's cross-correlation orientation; netx flips it into Lava's true convolution),
  stride / padding in (H, W) order, groups; no weight exponent (Lava's Conv has none); dilation must be 1.
* ``flatten`` + ``dense``: a ConvNode whose kernel covers the whole input map; netx flattens (W, H, C) through
  ``transpose([2, 1, 0])``, i.e. torch's (C, H, W) order. A dense first layer reads the network's input port
  flat (in that order) with no flatten layer. netx rescales dense weights (``optimize_weight_bits``)
  and Lava's Dense re-quantizes them (clip to 8 bits, truncate to the bit width): where that keeps every weight,
  Lava computes ``((W << s) @ x) >> s = W @ x`` and the node holds the file's integers (exponent 0); where it
  would change them (lava-dl would run another network than the file describes), the layer is refused.
* CUBA / LOIHI neurons: ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias`` (per
  channel), ``bias_exp = 6``. ``refDelay`` counts the spike step itself: 1 (what lava-dl's slayer always writes,
  and what Intel's silicon traces show: no dead step) is the plain LIF, r > 1 holds v for r - 1 steps (Lava's
  ``LIFRefractory``). lava-dl's loader ignores refDelay and wgtExp; wgtExp must be 0.
* Weights and biases are read as netx reads them (``astype(int)``).
* ``dense_rec`` (netx's ``RecurrentDense``): the dense layer plus ``weight_rec`` as a recurrent conv node (a Dense
  from the neurons back to themselves: their spikes of step t - 1 join step t's input), both scaled together by
  netx (:meth:`_Builder.dense_rec`); with delays it is refused.
* dense ``delay``: per-synapse delays (netx builds Lava's ``DelayDense``: a spike reaches its target 1 + delay
  steps later), expanded as netx does (one value, per output, per input, or the matrix): ``ConvNode.delay``.
* SDNN neurons: a :class:`SigmaDeltaNode` (spike_exp = state_exp = 6, ``vth = vThMant``, per-channel bias,
  ``messageBits`` default 16): Lava's Delta for an input layer (computed on the host, as lava-dl's Loihi 2 runs
  skip it), Sigma where the neuron has ``sigma_output``, SigmaDelta (ReLU) otherwise; synapses reading one are
  graded.
* Resets as lava-dl's ``Network`` defaults run the file: none (it never reads ``tSample``), unless the caller
  asks (``reset_interval``) or the file was written by ``export --target netx``; without a reset every layer
  steps from Lava's first time step (:attr:`Graph.pipeline_fill`).

Everything else netx or its files can hold (resonate-and-fire neurons, complex dense,
pool / convT / average / concat layers, dilation, per-neuron conv biases, dense layers without a
neuron) is collected and refused in one :class:`UserError` naming every such layer and the reason. A file that is
not HDF5, holds no ``layer`` group, or whose layers contradict each other is refused in one line naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.exporters.formats.bundle_check import MAX_T, check_graph, check_hdf5_sizes
from snn_deploy.graph import (
    WEIGHT_DTYPE, ConvNode, Graph, InputNode, LIFNode, Node, SigmaDeltaNode, conv_output_hw,
)
from snn_deploy.fixedpoint import limits as L
from snn_deploy.fixedpoint.sigma_delta import bias_limit
from snn_deploy.fixedpoint.synapse import quantize_weights

NETX_BIAS_EXP = 6
"""netx builds every CUBA neuron with ``bias_exp = 6``."""
BIAS_INPUT_BITS = L.BIAS_MANT_BITS
"""A bias-driven input layer takes 13-bit signed mantissas (Lava's ``bias_mant``)."""
MAX_ELEMENTS = 1 << 24
"""Largest dataset (elements, read as 64-bit integers: 128 MiB) or layer (neurons) read: a damaged shape must not
allocate gigabytes. Counted with Python integers (an int64 product can wrap to 0)."""
MAX_FILE_BYTES = 512 * 2**20
"""Bytes of all datasets of a netx file as read (64-bit values), checked from HDF5 metadata before reading any."""
MAX_EXACT = 1 << 53
"""Largest magnitude a float dataset may hold: beyond it ``astype(int)`` is not exact (beyond 2^63 it is
undefined, and 1e30 became 0)."""
CUBA_TYPES = ("LOIHI", "CUBA")
SDNN_TYPE = "SDNN"
SDNN_EXP = 6
"""netx builds sigma-delta neurons with spike_exp = state_exp = 6 (``Network(spike_exp=6)``, ``state_exp`` fixed)."""
SDNN_MESSAGE_BITS = 16
"""netx's default payload width of a sigma-delta layer without ``messageBits``."""
SDNN_INPUT_BITS = 20
"""The input of an SDNN input layer (Lava's Delta) is shifted left by spike_exp + state_exp = 12 inside int32:
|x| < 2^19, a 20-bit signed payload."""
NEURON_KEYS = ("iDecay", "vDecay", "vThMant")
INPUT_BITS_ATTR, STEPS_ATTR = "input_message_bits", "T"
"""File attributes ``export --target netx`` writes (see exporters/netx_export.py); other files have none."""


class _Damaged(Exception):
    """The file contradicts itself; becomes one UserError line."""


class _Refused(Exception):
    """A well-formed file the graph cannot carry, for a reason that stops reading further layers."""


@dataclass(frozen=True)
class _Layer:
    index: int
    group: h5py.Group

    @property
    def label(self) -> str:
        return f"layer/{self.index} ({self.type})"

    @property
    def type(self) -> str:
        return _text(self.group, "type")


def _text(group: h5py.Group, key: str) -> str:
    """A string dataset as netx decodes it (fixed-length bytes, scalar or one element)."""
    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise _Damaged(f"{group.name} has no {key!r}")
    data = group[key]
    if data.size != 1:
        raise _Damaged(f"{group.name}/{key} holds {data.size} values, not one string")
    value = data[()]
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _array(group: h5py.Group, key: str, *, shape: tuple[int, ...] | None = None, size: int | None = None
           ) -> np.ndarray:
    """An integer array, read as netx reads it (``astype(int)``) after its size was checked."""
    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise _Damaged(f"{group.name} has no {key!r}")
    data = group[key]
    count = math.prod(int(n) for n in data.shape or ())
    if count > MAX_ELEMENTS:
        raise _Damaged(f"{group.name}/{key} holds {count} values (more than {MAX_ELEMENTS})")
    if shape is not None and tuple(data.shape) != shape:
        raise _Damaged(f"{group.name}/{key} is shaped {tuple(data.shape)}, expected {shape}")
    if size is not None and count != size:
        raise _Damaged(f"{group.name}/{key} holds {count} values, expected {size}")
    if data.dtype.kind not in "iufb":
        raise _Damaged(f"{group.name}/{key} is not numeric ({data.dtype})")
    value = np.asarray(data[()])
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise _Damaged(f"{group.name}/{key} holds NaN or infinite values")
    if value.size and value.dtype.kind in "fu" and np.abs(value).max() > MAX_EXACT:
        raise _Damaged(f"{group.name}/{key} holds values beyond +-2^53 (not integers netx can hold)")
    return value.astype(np.int64)


def _attribute(f: h5py.File, key: str) -> int:
    """An integer file attribute; anything else (inf, 1.5, text, an array) is :class:`_Damaged`."""
    value = np.asarray(f.attrs[key])
    if value.size != 1 or value.dtype.kind not in "iuf":
        raise _Damaged(f"attribute {key!r} is not one number")
    number = value.reshape(-1)[0]
    if not np.isfinite(number) or number != np.round(number) or abs(number) > MAX_EXACT:
        raise _Damaged(f"attribute {key!r} = {number} is not an integer")
    return int(number)


def _scalar(group: h5py.Group, key: str) -> int:
    return int(_array(group, key, size=1).reshape(-1)[0])


def _pair(group: h5py.Group, key: str, default: int) -> tuple[int, int]:
    """A scalar or (H, W) pair (netx's ``expand``)."""
    if key not in group:
        return default, default
    value = _array(group, key).reshape(-1)
    if value.size == 1:
        return int(value[0]), int(value[0])
    if value.size != 2:
        raise _Damaged(f"{group.name}/{key} holds {value.size} values, expected 1 or 2")
    return int(value[0]), int(value[1])


def _chw(group: h5py.Group) -> tuple[int, int, int]:
    """The layer's ``shape`` (netx stores (C, H, W), it reverses it to (W, H, C)), padded to three axes."""
    shape = _array(group, "shape").reshape(-1)
    if not 1 <= shape.size <= 3 or shape.min() < 1:
        raise _Damaged(f"{group.name}/shape {shape.tolist()} is not 1 to 3 positive sizes")
    chw = tuple(int(s) for s in shape) + (1,) * (3 - shape.size)
    if math.prod(chw) > MAX_ELEMENTS:
        raise _Damaged(f"{group.name}/shape {list(chw)} has more than {MAX_ELEMENTS} neurons")
    return chw  # type: ignore[return-value]


@dataclass(frozen=True)
class _Neuron:
    du: int
    dv: int
    vth: int
    refractory: int


@dataclass(frozen=True)
class _SigmaDelta:
    """netx's SDNN neuron: Delta (an input layer), Sigma (``sigma_output``) or SigmaDelta, spike_exp and
    state_exp 6 (netx's defaults)."""

    vth: int
    mode: str
    message_bits: int


def _sigma_delta(layer: _Layer, neuron: h5py.Group, problems: list[str], *, first: bool) -> _SigmaDelta | None:
    """An SDNN neuron as lava-dl's ``get_neuron_params`` builds it (see the module docstring)."""
    reasons = []
    if "activation" in neuron:
        activation = _text(neuron, "activation").lower()
        if activation != "relu":
            reasons.append(f"SDNN activation {activation!r} (lava-dl's netx builds ReLU sigma-delta neurons only)")
    vth = _scalar(neuron, "vThMant")
    bits = _scalar(neuron, "messageBits") if "messageBits" in neuron else SDNN_MESSAGE_BITS
    if vth < 0:
        reasons.append(f"vThMant {vth} < 0")
    if not 1 <= bits <= 24:
        reasons.append(f"SDNN messageBits {bits} outside 1..24 (graded payloads)")
    problems += reasons
    mode = "delta" if first else "sigma" if "sigma_output" in neuron else "sigma_delta"
    return None if reasons else _SigmaDelta(vth, mode, bits)


def _neuron(layer: _Layer, problems: list[str], *, first: bool = False) -> _Neuron | _SigmaDelta | None:
    """The CUBA parameters of a layer's neuron, or None (with the reasons added to ``problems``)."""
    group = layer.group
    if "neuron" not in group:
        problems.append("no neuron (netx's default integrator has vDecay 4096 and vThMant 2^17, beyond Loihi's "
                        "12-bit and 17-bit fields)")
        return None
    neuron = group["neuron"]
    kind = _text(neuron, "type")
    if kind == SDNN_TYPE:
        return _sigma_delta(layer, neuron, problems, first=first)
    if kind not in CUBA_TYPES:
        problems.append(f"{kind} neurons (only CUBA / LOIHI LIF and SDNN sigma-delta)")
        return None
    values = {key: _scalar(neuron, key) for key in NEURON_KEYS}
    ref_delay = _scalar(neuron, "refDelay") if "refDelay" in neuron else 1
    wgt_exp = _scalar(neuron, "wgtExp") if "wgtExp" in neuron else 0
    du, dv, vth = values["iDecay"] - 1, values["vDecay"], values["vThMant"]
    reasons = []
    for name, value, (lo, hi) in (("iDecay - 1", du, L.DU_RANGE), ("vDecay", dv, L.DV_RANGE),
                                  ("vThMant", vth, L.VTH_RANGE)):
        if not lo <= value <= hi:
            reasons.append(f"{name} = {value} outside [{lo}, {hi}]")
    if ref_delay < 1:
        reasons.append(f"refDelay {ref_delay} < 1")
    if wgt_exp != 0:
        reasons.append(f"wgtExp {wgt_exp} != 0 (lava-dl's netx loader ignores it, so its meaning is not defined)")
    if "messageBits" in neuron and _scalar(neuron, "messageBits") != 0:
        reasons.append("graded-spike neurons (messageBits > 0)")
    problems += reasons
    return None if reasons else _Neuron(du, dv, vth, ref_delay - 1)


def _lif(name: str, source: str, shape: tuple[int, int, int], neuron: _Neuron | _SigmaDelta,
         bias: np.ndarray) -> LIFNode:
    if isinstance(neuron, _SigmaDelta):
        return SigmaDeltaNode(name, (source,), shape, vth=neuron.vth, bias_mant=bias, mode=neuron.mode,
                              message_bits=neuron.message_bits)
    return LIFNode(name, (source,), shape, du=neuron.du, dv=neuron.dv, vth=neuron.vth, bias_mant=bias,
                   bias_exp=np.full(bias.shape, NETX_BIAS_EXP, dtype=np.int64), refractory=neuron.refractory)


def _bias(group: h5py.Group, channels: int, neurons: int, problems: list[str], *, lif: bool = True) -> np.ndarray:
    """Per-channel bias mantissas (zeros without ``bias``); a per-neuron conv bias is not carried."""
    if "bias" not in group:
        return np.zeros(channels, dtype=np.int64)
    bias = _array(group, "bias").reshape(-1)
    if bias.size == 1 and channels != 1:
        bias = np.full(channels, bias[0], dtype=np.int64)
    if bias.size != channels:
        problems.append(f"bias of {bias.size} values (per-channel biases of {channels} only; {neurons} neurons)")
        return np.zeros(channels, dtype=np.int64)
    limit = bias_limit(2 * SDNN_EXP)
    lo, hi = L.BIAS_MANT_RANGE if lif else (-limit, limit)
    if bias.size and (bias.min() < lo or bias.max() > hi):
        problems.append(f"bias outside [{lo}, {hi}] ({'the 13-bit mantissa' if lif else 'int32 once scaled'})")
    return bias


def _dense_delays(group: h5py.Group, n_out: int, n_in: int, problems: list[str]) -> np.ndarray | None:
    """A dense layer's ``delay`` as netx expands it to (n_out, n_in): one value for all, one per output neuron,
    one per input, or the full matrix (``astype(int)``); beyond 62 (which netx clamps) or negative is refused."""
    delay = _array(group, "delay")
    if delay.size == 1:
        delay = np.full((n_out, n_in), delay.reshape(-1)[0])
    elif delay.ndim == 1 and delay.size == n_out:  # netx checks per-output first
        delay = np.repeat(delay.reshape(-1, 1), n_in, axis=1)
    elif delay.ndim == 1 and delay.size == n_in:
        delay = np.repeat(delay.reshape(1, -1), n_out, axis=0)
    elif delay.shape != (n_out, n_in):
        raise _Damaged(f"{group.name}/delay shaped {delay.shape} fits neither {n_out} outputs nor {n_in} inputs")
    if delay.min() < 0 or delay.max() > L.MAX_SYNAPTIC_DELAY:
        problems.append(f"delays outside 0..{L.MAX_SYNAPTIC_DELAY} (netx clamps them)")
        return None
    return delay


def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """lava-dl's ``netx.utils.optimize_weight_bits`` (what netx does to dense weights): the weights shifted left by
    the scale bits, their bit width and the exponent. Re-stated here so that import needs no lava-dl; a test checks
    it against lava-dl's own function."""
    weight = weight.astype(np.int64)
    hi, lo = int(weight.max()), int(weight.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        weight = np.clip(weight, -256, 254)
        hi, lo = int(weight.max()), int(weight.min())
    if hi < 0:
        signed, scale = 0, -256 / lo
    elif lo >= 0:
        signed, scale = 0, 255 / hi
    else:
        signed, scale = 1, min(127 / hi if hi else np.inf, -128 / lo)  # numpy divides 127 / 0 into inf
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(weight % (1 << n)):
        n -= 1
    n -= signed
    return weight << scale_bits if scale_bits >= 0 else weight >> -scale_bits, 8 - scale_bits - n, -scale_bits


def netx_dense_weights(weight: np.ndarray) -> np.ndarray:
    """The dense weights as Lava's Dense uses them after netx's rescaling (``optimize_weight_bits``) and its own
    clip / truncation: when those keep every weight (``w << s`` with exponent ``-s``, so ``(W s) << s >> s = W s``)
    that is the file's integers with exponent 0; otherwise lava-dl would run other weights than the file holds, and
    the layer is refused (ValueError)."""
    scaled, bits, exponent = optimize_weight_bits(weight)
    if exponent > 0:
        raise ValueError("weights beyond 8 bits (netx would shift them by a negative count, zeroing them)")
    try:
        kept = np.asarray(quantize_weights(scaled, bits))
    except ValueError:
        kept = None
    unchanged = kept is not None and np.array_equal(kept, scaled)
    if not unchanged or not np.array_equal(scaled, weight.astype(np.int64) << -exponent):
        raise ValueError("weights that netx's rescaling and Lava's 8-bit truncation would change")
    return weight.astype(np.int64)


class _Builder:
    """Walks the layers in netx's order and collects nodes, unsupported layers and the previous layer's shape."""

    def __init__(self, input_message_bits: int) -> None:
        self.nodes: list[Node] = []
        self.unsupported: list[str] = []
        self.input_message_bits = input_message_bits
        self.prev: str | None = None
        self.prev_shape: tuple[int, int, int] | None = None
        self.flatten_next = False
        self.counts = {"conv": 0, "fc": 0}
        self.host: set[str] = set()
        """An SDNN input layer (Delta): lava-dl's Loihi 2 runs compute it on the host (``skip_layers=1``)."""

    def refuse(self, layer: _Layer, reasons: list[str]) -> None:
        self.unsupported.append(f"{layer.label}: {', '.join(reasons)}")

    def source(self, layer: _Layer, flat_inputs: int | None = None) -> tuple[str, tuple[int, int, int]]:
        """The previous layer and its shape. A dense layer that comes first reads the network's input port flat,
        ``flat_inputs`` wide (lava-dl sizes it from the weight: ``weight.reshape(n_out, -1)``); a conv that comes
        first has no input shape (lava-dl raises 'Input shape could not be inferred')."""
        if self.prev is None or self.prev_shape is None:
            if flat_inputs is None:
                raise _Refused(f"{layer.label}: a first conv layer without an input layer before it (lava-dl's "
                               "netx cannot infer its input shape either; add an input layer with a shape)")
            self.input_port((flat_inputs, 1, 1))
        return self.prev, self.prev_shape  # type: ignore[return-value]

    def input_port(self, shape: tuple[int, int, int]) -> None:
        """The network's input port (no neuron): binary spikes, or graded with ``input_message_bits``."""
        bits = self.input_message_bits
        node = InputNode("input", (), shape, scale=1.0, payload_bits=bits if bits else 1)
        self.nodes.append(node)
        self.prev, self.prev_shape = node.name, shape

    def input(self, layer: _Layer) -> None:
        if self.nodes:
            raise _Damaged(f"{layer.label} is a second input layer")
        shape = _chw(layer.group)
        if "neuron" not in layer.group:
            self.input_port(shape)
            return
        problems: list[str] = []
        neuron = _neuron(layer, problems, first=True)
        if problems or neuron is None:
            self.refuse(layer, problems)
        if isinstance(neuron, _SigmaDelta):  # netx's Input block: a Delta encoder fed by the input port
            image = InputNode("image", (), shape, scale=1.0, payload_bits=SDNN_INPUT_BITS, signed=True)
            self.nodes += [image, _lif("input", image.name, shape, neuron, np.zeros(shape[0], dtype=np.int64))]
            self.host.add("input")
            self.prev, self.prev_shape = "input", shape
            return
        drive = InputNode("image", (), shape, scale=1.0, payload_bits=BIAS_INPUT_BITS, signed=True, drive="bias")
        self.nodes.append(drive)
        if neuron is not None:
            self.nodes.append(_lif("input", drive.name, shape, neuron, np.zeros(shape[0], dtype=np.int64)))
        self.prev, self.prev_shape = "input", shape

    def _synapse_lif(self, layer: _Layer, prefix: str, synapse: ConvNode | None, shape: tuple[int, int, int],
                     problems: list[str]) -> None:
        neuron = _neuron(layer, problems)
        bias = _bias(layer.group, shape[0], int(np.prod(shape)), problems,
                     lif=not isinstance(neuron, _SigmaDelta))
        name = f"{prefix}-{self.counts[prefix]}"
        self.counts[prefix] += 1
        if problems or synapse is None or neuron is None:
            self.refuse(layer, problems)
        else:
            self.nodes += [synapse, _lif(name, synapse.name, shape, neuron, bias)]
        self.prev, self.prev_shape = name, shape

    def conv(self, layer: _Layer) -> None:
        group, problems = layer.group, []
        source, in_shape = self.source(layer)
        if self.flatten_next:
            problems.append("conv after flatten")
        shape = _chw(group)
        groups = _scalar(group, "groups") if "groups" in group else 1
        if groups < 1 or in_shape[0] % groups or shape[0] % groups:
            raise _Damaged(f"{layer.label}: groups {groups} does not divide {in_shape[0]} input and {shape[0]} "
                           "output channels")
        data = group["weight"] if "weight" in group and isinstance(group["weight"], h5py.Dataset) else None
        if data is None or data.ndim not in (4, 5) or tuple(data.shape[:2]) != (shape[0], in_shape[0] // groups):
            raise _Damaged(f"{layer.label}: weight {None if data is None else tuple(data.shape)} does not fit "
                           f"{shape[0]} output and {in_shape[0] // groups} input channels per group")
        if data.ndim == 5 and data.shape[4] != 1:
            self.refuse(layer, ["3-D kernels"])
            self.prev, self.prev_shape = f"conv-{self.counts['conv']}", shape
            self.counts["conv"] += 1
            return
        kernel = tuple(int(k) for k in data.shape[2:4])
        weight = _array(group, "weight", shape=tuple(data.shape)).reshape(*data.shape[:4])
        stride, padding = _pair(group, "stride", 1), _pair(group, "padding", 0)
        dilation = _pair(group, "dilation", 1)
        if dilation != (1, 1):
            problems.append(f"dilation {list(dilation)}")
        if min(stride) < 1 or min(padding) < 0:
            raise _Damaged(f"{layer.label}: stride {list(stride)} / padding {list(padding)} invalid")
        out_hw = conv_output_hw(in_shape[1:], kernel, stride, padding, dilation)
        if out_hw != shape[1:]:
            raise _Damaged(f"{layer.label}: shape {list(shape)} does not follow from input {list(in_shape)}, kernel "
                           f"{list(kernel)}, stride {list(stride)}, padding {list(padding)} (expected {out_hw})")
        if "delay" in group:
            problems.append("conv delays (lava-dl's netx ignores them)")
        limit = np.iinfo(WEIGHT_DTYPE).max
        if weight.size and np.abs(weight).max() > limit:
            problems.append(f"weights beyond 16 bits (|w| > {limit})")
        name = f"conv-{self.counts['conv']}"
        synapse = None if problems else ConvNode(f"{name}.synapse", (source,), shape, weight=weight, stride=stride,
                                                 padding=padding, groups=groups, graded=self._graded(source))
        self._synapse_lif(layer, "conv", synapse, shape, problems)

    def _graded(self, source: str) -> bool:
        """Whether ``source`` sends graded payloads: a sigma-delta layer, or the input port with message bits."""
        if any(isinstance(n, SigmaDeltaNode) and n.name == source for n in self.nodes):
            return True
        return source == "input" and bool(self.nodes) and isinstance(self.nodes[0], InputNode) \
            and self.nodes[0].drive == "current" and self.input_message_bits > 0

    def dense(self, layer: _Layer, kind: str = "dense") -> None:
        group, problems = layer.group, []
        n_out = math.prod(_chw(group))
        weight = group.get("weight")
        flat = (weight.size // n_out if isinstance(weight, h5py.Dataset) and weight.size % n_out == 0 else None)
        source, in_shape = self.source(layer, flat)
        port = bool(self.nodes) and isinstance(self.nodes[-1], InputNode) and self.nodes[-1].drive == "current"
        if in_shape[1:] != (1, 1) and not self.flatten_next and not port:  # the input port comes flat
            raise _Damaged(f"{layer.label} reads a {list(in_shape)} map without a flatten layer before it")
        self.flatten_next = False
        n_in = math.prod(in_shape)
        if kind == "dense_comp":
            problems.append("complex dense")
        if "weight" in group and isinstance(group["weight"], h5py.Group):  # complex weights (weight/real, imag)
            data = None
        else:
            data = _array(group, "weight", size=n_out * n_in).reshape(n_out, n_in)
        delay = _dense_delays(group, n_out, n_in, problems) if "delay" in group else None
        name = f"fc-{self.counts['fc']}"
        synapse = None
        if data is not None and not problems:
            if not data.any():
                problems.append("all-zero weights (netx's weight scaling divides by the largest weight)")
            else:
                try:
                    weight = netx_dense_weights(data)
                except ValueError as exc:
                    problems.append(str(exc))
                else:
                    synapse = ConvNode(f"{name}.synapse", (source,), (n_out, 1, 1),
                                       weight=weight.reshape(n_out, *in_shape), graded=self._graded(source),
                                       delay=np.zeros(0) if delay is None else delay.reshape(n_out, *in_shape))
        self._synapse_lif(layer, "fc", synapse, (n_out, 1, 1), problems)

    def dense_rec(self, layer: _Layer) -> None:
        """netx's ``RecurrentDense``: the dense layer, and ``weight_rec`` [n, n] as a second Dense from the neurons
        back to themselves (one step of delay), both scaled by one ``optimize_weight_bits`` of the two matrices side
        by side: a recurrent conv node after the LIF, kept only where that scaling keeps every weight."""
        group, refused = layer.group, len(self.unsupported)
        self.dense(layer)
        if len(self.unsupported) > refused:
            return
        lif, feed = self.nodes[-1], self.nodes[-2]
        n, n_in = lif.neurons, feed.weight[0].size
        problems = ["recurrent dense with delays (netx gives the recurrent Dense the feed-forward delays)"] \
            if "delay" in group else []
        if isinstance(lif, SigmaDeltaNode):
            problems.append("recurrent dense with sigma-delta neurons (graded feedback is not modelled)")
        weight_rec = _array(group, "weight_rec", size=n * n).reshape(n, n)
        try:
            netx_dense_weights(np.hstack([_array(group, "weight", size=n * n_in).reshape(n, n_in), weight_rec]))
        except ValueError as exc:
            problems.append(f"{exc} (weight and weight_rec, which netx scales together)")
        if problems:
            del self.nodes[-2:]
            self.refuse(layer, problems)
            return
        self.nodes.append(ConvNode(f"{lif.name}.recurrent", (lif.name,), lif.shape,
                                   weight=weight_rec.reshape(n, n, 1, 1), recurrent=True))

    def add(self, layer: _Layer) -> None:
        kind = layer.type
        if kind == "input":
            self.input(layer)
        elif kind == "conv":
            self.conv(layer)
        elif kind == "flatten":
            self.flatten_next = True
        elif kind == "dense_rec":
            self.dense_rec(layer)
        elif kind in ("dense", "dense_comp"):
            self.dense(layer, kind)
        else:
            self.refuse(layer, [f"{kind} layers (lava-dl's netx loader runs input, conv, flatten and dense layers "
                                f"only; it raises NotImplementedError for {kind})"])
            if "shape" in layer.group:  # later layers read this shape; refusal above is the reason to report
                self.prev, self.prev_shape = f"layer/{layer.index}", _chw(layer.group)


def read_netx(path: Path | str, *, steps: int | None = None, input_message_bits: int | None = None,
              reset_interval: int | None = None, reset_offset: int = 0) -> Graph:
    """The deployed graph of the netx file at ``path`` (see the module docstring).

    ``steps``: the graph's T (default: the file's ``T`` attribute or ``simulation/tSample``, else 16).
    ``input_message_bits``: what netx's ``Network(input_message_bits=...)`` would be given for an input layer
    without a neuron (default: the file's attribute, else 0: binary spikes). ``reset_interval``: netx's reset
    interval, 0 for none (default: :func:`file_reset_interval`, lava-dl's default: none, except for a file
    written by ``export --target netx``, which records a per-sample reset); ``reset_offset``: see
    :attr:`Graph.reset_offset` (1 reproduces Intel's Loihi 2 traces past step 16).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such netx file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not an HDF5 file, so not a lava-dl netx network ({exc})") from None
    handle.close()
    check_hdf5_sizes(path, max_bytes=MAX_FILE_BYTES, what="netx file", fix="check the file (a crafted or damaged "
                     "network?)")
    try:
        with h5py.File(path, "r") as f:
            graph = _read(f, path, steps, input_message_bits, reset_interval)
    except _Damaged as exc:
        raise UserError(f"{path}: damaged or not a lava-dl netx network: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, OverflowError) as exc:  # h5py raises these for damaged data
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise UserError(f"{path}: damaged or not a lava-dl netx network ({detail})") from None
    try:
        graph = dataclasses.replace(graph, reset_offset=reset_offset)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    check_graph(graph, str(path))  # the limits and ranges every bundle is held to
    return graph


NETX_SUFFIXES = (".net", ".h5", ".hdf5")


def looks_like_netx(path: Path | str) -> bool:
    """Whether ``path`` should be read as netx: any HDF5 file (by content: its signature), or a file named like
    one (``.net``, ``.h5``, ``.hdf5``), so that a damaged one gets netx's error rather than a checkpoint's."""
    path = Path(path)
    if not path.is_file():
        return path.suffix.lower() in NETX_SUFFIXES
    try:
        return h5py.is_hdf5(path) or path.suffix.lower() in NETX_SUFFIXES
    except OSError:
        return path.suffix.lower() in NETX_SUFFIXES


def netx_bundle(graph: Graph, source: Path, out: Path, *, target, force: bool = False) -> Path:
    """Write the bundle of an imported netx ``graph`` (what ``export NETWORK.net --target loihi`` writes)."""
    from snn_deploy.exporters.formats.bundle import sha256, write_bundle
    from snn_deploy.graph import summarize, target_problems

    problems = target_problems(graph, target)
    if problems:
        raise UserError(f"{len(problems)} layer(s) cannot run on {target.name}: {summarize(problems)}")
    quantization = {"schema_version": 1, "source": "lava-dl netx", "requantized": False,
                    "note": "integers taken as lava-dl's netx loader builds them in Lava (docs/netx_import.md)"}
    extra = {"arch": None, "rewrites": {}, "source_model": {"path": source.name, "sha256": sha256(source),
                                                           "format": "lava-dl netx"}}
    return write_bundle(graph, out, target=target, quantization=quantization, extra=extra, force=force)


def _read(f: h5py.File, path: Path, steps: int | None, input_message_bits: int | None,
          reset_interval: int | None) -> Graph:
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise _Damaged("no 'layer' group")
    layers = f["layer"]
    count = len(layers)
    if count == 0 or sorted(layers.keys()) != sorted(str(i) for i in range(count)):
        raise _Damaged(f"layer groups {sorted(layers.keys())[:5]} are not numbered 0..{count - 1}")
    if steps is None:
        steps = _attribute(f, STEPS_ATTR) if STEPS_ATTR in f.attrs else (
            _scalar(f["simulation"], "tSample") if "simulation" in f and "tSample" in f["simulation"] else 16)
    if not 1 <= steps <= MAX_T:
        raise UserError(f"{path}: the number of steps (T / simulation/tSample) must lie in 1..{MAX_T}, got {steps}; "
                        "fix the file")
    if input_message_bits is None:
        input_message_bits = _attribute(f, INPUT_BITS_ATTR) if INPUT_BITS_ATTR in f.attrs else 0
    if not 0 <= input_message_bits <= 24:
        raise UserError(f"{path}: input message bits must lie in 0..24, got {input_message_bits}")
    builder = _Builder(input_message_bits)
    for i in range(count):
        layer = _Layer(i, layers[str(i)])
        if not isinstance(layer.group, h5py.Group):
            raise _Damaged(f"layer/{i} is not a group")
        try:
            builder.add(layer)
        except _Refused as exc:
            builder.unsupported.append(str(exc))
            break
        except _Damaged:
            if not builder.unsupported:
                raise
            break  # layers after a refused one may not fit the shapes read so far: the refusal is the reason
    if builder.unsupported:
        raise UserError(f"{path}: {len(builder.unsupported)} layer(s) cannot be carried by the deployed graph: "
                        f"{'; '.join(builder.unsupported)}")
    if not any(isinstance(n, LIFNode) for n in builder.nodes):
        raise _Damaged("no neuron layer")
    if reset_interval is None:
        reset_interval = file_reset_interval(f)
    if reset_interval < 0:
        raise UserError(f"{path}: the reset interval must be 0 (none) or positive, got {reset_interval}")
    lifs = [n for n in builder.nodes if isinstance(n, LIFNode)]
    if reset_interval and any(isinstance(n, SigmaDeltaNode) for n in lifs):
        raise UserError(f"{path}: a reset interval for a network with sigma-delta layers: lava-dl's netx ignores "
                        "resets of sigma-delta neurons (it warns 'Reset is not supported'); run it without "
                        "--reset-interval")
    return Graph(builder.nodes, T=steps, host=frozenset(builder.host), reset_interval=reset_interval,
                 pipeline_fill=not reset_interval)


def file_reset_interval(f: h5py.File) -> int:
    """The reset a netx file asks for, as lava-dl's defaults run it: none (``Network(reset_interval=None)``; lava-dl
    never reads ``simulation/tSample``), except in a file written by snn-deploy's ``export --target netx``, whose
    ``T`` attribute states that each sample of T steps starts from zero state (``netx_export.load_netx``)."""
    return _attribute(f, STEPS_ATTR) if STEPS_ATTR in f.attrs else 0
