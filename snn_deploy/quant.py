r"""Quantization to Loihi fixed point: fold BatchNorm, choose integer weights and thresholds, build the integer model.

For a unit ``layer -> BN -> LIF(theta, tau)`` the folded float layer is :math:`W' = W\gamma/\sigma`,
:math:`b' = (b - \mu)\gamma/\sigma + \beta`. The deployed neuron (du = 4095: no current memory; dv = 4096/tau)
tracks :math:`v = 2^6 v_{th} H/\theta` when it receives the integer current :math:`a = X v_{th}/(\tau\theta)`
(see :class:`snn_deploy.neurons.QuantizedLIF`), so with the current scale :math:`k = v_{th}/(\tau\theta)`:

* integer weights :math:`W_q = Q(W' k / 2^e)` (8 bit, even values for mixed sign, as Lava's Dense keeps them) with
  a non-negative weight exponent ``e``; ``vth`` is chosen so that the largest weight fills the 8-bit range,
  within ``[VTH_MIN_USEFUL, 2^17 - 1]`` (``e`` grows when ``vth`` would fall below the minimum), and lowered
  further where the largest bias would not fit its 13-bit mantissa and exponent 7 (:data:`BIAS_V_MAX`);
* the bias :math:`b' k` enters v every step as ``bias_mant << bias_exp`` (v units are 2^6 current units), with a
  13-bit mantissa and the smallest exponent that fits;
* the analog input layer sees integer payloads :math:`x_q = \mathrm{round}(x s_{in})` (an integer scale for
  integer data: events encode exactly), and :math:`1/s_{in}` is folded into its weights; its vth is lowered until
  its current fits the 16-bit synaptic input register (:data:`INPUT_REGISTER_MAX`) on calibration data with a 25 %
  margin, where calibration data is given, and until a full-scale input cannot overflow the 24-bit current register
  (:data:`INPUT_CURRENT_MAX`). ``weight_levels`` records how much of the 8-bit grid each layer uses.

Attention neurons keep their :class:`QuantizedLIF`: their float current is an integer count times a fixed scale
(``q (k^T v) * 0.125`` in SSA, a channel sum of q in Q-K attention), so their integer current is exact as soon as
``vth / (tau * theta) * scale`` is an integer; quantization checks that and picks the smallest such ``vth``
that is at least the trained one. Such currents hit a float neuron's threshold exactly (its ``h >= theta`` fires
there, Loihi's ``v > vth`` would not), so a float attention neuron deploys ``vth - 1`` on the same current scale.

The result is an ``integer``-mode model: layers hold integer weights in float64 (every sum exact), BatchNorms are
identities, unit neurons are :class:`IntegerLIF`. Its forward pass is the deployed network's arithmetic, which the
exporters lower and the other backends reproduce. All choices are recorded in a :class:`QuantReport`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L
from snn_deploy.models.units import QuantizedInput, UnitHost
from snn_deploy.neurons import DEFAULT_VTH, FloatLIF, IntegerLIF, QuantizedLIF

QUANT_SCHEMA = 1
WEIGHT_MAX_MIXED = (1 << L.WEIGHT_BITS) - 2
"""Largest weight magnitude Lava keeps for mixed-sign 8-bit weights (values are floored to even numbers)."""
VTH_MIN_USEFUL = 64
"""Below this, currents and biases would be resolved too coarsely; the weight exponent grows instead."""
INPUT_PAYLOAD_BITS = 8
"""Graded-spike payload of the analog input: unsigned 8 bit (signed 8 bit if calibration sees negatives)."""
INPUT_CURRENT_MAX = (L.UV_HALF >> L.ACT_SHIFT) - 1
"""Largest input-layer current whose ``a << 6`` fits the 24-bit current register without wrapping (2^17 - 1).
The input layer's worst case (every pixel at full scale on the largest weights) is realistic, so its threshold
is lowered until that case fits; deeper layers' worst cases (every input spiking) are not, and are reported
instead (bundle ``quantization.json``, ``current_risks``)."""
INPUT_REGISTER_MAX = (1 << (L.A_IN_HW_BITS - 1)) - 1
"""The synaptic input register the hardware profiles declare (16-bit a_in): with calibration data, the input layer's
largest current on it, times :data:`CALIBRATION_MARGIN`, must fit. The worst case cannot: 8-bit payloads on
weights above 128 exceed it with one input, so the worst case bounds only the 24-bit u (and without calibration
data the run-time check of ``simulate`` counts what exceeds the register)."""
CALIBRATION_MARGIN = 1.25
"""Headroom over the largest input-layer current seen on the calibration data (25 %): inputs somewhat brighter than
any calibration sample still fit the register; brighter ones are counted at run time (``simulate``)."""
BIAS_V_MAX = L.BIAS_MANT_RANGE[1] << L.BIAS_EXP_HW_RANGE[1]
"""Largest |bias| in v units Loihi holds (13-bit mantissa, exponent <= 7); ``vth`` is lowered until every
channel's bias fits, since a clipped bias moves the whole channel's firing."""


@dataclass
class UnitQuant:
    """What quantization chose for one unit, and what it lost."""

    layer: str
    vth: int
    weight_exp: int
    current_scale: float
    weight_max_abs: float
    weights_clipped: int
    weights_total: int
    bias_mant: list[int]
    bias_exp: list[int]
    bias_clipped: int
    input_scale: float | None = None
    neuron: str = ""
    """The unit's neuron module (empty in reports written before it was recorded)."""
    weight_levels: int = 0
    """Largest |integer weight|: the levels of the 8-bit grid the layer uses (of 254 for mixed signs, else 255)."""
    input_current_peak: int | None = None
    """Input layer: the largest |current| on the calibration data at the chosen vth (None: no calibration data, or
    not the input layer); it times :data:`CALIBRATION_MARGIN` fits :data:`INPUT_REGISTER_MAX`."""


