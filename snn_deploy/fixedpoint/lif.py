r"""Loihi's fixed-point CUBA LIF neuron, step for step as Lava's bit-accurate model (``PyLifModelBitAcc``).

Per time step, with integer state u, v and integer input current a (all per neuron):

.. math::

    u &\leftarrow \operatorname{wrap}_{24}\big(\operatorname{trunc}_0(u \cdot (4096 - (d_u + 1)) / 4096) + 2^6 a\big) \\
    v &\leftarrow \operatorname{clip}\big(\operatorname{trunc}_0(v \cdot (4096 - d_v) / 4096) + u + b,\;
          -(2^{23}-1),\; 2^{23}-1\big),\qquad b = m_b \ll e_b \;(\gg -e_b \text{ if } e_b < 0)\\
    s &= [\,v > 2^6 v_{th}\,],\qquad v \leftarrow v\,(1 - s)

With a refractory period P > 0 (Lava's ``LIFRefractory``), a neuron that spikes at step t keeps v = 0 (no decay,
input or bias) at steps t + 1 .. t + P while u integrates as usual; a counter r of steps left is part of the
state: ``held = r > 0``, and after the spike ``r = P if s else max(r - 1, 0)``. A reset (Lava's ``LIFReset``,
:meth:`LIFState.reset`) zeroes u, v and r.

``trunc0`` rounds toward zero; ``wrap24`` maps values above 2^23 down by 2^24 and values at or below -2^23 up by
2^24 (Lava's two comparisons, not a modulo); u is not reset by a spike. ``du``, ``dv`` and ``vth`` are shared by a
population, ``bias_mant`` and ``bias_exp`` are per neuron (broadcast against the neuron axes).

The same pure :func:`lif_step` runs on int64 tensors (exact integer reference) and on float64 tensors (training):
every intermediate is an integer below 2^53, so float64 is exact, and rounding uses a straight-through estimator so
gradients flow; a trainable neuron passes its own ``spike_fn`` for the spike's surrogate gradient (this package
holds no training code). :func:`lif_step_inplace` is the same step outside autograd, overwriting the state (no
allocations), also on float32 where :func:`float_dtype` proves that exact (the simulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from snn_deploy.fixedpoint import limits as L
from snn_deploy.fixedpoint._backend import Array, as_tensor, like_input, require_integers, require_range


@dataclass(frozen=True)
class LIFParams:
    """Integer parameters of one LIF population (validated on construction)."""

    du: int
    dv: int
    vth: int
    bias_mant: int | torch.Tensor = 0
    bias_exp: int | torch.Tensor = 0
    refractory: int = 0
    """Refractory period in steps (0: none), see the module docstring."""

    def __post_init__(self) -> None:
        if int(self.refractory) < 0:
            raise ValueError(f"refractory must be >= 0; got {self.refractory}")
        require_range("du", self.du, *L.DU_RANGE)
        require_range("dv", self.dv, *L.DV_RANGE)
        require_range("vth", self.vth, *L.VTH_RANGE)
        require_range("bias_mant", self.bias_mant, *L.BIAS_MANT_RANGE)
        require_range("bias_exp", self.bias_exp, *L.BIAS_EXP_RANGE)
        for name in ("du", "dv", "vth"):
            if torch.as_tensor(getattr(self, name)).numel() != 1:
                raise ValueError(f"{name} is one value per population; got shape {tuple(torch.as_tensor(getattr(self, name)).shape)}")

    def bias(self) -> torch.Tensor:
        """Effective bias added to v each step: mantissa shifted by the exponent (arithmetic right shift if < 0)."""
        mant = torch.as_tensor(self.bias_mant, dtype=torch.int64)
        exp = torch.as_tensor(self.bias_exp, dtype=torch.int64)
        return torch.where(exp >= 0, mant << exp.clamp(min=0), mant >> (-exp).clamp(min=0))

    def threshold(self) -> int:
        """The voltage a spike must exceed: ``vth << 6`` (MSB-aligned like the input, see ``limits.VTH_SHIFT``)."""
        return int(self.vth) << L.VTH_SHIFT

    def decay_factors(self) -> tuple[int, int]:
        """What u and v are multiplied by (over 4096) each step: ``4096 - (du + 1)`` and ``4096 - dv``."""
        return (L.DECAY_UNITY - (int(self.du) + L.CURRENT_DECAY_OFFSET),
                L.DECAY_UNITY - (int(self.dv) + L.VOLTAGE_DECAY_OFFSET))


@dataclass
class LIFState:
    """Membrane state of a population: current u and voltage v (same dtype: int64, float64, or float32 where
    :func:`float_dtype` allows)."""

    u: torch.Tensor
    v: torch.Tensor
    refractory: torch.Tensor | None = None
    """Refractory steps left per neuron (v's dtype); None until a population with a refractory period steps."""

    @classmethod
    def zeros(cls, shape: torch.Size | tuple[int, ...], dtype: torch.dtype = torch.int64) -> "LIFState":
        return cls(torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype))

    def reset(self) -> None:
        """Zero u, v and the refractory counter in place (Lava's ``LIFReset`` at its reset steps)."""
        for t in (self.u, self.v, self.refractory):
            if t is not None:
                t.zero_()


