r"""Spiking neuron modules: thin ``nn.Module`` wrappers over functional steps; inputs and outputs are [T, ...].

* :class:`FloatLIF` - the published neuron of Spikformer / QKFormer (spikingjelly ``MultiStepLIFNode``, tau=2,
  v_reset=0, decay_input, detach_reset, sigmoid surrogate alpha=4):
  :math:`H_t = V_{t-1} + (X_t - V_{t-1})/\tau`, :math:`S_t = [H_t \ge \theta]`, :math:`V_t = H_t (1 - S_t)`.
* :class:`LoihiLIF` - Loihi's integer neuron driven by integer currents. Forward is bit-identical to
  :func:`snn_deploy.fixedpoint.lif_run`; backward uses straight-through rounding and a surrogate spike gradient.
* :class:`IntegerLIF` - the deployed neuron of a quantized (``integer``) model: integer currents from integer
  synapses, times a power-of-two multiplier (the synapse's weight exponent), per-channel bias, integer LIF.
* :class:`QuantizedLIF` - the ``loihi`` neuron mode of the model zoo. It takes the float current a
  :class:`FloatLIF` takes and drives a :class:`LoihiLIF` with the integer current
  :math:`a = \mathrm{round}(X \cdot v_{th} / (\tau\theta))`. With du = 4095 (no current memory) and
  dv = 4096 / tau the integer voltage tracks :math:`v = 2^6 v_{th} H / \theta`, so it spikes where the float
  neuron does, up to rounding and the hardware's strict ``>``.

:func:`set_neuron_mode` swaps every neuron of a model between ``float`` and ``loihi`` in place.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from snn_deploy.fixedpoint import LIFParams, LIFState, lif_step
from snn_deploy.fixedpoint import limits as L
from snn_deploy.surrogate import spike

NEURON_MODES = ("float", "loihi")
DEFAULT_VTH = 256
"""Default integer threshold of a :class:`QuantizedLIF`: currents resolve to theta * tau / 256."""


class FloatLIF(nn.Module):
    """The published multi-step LIF neuron (spikingjelly semantics)."""

    def __init__(self, threshold: float = 1.0, tau: float = 2.0, alpha: float = 4.0) -> None:
        super().__init__()
        self.threshold, self.tau, self.alpha = float(threshold), float(tau), float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for x_t in x:
            h = v + (x_t - v) / self.tau
            s = spike(h - self.threshold, alpha=self.alpha, strict=False)
            v = h * (1 - s.detach())
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, tau={self.tau}"


class LoihiLIF(nn.Module):
    """Loihi CUBA LIF population with integer parameters; consumes integer currents [T, ...]."""

    def __init__(self, params: LIFParams, alpha: float = 4.0) -> None:
        super().__init__()
        self.params, self.alpha = params, float(alpha)

    def run(self, a_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(spikes, u, v) for every step, in float64 (integer-valued), differentiable w.r.t. ``a_in``."""
        a = a_in.to(torch.float64)
        state = LIFState.zeros(a.shape[1:], dtype=torch.float64)
        bias = self.params.bias().to(torch.float64)
        spikes, us, vs = [], [], []
        for a_t in a:
            s, state = lif_step(state, a_t, self.params, bias, spike_fn=self._spike)
            spikes.append(s)
            us.append(state.u)
            vs.append(state.v)
        return torch.stack(spikes), torch.stack(us), torch.stack(vs)

    def _spike(self, x: torch.Tensor, threshold: int) -> torch.Tensor:
        """The spike with a sigmoid surrogate gradient scaled to the threshold."""
        return spike(x, alpha=self.alpha, width=float(max(threshold, 1)))

    def forward(self, a_in: torch.Tensor) -> torch.Tensor:
        spikes = self.run(a_in)[0]
        return spikes.to(a_in.dtype) if a_in.is_floating_point() else spikes.to(torch.int64)

    def extra_repr(self) -> str:
        p = self.params
        return f"du={p.du}, dv={p.dv}, vth={p.vth}"


