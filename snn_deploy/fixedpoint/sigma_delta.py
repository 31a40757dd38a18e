r"""Sigma-delta neurons (SDNN) in fixed point, step for step as Lava's ``fixed_pt`` models of
``lava.proc.sdn`` (``PySigmaDeltaModelFixed``, ``PyDeltaModelFixed``, ``PySigmaModelFixed``, lava-nc 0.10), which
lava-dl's netx loader builds for ``SDNN`` layers.

Per time step, with integer input a (the synapse's sum of weight x graded payload), scale ``e = spike_exp +
state_exp`` (netx: 6 + 6) and per-neuron integer state sigma, act, residue:

.. math::

    \sigma &\leftarrow \sigma + a \\
    x &= \max(\sigma + (b \ll e),\; 0) \qquad\text{(ReLU; the ``delta`` encoder of an input layer: } x = a \ll e) \\
    \delta &= x - act + residue,\qquad s = \delta\,[\,|\delta| \ge v_{th} \ll e\,] \\
    residue &\leftarrow \delta - s,\qquad act \leftarrow x,\qquad \text{out} = s \gg state\_exp

``>>`` is numpy's arithmetic shift (rounds toward minus infinity). The output is the graded payload the next
synapse multiplies by its weights: the activation change in units of ``2^-spike_exp``. A ``sigma`` layer (netx's
``sigma_output``) only accumulates: out = sigma. netx sets no cumulative error (``cum_error=False``) and no other
activation than ReLU. Lava's Python models keep every value in int32 without clipping (:data:`INT32`; a value
beyond it wraps in Lava; the simulator counts such values as register overflows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("sigma_delta", "delta", "sigma")
"""``sigma_delta``: Lava's SigmaDelta (ReLU); ``delta``: Lava's Delta (an input layer's encoder, no sigma, no bias);
``sigma``: Lava's Sigma (a ``sigma_output`` layer: the accumulated input, no threshold)."""
INT32 = (-(1 << 31), (1 << 31) - 1)


def bias_limit(scale_bits: int) -> int:
    """Largest |bias|: Lava scales it by ``2^scale_bits`` (spike_exp + state_exp) inside int32."""
    return (1 << (31 - scale_bits)) - 1


@dataclass(frozen=True)
class SigmaDeltaParams:
    """Integer parameters of one sigma-delta population."""

    vth: int
    """netx's ``vThMant``: an activation change is sent when ``|delta| >= vth << (spike_exp + state_exp)``."""
    bias: int | torch.Tensor = 0
    """Per neuron (broadcast), in activation units: added as ``bias << (spike_exp + state_exp)``."""
    spike_exp: int = 6
    state_exp: int = 6
    mode: str = "sigma_delta"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sigma-delta mode {self.mode!r} is not one of {MODES}")
        if self.vth < 0 or not 0 <= self.spike_exp <= 7 or not 0 <= self.state_exp <= 7:
            raise ValueError(f"vth {self.vth} must be >= 0 and spike_exp {self.spike_exp}, state_exp "
                             f"{self.state_exp} in 0..7 (Lava's 3-bit fields)")

    @property
    def scale_bits(self) -> int:
        return self.spike_exp + self.state_exp

    def threshold(self) -> int:
        return self.vth << self.scale_bits

    def scaled_bias(self) -> torch.Tensor:
        return torch.as_tensor(self.bias, dtype=torch.int64) << self.scale_bits


@dataclass
class SigmaDeltaState:
    """sigma, act and residue per neuron (int64 tensors)."""

    sigma: torch.Tensor
    act: torch.Tensor
    residue: torch.Tensor

    @classmethod
    def zeros(cls, shape: torch.Size | tuple[int, ...]) -> "SigmaDeltaState":
        return cls(*(torch.zeros(shape, dtype=torch.int64) for _ in range(3)))


def sigma_delta_step(state: SigmaDeltaState, a_in: torch.Tensor, params: SigmaDeltaParams) -> torch.Tensor:
    """One step (module docstring): updates ``state`` in place and returns the output payloads (int64)."""
    a_in = torch.as_tensor(a_in).to(torch.int64)
    if params.mode == "sigma":
        state.sigma += a_in
        return state.sigma.clone()
    if params.mode == "delta":
        x = a_in << params.scale_bits
    else:
        state.sigma += a_in
        x = torch.clamp_min(state.sigma + params.scaled_bias(), 0)
    delta = x - state.act + state.residue
    sent = torch.where(delta.abs() >= params.threshold(), delta, torch.zeros_like(delta))
    state.residue = delta - sent
    state.act = x
    return sent >> params.state_exp
