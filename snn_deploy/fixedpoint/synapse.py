r"""Loihi synapse arithmetic as Lava's fixed-point ``Dense`` and ``Conv`` models compute it.

Dense (``PyDenseModelBitAcc``):

* At its first step Lava clips weights to 8 bits for their sign mode (mixed [-256, 255], excitatory [0, 255],
  inhibitory [-255, 0]) and then drops ``8 - num_weight_bits + is_mixed`` low bits of the magnitude
  (:func:`quantize_weights`): with the default 8 bits, mixed-sign weights are floored to even values.
* Output: ``a = (W @ s) << weight_exp`` (arithmetic right shift when ``weight_exp < 0``). With
  ``num_message_bits > 0`` the input is graded (integer payloads); otherwise any non-zero input counts as 1.
* What Dense accumulates at step t reaches its target at step t + 1 (:data:`DENSE_DELAY`): :func:`dense_run`
  applies that delay, :func:`dense_step` is the undelayed arithmetic for lowering passes that balance paths.

Conv (``PyConvModelFixed``): a true convolution (kernel flipped against torch's cross-correlation) on (W, H, C)
inputs with (C_out, W, H, C_in) weights; weight_exp is ignored, weights are not clipped, and the output wraps to
24-bit two's complement. :func:`conv_step` takes torch layouts (input [..., C, H, W], weight
[C_out, C_in / groups, kH, kW]); :func:`torch_conv_weight_to_lava` / :func:`lava_conv_weight_to_torch` and
:func:`torch_image_to_lava` convert. Conv has the same one-step delay as Dense.

Sums are computed with float64 BLAS / convolution and checked to stay below 2^53, where float64 is exact.
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F

from snn_deploy.fixedpoint import limits as L
from snn_deploy.fixedpoint._backend import Array, as_tensor, like_input, require_integers, require_range

DENSE_DELAY = 1
"""Steps between a spike arriving at a Dense / Conv input and its current arriving at the target neuron."""


class SignMode(Enum):
    """Lava's weight sign modes (``lava.utils.weightutils.SignMode``)."""

    MIXED = "mixed"
    EXCITATORY = "excitatory"
    INHIBITORY = "inhibitory"


def sign_mode(weights: torch.Tensor) -> SignMode:
    """Lava's ``determine_sign_mode``: excitatory if all >= 0, inhibitory if all <= 0, else mixed."""
    if bool((weights >= 0).all()):
        return SignMode.EXCITATORY
    if bool((weights <= 0).all()):
        return SignMode.INHIBITORY
    return SignMode.MIXED


def quantize_weights(weights: Array, num_weight_bits: int = L.WEIGHT_BITS, mode: SignMode | None = None) -> Array:
    """Lava's ``clip_weights(num_bits=8)`` followed by ``truncate_weights(num_weight_bits)``.

    ``mode`` defaults to :func:`sign_mode` of the whole matrix, as Lava's Dense does.
    """
    w = as_tensor(weights, None)
    require_integers("weights", w)
    w = w.to(torch.int64)
    mode = mode or sign_mode(w)
    mixed = int(mode is SignMode.MIXED)
    require_range("num_weight_bits", num_weight_bits, 1, L.WEIGHT_BITS + mixed)  # 9 mixed-sign bits drop none
    magnitude = -w if mode is SignMode.INHIBITORY else w
    magnitude = magnitude.clamp(-(1 << L.WEIGHT_BITS) * mixed, (1 << L.WEIGHT_BITS) - 1)
    drop = L.WEIGHT_BITS - num_weight_bits + mixed
    magnitude = (magnitude >> drop) << drop
    return like_input(weights, -magnitude if mode is SignMode.INHIBITORY else magnitude)