class IntegerLIF(nn.Module):
    """Integer-mode neuron population: ``a = x * input_multiplier`` (x must hold integers) into a :class:`LoihiLIF`.

    Like :class:`QuantizedLIF`, it holds its population parameters in ``core`` (a :class:`LoihiLIF`, whose
    ``params`` carry du, dv and vth). ``bias_mant`` / ``bias_exp`` are per channel buffers (saved with the model);
    the channel axis is dimension 2 of [T, B, C, ...], and the bias broadcasts over the remaining (spatial or
    token) axes.
    """

    def __init__(self, *, du: int, dv: int, vth: int, bias_mant: torch.Tensor, bias_exp: torch.Tensor,
                 input_multiplier: int = 1) -> None:
        super().__init__()
        LIFParams(du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)  # validate ranges once
        self.core = LoihiLIF(LIFParams(du=int(du), dv=int(dv), vth=int(vth)))
        self.input_multiplier = int(input_multiplier)
        self.register_buffer("bias_mant", torch.as_tensor(bias_mant, dtype=torch.int64).reshape(-1))
        self.register_buffer("bias_exp", torch.as_tensor(bias_exp, dtype=torch.int64).reshape(-1))

    def params_for(self, x: torch.Tensor) -> LIFParams:
        """LIF parameters with the per-channel bias shaped to broadcast against x [T, B, C, ...] minus T."""
        view = (-1,) + (1,) * (x.dim() - 3)
        return dataclasses.replace(self.core.params, bias_mant=self.bias_mant.reshape(view),
                                   bias_exp=self.bias_exp.reshape(view))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.to(torch.float64) * self.input_multiplier
        return LoihiLIF(self.params_for(x), self.core.alpha)(a).to(x.dtype)

    def extra_repr(self) -> str:
        p = self.core.params
        return f"du={p.du}, dv={p.dv}, vth={p.vth}, input_multiplier={self.input_multiplier}"


class QuantizedLIF(nn.Module):
    """``loihi`` neuron mode: float current in, integer Loihi dynamics inside, spikes out.

    ``current_vth`` (default ``vth``) is the threshold the current scale ``current_vth / (tau * threshold)`` is
    computed from. Post-training quantization of a float neuron, which spikes on ``h >= threshold``, deploys
    ``vth = current_vth - 1``: where currents are integer counts (attention), Loihi's strict ``v > vth`` then
    fires on the float model's equality case too.
    """

    def __init__(self, threshold: float = 1.0, tau: float = 2.0, vth: int = DEFAULT_VTH, alpha: float = 4.0,
                 current_vth: int | None = None) -> None:
        super().__init__()
        self.current_vth = int(vth if current_vth is None else current_vth)
        dv = round(L.DECAY_UNITY / tau)
        if abs(dv * tau - L.DECAY_UNITY) > 1e-9 * L.DECAY_UNITY:
            raise ValueError(f"tau={tau} has no exact 12-bit voltage decay (4096 / tau must be an integer)")
        self.threshold, self.tau, self.alpha = float(threshold), float(tau), float(alpha)
        self.core = LoihiLIF(LIFParams(du=L.DECAY_UNITY - 1, dv=dv, vth=int(vth)), alpha=alpha)

    @property
    def current_scale(self) -> float:
        """Integer current units per unit of float current."""
        return self.current_vth / (self.tau * self.threshold)

    def quantize_current(self, x: torch.Tensor) -> torch.Tensor:
        """``round(x * current_scale)`` with a straight-through gradient, clipped to the neuron's input range."""
        scaled = x.to(torch.float64) * self.current_scale
        rounded = scaled + (torch.round(scaled) - scaled).detach()
        return rounded.clamp(*L.A_IN_RANGE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.core(self.quantize_current(x)).to(x.dtype)

    def extra_repr(self) -> str:
        extra = f", current_vth={self.current_vth}" if self.current_vth != self.core.params.vth else ""
        return f"threshold={self.threshold}, tau={self.tau}, vth={self.core.params.vth}{extra}"


def make_lif(mode: str, threshold: float = 1.0, tau: float = 2.0) -> nn.Module:
    """The neuron for ``mode`` (``float`` or ``loihi``) at the given float threshold."""
    if mode == "float":
        return FloatLIF(threshold, tau)
    if mode == "loihi":
        return QuantizedLIF(threshold, tau)
    raise ValueError(f"unknown neuron mode {mode!r}; choose one of {', '.join(NEURON_MODES)}")


def set_neuron_mode(model: nn.Module, mode: str) -> nn.Module:
    """Replace every FloatLIF / QuantizedLIF in ``model`` by the neuron of ``mode`` with the same threshold."""
    if mode not in NEURON_MODES:
        raise ValueError(f"unknown neuron mode {mode!r}; choose one of {', '.join(NEURON_MODES)}")
    if any(isinstance(m, IntegerLIF) for m in model.modules()):
        raise ValueError("a quantized (integer-mode) model cannot change neuron mode; start from the float or "
                         "loihi model file")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (FloatLIF, QuantizedLIF)):
                setattr(parent, name, make_lif(mode, child.threshold, child.tau))
    return model


def neuron_mode(model: nn.Module) -> str:
    """``float``, ``loihi`` or ``integer`` (a quantized model: every unit neuron an :class:`IntegerLIF`).

    Raises if the model mixes float and loihi neurons or has none.
    """
    if any(isinstance(m, IntegerLIF) for m in model.modules()):
        return "integer"
    modes = {("loihi" if isinstance(m, QuantizedLIF) else "float") for m in model.modules()
             if isinstance(m, (FloatLIF, QuantizedLIF))}
    if len(modes) != 1:
        raise ValueError(f"model has neurons of modes {sorted(modes) or 'none'}; expected exactly one mode")
    return modes.pop()