def trunc_shift(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``sign(x) * (|x| >> bits)``: division by 2^bits rounding toward zero (straight-through gradient for floats)."""
    if not x.is_floating_point():
        return torch.div(x, 1 << bits, rounding_mode="trunc")
    scaled = x / (1 << bits)
    if not scaled.requires_grad:
        return torch.trunc(scaled)
    return scaled + (torch.trunc(scaled) - scaled).detach()


@dataclass
class Overflow:
    """Values that left a register in a run: how many, and the largest magnitude reached before Lava's model wrapped
    (u) or saturated (v) it. :meth:`tally` is called on the values before that happens (the count is exact; on a
    float32 state a worst value beyond 2^24 is float32's nearest)."""

    count: int = 0
    worst: int = 0

    def tally(self, x: torch.Tensor, lo: int, hi: int, extremes: tuple | None = None) -> None:
        """Count the entries of ``x`` outside ``[lo, hi]`` (``extremes``: its (min, max), if already known)."""
        low, high = extremes if extremes is not None else _extremes(x)
        if low < lo or high > hi:
            self.count += int(((x < lo) | (x > hi)).sum())
            self.worst = max(self.worst, -low, high)


@dataclass
class RegisterOverflows:
    """Per population: the current register u (24 bits, wraps) and the voltage register v (24 bits, saturates)."""

    current: Overflow
    voltage: Overflow

    @classmethod
    def zero(cls) -> "RegisterOverflows":
        return cls(Overflow(), Overflow())


def wrap_u(u: torch.Tensor, *, inplace: bool = False, extremes: tuple | None = None) -> torch.Tensor:
    """Lava's 24-bit wrap of the current: one correction of 2^24 in either direction (``inplace``: into ``u``;
    ``extremes``: u's (min, max) where already known)."""
    full = 2 * L.UV_HALF
    if not u.requires_grad:
        lo, hi = extremes if extremes is not None else (torch.aminmax(u) if u.numel() else (0, 0))
        if -L.UV_HALF < lo and hi <= L.UV_HALF:  # the common case, seen in one pass: nothing to wrap
            return u
    out = u if inplace else None
    wrapped = torch.where(u > L.UV_HALF, u - full, u, out=out)
    # only values left alone by the first correction can need the second, so wrapped + full == u + full there
    return torch.where(wrapped <= -L.UV_HALF, wrapped + full, wrapped, out=out)


def float_dtype(params: LIFParams, max_abs_input: int) -> torch.dtype:
    """The narrowest float dtype in which :func:`lif_step` is exact for this population and integer inputs of at
    most ``max_abs_input`` in magnitude (from any state it produces, e.g. zero).

    float32 (half the memory traffic) where both decay factors are powers of two (or u keeps nothing) and
    ``a_in << 6`` stays within 2^23: the decays then only scale by 2^-k; u stays in (-2^23, 2^23] and v within
    2^23 - 1, so ``u * factor + (a_in << 6)`` and ``v * factor + u`` stay within 2^24, where float32 holds every
    integer; adding the bias (at most 2^19) can leave 2^24, but a rounded sum beyond it clamps as the exact one does.
    Otherwise float64, which holds every integer below 2^53.
    """
    powers_of_two = all(f & (f - 1) == 0 for f in params.decay_factors())  # 0 (no current memory) included
    if powers_of_two and max_abs_input << L.ACT_SHIFT <= L.UV_HALF:
        return torch.float32
    return torch.float64


def _decay(x: torch.Tensor, factor: int, inplace: bool) -> torch.Tensor:
    """``trunc0(x * factor / 4096)``, into ``x`` if ``inplace``. Outside autograd a float ``x`` takes a single
    multiply by the exact fraction ``factor / 4096``, which is exact wherever the dtype holds ``x * factor`` (float64:
    below 2^53; float32: see :func:`float_dtype`), so the result equals the integer arithmetic's."""
    if x.requires_grad and torch.is_grad_enabled():
        return trunc_shift(x * factor, L.DECAY_BITS)  # straight-through gradient
    out = x if inplace else None
    if x.is_floating_point():
        return torch.mul(x, factor / L.DECAY_UNITY, out=out).trunc_()
    return torch.mul(x, factor, out=out).div_(L.DECAY_UNITY, rounding_mode="trunc")


SpikeFn = Callable[[torch.Tensor, int], torch.Tensor]
"""``spike_fn(v - threshold, threshold)`` -> spikes: a trainable neuron's spike with its surrogate gradient."""


def _integrate(state: LIFState, a_in: torch.Tensor, params: LIFParams, bias: torch.Tensor, *, inplace: bool,
               tracked: bool, overflow: RegisterOverflows | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The new u and v before the spike (see the module docstring); ``inplace``: into ``state``'s tensors;
    ``overflow``: also count the values u wraps and v saturates (before they do)."""
    decay_u, decay_v = params.decay_factors()
    u_out = state.u if inplace else None
    # du = 4095 keeps none of the old current (the deployed default): skip the decay arithmetic
    u = (torch.mul(a_in, 1 << L.ACT_SHIFT, out=u_out) if decay_u == 0 else
         torch.add(_decay(state.u, decay_u, inplace), a_in, alpha=1 << L.ACT_SHIFT, out=u_out))
    # u and the decayed v are fresh tensors (or the state's own, in place): the rest updates them in place
    if overflow is None:
        u = wrap_u(u, inplace=not tracked)
        return u, _decay(state.v, decay_v, inplace).add_(u).add_(bias).clamp_(L.V_MIN, L.V_MAX)
    extremes = _extremes(u)  # one pass serves the count and the wrap (and the clip of v below)
    overflow.current.tally(u, -L.UV_HALF + 1, L.UV_HALF, extremes)
    u = wrap_u(u, inplace=True, extremes=extremes)
    v = _decay(state.v, decay_v, inplace).add_(u).add_(bias)
    extremes = _extremes(v)
    overflow.voltage.tally(v, L.V_MIN, L.V_MAX, extremes)
    return u, (v.clamp_(L.V_MIN, L.V_MAX) if extremes[0] < L.V_MIN or extremes[1] > L.V_MAX else v)


def _extremes(x: torch.Tensor) -> tuple[int, int]:
    lo, hi = torch.aminmax(x) if x.numel() else (0, 0)
    return int(lo), int(hi)


def lif_step(state: LIFState, a_in: torch.Tensor, params: LIFParams, bias: torch.Tensor | None = None,
             spike_fn: SpikeFn | None = None) -> tuple[torch.Tensor, LIFState]:
    """One time step; returns (spikes, new state), spikes in the state's dtype; ``state`` is left unchanged.
    ``bias`` may be passed precomputed (``params.bias()``). Under autograd, ``spike_fn`` (default: the plain
    comparison, no gradient) makes the spike differentiable."""
    bias = (params.bias() if bias is None else bias).to(state.v.dtype)
    tracked = torch.is_grad_enabled() and any(t.requires_grad for t in (state.u, state.v, a_in, bias))
    if params.refractory and tracked:
        raise ValueError("refractory periods are modelled for inference only (no gradient)")
    u, v = _integrate(state, a_in, params, bias, inplace=False, tracked=tracked)
    threshold = params.threshold()
    if tracked:
        spikes = spike_fn(v - threshold, threshold) if spike_fn is not None else (v > threshold).to(v.dtype)
        return spikes, LIFState(u, v * (1 - spikes.detach()))
    left = _hold(state, v, params, inplace=False)
    spikes = torch.gt(v, threshold, out=torch.empty_like(v))
    _count_down(left, spikes, params)
    return spikes, LIFState(u, v.addcmul_(v, spikes, value=-1), left)  # reset: v - v * s, exact for 0/1 spikes


def _hold(state: LIFState, v: torch.Tensor, params: LIFParams, *, inplace: bool) -> torch.Tensor | None:
    """The refractory counter (None without a refractory period), with v held at 0 where it is running (the 0 the
    neuron's spike left); ``inplace``: the state's own counter, else a copy."""
    if not params.refractory:
        return None
    left = state.refractory if state.refractory is not None else torch.zeros_like(v)
    left = left if inplace else left.clone()
    v.masked_fill_(left > 0, 0)
    return left


def _count_down(left: torch.Tensor | None, spikes: torch.Tensor, params: LIFParams) -> None:
    """After the spike: ``r = P`` where the neuron spiked, else ``max(r - 1, 0)`` (in place)."""
    if left is not None:
        left.sub_(1).clamp_(min=0).masked_fill_(spikes.bool(), int(params.refractory))


def lif_step_inplace(state: LIFState, a_in: torch.Tensor, params: LIFParams, bias: torch.Tensor,
                     spikes_out: torch.Tensor, overflow: RegisterOverflows | None = None) -> torch.Tensor:
    """:func:`lif_step` overwriting ``state``'s tensors with the new state and ``spikes_out`` (the state's dtype)
    with the spikes, which it returns: a loop over many steps allocates nothing (the simulator). Outside autograd.
    ``overflow``: add the values u wraps and v saturates at this step."""
    bias = bias.to(state.v.dtype)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (state.u, state.v, a_in, bias)):
        raise ValueError("lif_step_inplace updates the state in place, which autograd cannot differentiate")
    state.u, v = _integrate(state, a_in, params, bias, inplace=True, tracked=False, overflow=overflow)
    state.refractory = _hold(state, v, params, inplace=True)
    spikes = torch.gt(v, params.threshold(), out=spikes_out)
    _count_down(state.refractory, spikes, params)
    state.v = v.addcmul_(v, spikes, value=-1)  # reset: v - v * s, exact for 0/1 spikes
    return spikes


def lif_run(a_in: Array, *, du: int, dv: int, vth: int, bias_mant: Array = 0, bias_exp: Array = 0,
            u0: Array | None = None, v0: Array | None = None, refractory: int = 0,
            reset_interval: int = 0) -> tuple[Array, Array, Array]:
    """Run a population over T steps of integer input currents ``a_in`` shaped [T, ...].

    Returns (spikes, u, v), each [T, ...] int64 (numpy if ``a_in`` is numpy, else torch): the values after every
    step, as Lava's ``LIF`` shows them when read after that step. ``bias_mant``/``bias_exp`` broadcast against the
    neuron axes ``a_in.shape[1:]``; ``u0``/``v0`` give a start state (default zero). ``refractory``: the refractory
    period (module docstring); ``reset_interval`` > 0 zeroes the state before every step ``t > 0`` with
    ``t % reset_interval == 0`` (Lava's ``LIFReset`` with ``reset_offset = 1``, its time steps counting from 1).
    """
    a = as_tensor(a_in, None)
    require_integers("a_in", a)
    a = a.to(torch.int64)
    if a.dim() < 1:
        raise ValueError("a_in must be shaped [T, ...]; got a scalar")
    require_range("a_in", a, *L.A_IN_RANGE)
    params = LIFParams(du=int(du), dv=int(dv), vth=int(vth), bias_mant=as_tensor(bias_mant),
                       bias_exp=as_tensor(bias_exp), refractory=int(refractory))
    neuron_shape = a.shape[1:]
    state = LIFState.zeros(neuron_shape)
    if u0 is not None:
        state.u = as_tensor(u0).expand(neuron_shape).clone()
    if v0 is not None:
        state.v = as_tensor(v0).expand(neuron_shape).clone()
    bias = torch.broadcast_to(params.bias(), neuron_shape)
    spikes, us, vs = (torch.empty_like(a) for _ in range(3))
    for t in range(a.shape[0]):
        if reset_interval and t and t % reset_interval == 0:
            state.reset()
        lif_step_inplace(state, a[t], params, bias, spikes[t])
        us[t], vs[t] = state.u, state.v
    return like_input(a_in, spikes), like_input(a_in, us), like_input(a_in, vs)


REFRACTORY_COUNTER_SHIFT = 7
"""Loihi keeps a neuron's refractory counter in its v register, above bit 7: Intel's Loihi 2 PilotNet traces read
v = refDelay << 7 = 128 at every spike step (refDelay 1) where Lava's model shows the reset v = 0."""


def loihi_v_register(v: Array, spikes: Array, *, refractory: int = 0) -> Array:
    """v as Loihi's register reads after each step: :data:`REFRACTORY_COUNTER_SHIFT` applied to the refractory
    counter (refDelay = ``refractory`` + 1) at spike steps, v elsewhere. Observed for refDelay 1 only, so other
    periods are refused rather than guessed."""
    if refractory:
        raise ValueError("Loihi's v register during a refractory period was never observed here (refDelay 1 only)")
    vt, st = as_tensor(v), as_tensor(spikes)
    return like_input(v, torch.where(st != 0, torch.full_like(vt, (refractory + 1) << REFRACTORY_COUNTER_SHIFT), vt))