@dataclass
class AttentionQuant:
    """The integer threshold and current multiplier of one attention neuron."""

    neuron: str
    vth: int
    current_multiplier: int
    current_vth: int | None = None
    """The threshold the multiplier comes from, where it differs from ``vth`` (a float neuron's ``>=``)."""


@dataclass
class QuantReport:
    """Every per-layer choice of :func:`quantize`, JSON-serialisable (``asdict``)."""

    schema_version: int = QUANT_SCHEMA
    input_scale: float = 1.0
    input_signed: bool = False
    units: list[UnitQuant] = field(default_factory=list)
    attention: list[AttentionQuant] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "QuantReport":
        return cls(schema_version=int(data["schema_version"]), input_scale=float(data["input_scale"]),
                   input_signed=bool(data["input_signed"]), units=[UnitQuant(**u) for u in data["units"]],
                   attention=[AttentionQuant(**a) for a in data["attention"]])


def _row_l1(weight: torch.Tensor) -> int:
    return int(weight.abs().flatten(1).sum(1).max())


def _payload_max(signed: bool) -> int:
    return L.payload_range(INPUT_PAYLOAD_BITS, signed)[1]


def fold_batchnorm(layer: nn.Module, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', b') of ``bn(layer(x))`` with BN's running statistics, W' shaped like ``layer.weight``."""
    w = layer.weight.detach().to(torch.float64)
    b = layer.bias.detach().to(torch.float64) if getattr(layer, "bias", None) is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    gamma = bn.weight.detach().to(torch.float64)
    beta = bn.bias.detach().to(torch.float64)
    inv_std = torch.rsqrt(bn.running_var.detach().to(torch.float64) + bn.eps)
    factor = gamma * inv_std
    w_folded = w * factor.reshape(-1, *([1] * (w.dim() - 1)))
    b_folded = (b - bn.running_mean.detach().to(torch.float64)) * factor + beta
    return w_folded, b_folded


def choose_vth_and_exponent(weight_max_abs: float, tau_theta: float) -> tuple[int, int]:
    """The (vth, weight_exp) that put the largest |W' k| / 2^e at the top of the 8-bit range."""
    if weight_max_abs <= 0:
        return VTH_MIN_USEFUL, 0
    exp = 0
    while True:
        vth = math.floor(WEIGHT_MAX_MIXED * (1 << exp) * tau_theta / weight_max_abs)
        if vth >= VTH_MIN_USEFUL or exp >= 16:
            return max(1, min(vth, L.VTH_RANGE[1])), exp
        exp += 1