def apply_exponent(a: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``a << weight_exp`` for a non-negative exponent, arithmetic ``a >> -weight_exp`` otherwise."""
    return a << weight_exp if weight_exp >= 0 else a >> -weight_exp


def _check_exact(w: torch.Tensor, x: torch.Tensor, fan_in: int) -> None:
    bound = int(w.abs().max().item() if w.numel() else 0) * int(x.abs().max().item() if x.numel() else 0) * fan_in
    if bound >= L.FLOAT64_EXACT:
        raise ValueError(f"synaptic sums could reach {bound}, beyond 2^53 where integer accumulation is exact here")


def _input_values(s: torch.Tensor, graded: bool) -> torch.Tensor:
    require_integers("s_in", s)
    s = s.to(torch.int64)
    return s if graded else (s != 0).to(torch.int64)


def dense_step(s_in: Array, weights: Array, *, weight_exp: int = 0, graded: bool = False) -> Array:
    """Currents ``(W @ s) << weight_exp`` for inputs [..., n_in] and already-quantized weights [n_out, n_in]."""
    w = as_tensor(weights)
    s = _input_values(as_tensor(s_in, None), graded)
    if s.shape[-1] != w.shape[1]:
        raise ValueError(f"dense input has {s.shape[-1]} features but weights expect {w.shape[1]}")
    _check_exact(w, s, w.shape[1])
    acc = torch.round(s.to(torch.float64) @ w.to(torch.float64).T).to(torch.int64)
    return like_input(s_in, apply_exponent(acc, weight_exp))


def delay(x: Array, steps: int = DENSE_DELAY) -> Array:
    """Shift [T, ...] along time by ``steps``: zeros for the first steps, the last ``steps`` values dropped."""
    t = as_tensor(x, None)
    if steps < 0:
        raise ValueError(f"delay steps must be >= 0; got {steps}")
    out = torch.zeros_like(t)
    if steps < t.shape[0]:
        out[steps:] = t[: t.shape[0] - steps]
    return like_input(x, out)


def dense_run(s_in: Array, weights: Array, *, weight_exp: int = 0, num_weight_bits: int = L.WEIGHT_BITS,
              graded: bool = False) -> Array:
    """Lava Dense over time: inputs [T, ..., n_in] -> currents [T, ..., n_out] arriving one step later."""
    w = as_tensor(quantize_weights(as_tensor(weights, None), num_weight_bits))
    return delay(dense_step(s_in, w, weight_exp=weight_exp, graded=graded))


def wrap_signed(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to ``bits`` (Lava's ``signed_clamp``)."""
    half = 1 << (bits - 1)
    return (x + half) % (2 * half) - half


def conv_step(x: Array, weight: Array, *, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
              dilation: int | tuple[int, int] = 1, groups: int = 1, graded: bool = False) -> Array:
    """Lava Conv arithmetic in torch layouts: x [..., C_in, H, W], weight [C_out, C_in/groups, kH, kW] (torch's
    orientation, i.e. already flipped relative to Lava's kernel). Returns 24-bit wrapped currents [..., C_out, H', W']."""
    w = as_tensor(weight)
    xt = _input_values(as_tensor(x, None), graded)
    if xt.dim() < 3:
        raise ValueError(f"conv input must be [..., C, H, W]; got shape {tuple(xt.shape)}")
    lead = xt.shape[:-3]
    flat = xt.reshape(-1, *xt.shape[-3:])
    _check_exact(w, flat, w.shape[1] * w.shape[2] * w.shape[3])
    out = F.conv2d(flat.to(torch.float64), w.to(torch.float64), stride=stride, padding=padding,
                   dilation=dilation, groups=groups)
    out = wrap_signed(torch.round(out).to(torch.int64), L.CONV_ACC_BITS)
    return like_input(x, out.reshape(*lead, *out.shape[1:]))


def conv_run(x: Array, weight: Array, **conv_args) -> Array:
    """Lava Conv over time: inputs [T, ..., C, H, W] -> currents one step later (see :func:`conv_step`)."""
    return delay(conv_step(x, weight, **conv_args))


def torch_conv_weight_to_lava(weight: Array) -> Array:
    """[C_out, C_in, kH, kW] torch cross-correlation kernel -> Lava's (C_out, W, H, C_in) convolution kernel."""
    w = as_tensor(weight, None)
    return like_input(weight, w.flip(-1, -2).permute(0, 3, 2, 1).contiguous())


def lava_conv_weight_to_torch(weight: Array) -> Array:
    """Inverse of :func:`torch_conv_weight_to_lava`."""
    w = as_tensor(weight, None)
    return like_input(weight, w.permute(0, 3, 2, 1).flip(-1, -2).contiguous())


def torch_image_to_lava(x: Array) -> Array:
    """[..., C, H, W] -> [..., W, H, C] (Lava's Conv input and output layout)."""
    t = as_tensor(x, None)
    return like_input(x, t.transpose(-1, -3).contiguous())