def quantize_weight_tensor(w: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Round to integers Lava keeps unchanged (even values for mixed sign, 8-bit range); returns (Wq, clipped)."""
    mixed = bool((w > 0).any() and (w < 0).any())
    if mixed:
        q = 2 * torch.round(w / 2)
        lo, hi = -(1 << L.WEIGHT_BITS), WEIGHT_MAX_MIXED
    else:
        q = torch.round(w)
        lo, hi = (-(1 << L.WEIGHT_BITS) + 1, 0) if bool((w <= 0).all()) else (0, (1 << L.WEIGHT_BITS) - 1)
    clipped = int(((q < lo) | (q > hi)).sum())
    return q.clamp(lo, hi), clipped


def bias_to_mant_exp(bias_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel bias in v units -> (mantissa, exponent, clipped count), bias ~= mantissa << exponent with the
    smallest exponent in Loihi's 3-bit range whose 13-bit mantissa holds the value."""
    hi = L.BIAS_MANT_RANGE[1]
    magnitude = bias_v.abs()
    exps = torch.zeros(bias_v.shape, dtype=torch.int64)
    for e in range(1, L.BIAS_EXP_HW_RANGE[1] + 1):
        exps = torch.where(torch.round(magnitude / (1 << (e - 1))) > hi, torch.full_like(exps, e), exps)
    mant = torch.round(bias_v / (2.0 ** exps))
    clipped = int((mant.abs() > hi).sum())
    return mant.clamp(*L.BIAS_MANT_RANGE).to(torch.int64), exps, clipped


def _neuron_threshold(neuron: nn.Module) -> tuple[float, float]:
    if not isinstance(neuron, (FloatLIF, QuantizedLIF)):
        raise TypeError(f"expected a float or loihi neuron, got {type(neuron).__name__}")
    return neuron.threshold, neuron.tau


def quantize_layer(layer: str, w_folded: torch.Tensor, b_folded: torch.Tensor, tau_theta: float, *,
                   input_scale: float | None = None, input_signed: bool = False,
                   neuron: str = "", input_peak: float | None = None) -> tuple[UnitQuant, torch.Tensor]:
    """Quantize one synapse -> LIF layer given in float: weights ``w_folded`` (first axis: output channel) and
    per-channel bias ``b_folded`` in units of the neuron's input, ``tau_theta`` the float input that reaches the
    threshold in one step (tau * threshold). ``input_scale`` marks the analog input layer (payloads
    ``round(x * input_scale)``); ``input_peak``, the largest |float input current| of that layer on calibration
    data, lets its threshold (and so its weights) use the grid up to the 16-bit input register with a margin,
    instead of keeping the worst case (every input at full scale) within it. Returns the record and the integer
    weights. Every frontend (the zoo's units, NIR import) quantizes through here."""
    analog = input_scale is not None
    w_eff = w_folded / input_scale if analog else w_folded
    max_abs = float(w_eff.abs().max()) if w_eff.numel() else 0.0
    vth, exp = choose_vth_and_exponent(max_abs, tau_theta)
    bias_peak = float(b_folded.abs().max()) * (1 << L.ACT_SHIFT) / tau_theta  # |bias| in v units per unit vth
    if bias_peak * vth > BIAS_V_MAX:  # a clipped bias shifts every neuron of its channel: give up resolution
        vth = max(1, math.floor(BIAS_V_MAX / bias_peak))
    if analog and input_peak:  # the calibration data's largest current, with the margin, fits the 16-bit register
        vth = max(1, min(vth, math.floor(tau_theta * INPUT_REGISTER_MAX / (CALIBRATION_MARGIN * input_peak))))
    k = vth / tau_theta
    wq, clipped = quantize_weight_tensor(w_eff * k / (1 << exp))
    while analog and vth > 1:  # a bright image is a realistic worst case: keep u = a << 6 within 24 bits
        worst = _row_l1(wq) * _payload_max(input_signed) << exp
        if worst <= INPUT_CURRENT_MAX:
            break
        vth = max(1, min(vth - 1, math.floor(vth * INPUT_CURRENT_MAX / worst)))
        k = vth / tau_theta
        wq, clipped = quantize_weight_tensor(w_eff * k / (1 << exp))
    mant, bexp, bias_clipped = bias_to_mant_exp(b_folded * k * (1 << L.ACT_SHIFT))
    record = UnitQuant(layer=layer, vth=vth, weight_exp=exp, current_scale=k, weight_max_abs=max_abs,
                       weights_clipped=clipped, weights_total=wq.numel(), bias_mant=mant.tolist(),
                       bias_exp=bexp.tolist(), bias_clipped=bias_clipped, input_scale=input_scale, neuron=neuron,
                       weight_levels=int(wq.abs().max()) if wq.numel() else 0,
                       input_current_peak=round(input_peak * k) if analog and input_peak else None)
    return record, wq


def _input_peak(layer: nn.Module, weight: torch.Tensor, calibration: torch.Tensor | None) -> float | None:
    """The largest |W x| of an analog input conv on calibration images ([..., C, H, W]); None where unknown."""
    if calibration is None or not isinstance(layer, nn.Conv2d) or calibration.dim() < 4:
        return None
    x = calibration.reshape(-1, *calibration.shape[-3:]).to(torch.float64)
    if x.shape[1] != weight.shape[1] * layer.groups:
        return None
    out = torch.nn.functional.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    return float(out.abs().max()) or None


def _quantize_unit(host: UnitHost, prefix: str, spec, input_scale: float, input_signed: bool,
                   calibration: torch.Tensor | None = None) -> UnitQuant:
    layer = getattr(host, spec.layer)
    theta, tau = _neuron_threshold(getattr(host, spec.neuron))
    w_folded, b_folded = fold_batchnorm(layer, getattr(host, spec.bn))
    analog = spec.input == "analog"
    record, wq = quantize_layer(f"{prefix}.{spec.layer}" if prefix else spec.layer, w_folded, b_folded, tau * theta,
                                input_scale=input_scale if analog else None,
                                input_signed=input_signed,
                                neuron=f"{prefix}.{spec.neuron}" if prefix else spec.neuron,
                                input_peak=_input_peak(layer, w_folded, calibration) if analog else None)
    if bool(w_folded.any()) and not bool(wq.any()):  # a silent layer deploys, and nothing after it ever fires
        raise UserError(f"layer {record.layer}: quantization rounds all {wq.numel()} weights to 0 (largest |w| "
                        f"{float(w_folded.abs().max()):.3g}, threshold {theta:g}); check the layer's BatchNorm "
                        "statistics, or train the model further before exporting it")
    _install_unit(host, spec, record, tau, input_signed, weight=wq)
    return record


def _install_unit(host: UnitHost, spec, record: UnitQuant, tau: float, input_signed: bool,
                  weight: torch.Tensor | None = None) -> None:
    """Give a unit its integer-mode modules: integer weights (if given), no BN, an IntegerLIF, input quantizer."""
    layer = getattr(host, spec.layer)
    with torch.no_grad():
        if weight is not None:
            layer.weight = nn.Parameter(weight.to(torch.float64), requires_grad=False)
        if getattr(layer, "bias", None) is not None:
            layer.bias = nn.Parameter(torch.zeros_like(layer.bias, dtype=torch.float64), requires_grad=False)
    if record.input_scale is not None:
        setattr(host, spec.layer, QuantizedInput(layer, record.input_scale, input_signed, INPUT_PAYLOAD_BITS))
    setattr(host, spec.bn, nn.Identity())
    setattr(host, spec.neuron, IntegerLIF(du=L.DECAY_UNITY - 1, dv=round(L.DECAY_UNITY / tau), vth=record.vth,
                                          bias_mant=torch.tensor(record.bias_mant),
                                          bias_exp=torch.tensor(record.bias_exp),
                                          input_multiplier=1 << record.weight_exp))


def _quantize_attention(neuron: QuantizedLIF | FloatLIF, name: str, quantum: float) -> tuple[QuantizedLIF, AttentionQuant]:
    """The smallest vth >= the trained one (a float neuron: the loihi neuron's default, fine enough for the decay's
    truncation) whose current multiplier vth / (tau theta) * quantum is an integer. A float neuron deploys vth - 1
    (see :class:`QuantizedLIF`)."""
    start = neuron.core.params.vth if isinstance(neuron, QuantizedLIF) else DEFAULT_VTH
    for vth in range(max(start, 1), L.VTH_RANGE[1] + 1):
        multiplier = vth / (neuron.tau * neuron.threshold) * quantum
        if abs(multiplier - round(multiplier)) < 1e-12:
            break
    else:
        raise ValueError(f"{name}: no 17-bit threshold makes the attention current an integer (scale {quantum})")
    deployed = vth - 1 if isinstance(neuron, FloatLIF) else vth  # float h >= theta on integer counts: v > vth - 1
    quantized = QuantizedLIF(neuron.threshold, neuron.tau, vth=deployed, current_vth=vth)
    return quantized, AttentionQuant(neuron=name, vth=deployed, current_multiplier=round(multiplier),
                                     current_vth=vth if deployed != vth else None)


def calibrate_input(samples: torch.Tensor | None) -> tuple[float, bool]:
    """Input scale mapping the largest |x| seen to the top of the payload range (images in [0, 1] by default).
    Integer-valued data (event counts, binary spikes) gets an integer scale, so every count encodes exactly (a scale
    of 42.5 would send one event as 42)."""
    if samples is None:
        return float((1 << INPUT_PAYLOAD_BITS) - 1), False
    signed = bool((samples < 0).any())
    max_abs = float(samples.abs().max())
    top = _payload_max(signed)
    if max_abs <= 0:
        return float(top), signed
    scale = top / max_abs
    return (float(max(1, math.floor(scale))) if bool((samples == samples.round()).all()) else scale), signed


INPUT_SCALE_HALVINGS = 4
"""How far below the full 8-bit input encoding :func:`balanced_input_scale` looks (down to 4 bits)."""


def balanced_input_scale(scale: float, calibration: torch.Tensor, weight_levels: Callable[[float], int]) -> float:
    """The input scale (``scale`` halved 0 to :data:`INPUT_SCALE_HALVINGS` times; integer data keeps integer scales)
    that leaves the input layers the most levels on both grids, ``min(input levels, weight levels)``, where
    ``weight_levels(scale)`` is the input layers' fewest weight levels at that scale. Their current must fit the
    16-bit synaptic input register on the calibration data, so a finer input encoding costs weight levels (an
    8-bit encoding may leave a conv 32 of 254 weight levels, a 6-bit one over 100). For imported networks (NIR); a
    zoo model keeps the input encoding it was trained with (``QuantizedInput``), where a coarser one costs accuracy
    (the demo's QKFormer: 94.65 % at 7 bits against 95.77 % at 8 bits)."""
    integer = bool((calibration == calibration.round()).all())
    top = float(calibration.abs().max()) * scale
    best, chosen = -1, scale
    for k in range(INPUT_SCALE_HALVINGS + 1):
        candidate = float(max(1, math.floor(scale / 2 ** k))) if integer else scale / 2 ** k
        score = min(weight_levels(candidate), round(top * candidate / scale))
        if score > best:
            best, chosen = score, candidate
    return chosen


def quantize(model: nn.Module, calibration: torch.Tensor | None = None) -> QuantReport:
    """Turn ``model`` (float or loihi neuron mode) into its integer-mode deployment form, in place.

    ``calibration``: model inputs (e.g. a batch of training images) that set the analog input scale; without
    it inputs are taken to lie in [0, 1]. Call on a model in eval mode; BN running statistics are folded.
    """
    model.eval()
    input_scale, signed = calibrate_input(calibration)
    report = QuantReport(input_scale=input_scale, input_signed=signed)
    unit_neurons: set[int] = set()
    for prefix, host in list(model.named_modules()):
        if isinstance(host, UnitHost):
            for spec in host.unit_specs.values():
                unit_neurons.add(id(getattr(host, spec.neuron)))
                report.units.append(_quantize_unit(host, prefix, spec, input_scale, signed, calibration))
    for prefix, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, (FloatLIF, QuantizedLIF)) and id(child) not in unit_neurons:
                name = f"{prefix}.{child_name}" if prefix else child_name
                quantized, record = _quantize_attention(child, name, float(getattr(parent, "scale", 1.0)))
                setattr(parent, child_name, quantized)
                report.attention.append(record)
    model.to(torch.float64)
    return report


def restructure(model: nn.Module, report: QuantReport) -> None:
    """Give a freshly built (loihi-mode) model the module structure :func:`quantize` produced, so an integer-mode
    state dict loads into it. Values come from the report here and from the state dict afterwards."""
    records = {u.layer: u for u in report.units}
    attention = {a.neuron: a for a in report.attention}
    for prefix, host in list(model.named_modules()):
        if isinstance(host, UnitHost):
            for spec in host.unit_specs.values():
                name = f"{prefix}.{spec.layer}" if prefix else spec.layer
                if name not in records:
                    raise ValueError(f"quantization record has no entry for layer {name}")
                _, tau = _neuron_threshold(getattr(host, spec.neuron))
                _install_unit(host, spec, records[name], tau, report.input_signed)
    for prefix, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{prefix}.{child_name}" if prefix else child_name
            if name in attention:
                record = attention[name]
                setattr(parent, child_name, QuantizedLIF(child.threshold, child.tau, vth=record.vth,
                                                         current_vth=record.current_vth))
    model.to(torch.float64)
