"""Tick-by-tick integer simulator of a deployed graph: batched, vectorised, exact.

Every node is evaluated with the arithmetic of :mod:`snn_deploy.fixedpoint` (LIF:
:func:`~snn_deploy.fixedpoint.lif_step_inplace` on float32 tensors where
:func:`~snn_deploy.fixedpoint.lif.float_dtype` proves that exact, else on float64 tensors, which hold every Loihi
integer exactly; synapses: convolution of integers in float32 where the sums provably stay below 2^24, else
float64, then the weight exponent). The run is functional (zero latency per node), which is what the integer
PyTorch model computes: a node's step ``t`` needs only its inputs' step ``t``, so the nodes run in topological
order, each over all steps at once (a synapse as one convolution of the whole [T * B] batch, a LIF stepping through
time). A timed build (Lava) shows node ``n``'s step ``t`` at step ``t + depth(n)`` (:meth:`Graph.depths`), and the
simulator's latency model reports that depth. A LIF with recurrent synapses adds, at each step, their currents from
its own spikes of the step before (the recurrent conv node after it then only counts their synaptic operations).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.fixedpoint import LIFState, lif_step_inplace, spike_product, split_heads
from snn_deploy.fixedpoint.lif import Overflow, RegisterOverflows, float_dtype
from snn_deploy.fixedpoint.sigma_delta import INT32, SigmaDeltaState, sigma_delta_step
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import (
    PRODUCT_COUNTS, ConvNode, EventCounts, Graph, InputNode, LIFNode, ReadoutNode, SigmaDeltaNode, SpikeProductNode,
    SumNode, conv_row_l1, conv_sources, input_sequence, value_bounds,
)
from snn_deploy.sims.backends.packed_counts import packed_product_counts


@dataclass
class MembraneTrace:
    """A LIF population's current ``u`` and voltage ``v`` after every step ([T, B, *shape] int64), as Lava's LIF
    shows them when read after that step. For a sigma-delta population: ``u`` is sigma, ``v`` the activation
    (Lava's ``sigma`` and ``act``, act in units of 2^-(spike_exp + state_exp))."""

    u: torch.Tensor
    v: torch.Tensor


SIGMA_DELTA_REGISTERS = {
    register: f"int32 {register} (Lava's SigmaDelta/Delta/Sigma models: declared 24-bit, held in int32, which "
              "wraps; the simulator keeps int64, so later values differ from Lava's)"
    for register in ("sigma", "activation", "residue")}
"""The state registers of Lava's fixed-point sigma-delta models (``PySigmaDeltaModelFixed`` and its Delta / Sigma
siblings: sigma, act, residue), checked after every step against the int32 their numpy arrays hold. Loihi 2's own
widths for these registers are not published in Lava and are not checked."""
REGISTERS = {"synaptic input": f"{L.A_IN_HW_BITS}-bit a_in (Lava's model adds it unwrapped)",
             "current": f"{L.UV_BITS}-bit u (wraps, as in Lava's model)",
             "voltage": f"{L.UV_BITS}-bit v (saturates, as in Lava's model)", **SIGMA_DELTA_REGISTERS}
"""The registers the simulator checks at run time, and what Lava's fixed-point models do with a value beyond each.
LIF (``PyLifModelBitAcc``): it declares a_in 16-bit but adds whatever the synapse sends (an int32 channel), wraps u
to 24-bit two's complement and clips v to +-(2^23 - 1); the simulator does the same and counts. Sigma-delta
populations: the :data:`SIGMA_DELTA_REGISTERS`."""
LIF_REGISTERS = ("synaptic input", "current", "voltage")
A_IN_MAX = (1 << (L.A_IN_HW_BITS - 1)) - 1


@dataclass
class SimResult:
    """Outputs of one batch: recorded spikes [T, B, *shape] (uint8) per LIF node, logits, and activity counts."""

    spikes: dict[str, torch.Tensor]
    logits: torch.Tensor | None
    """None for a graph without a classifier readout."""
    spike_counts: dict[str, np.ndarray]
    """Per LIF node: spikes emitted at each step, summed over the batch ([T] int64)."""
    synaptic_ops: dict[str, np.ndarray]
    """Per synapse node (conv, spike product): synaptic operations at each step, summed over the batch ([T])."""
    overflow: dict[str, int] = field(default_factory=dict)
    """Per conv node: currents outside Lava's 24-bit Conv accumulator (where Lava would wrap)."""
    registers: dict[tuple[str, str], Overflow] = field(default_factory=dict)
    """Per (LIF node, register of :data:`REGISTERS`) that overflowed in this batch: count and worst magnitude."""
    traces: dict[str, MembraneTrace] = field(default_factory=dict)
    """Per LIF node asked for (``simulate(traces=...)``): its state after every step."""
    events: EventCounts | None = None
    """With ``simulate(counts=True)``: the activity the hardware sees, counted in the same pass."""
    graded: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per sigma-delta node recorded: its graded output payloads [T, B, *shape] (int64); its ``spikes`` are the
    messages it sends (payload != 0)."""

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(1)


class ConvKernel:
    """A conv node prepared once: weights as float tensors and the border-aware fan-out of every input position.

    Sums are exact in float32 while ``max|x| * max_row_l1 < 2^24`` (every partial sum is an integer below that);
    larger inputs switch to float64 (exact below 2^53).
    """

    FLOAT32_EXACT = L.FLOAT32_EXACT

    def __init__(self, node: ConvNode, in_shape: tuple[int, int, int]) -> None:
        self.node = node
        w = torch.from_numpy(node.weight)
        self.w32, self.w64 = w.to(torch.float32), w.to(torch.float64)
        self.row_l1 = conv_row_l1(node.weight)
        out_hw = node.shape[1:]
        ones_out = torch.ones(1, 1, *out_hw, dtype=torch.float64)
        ones_k = torch.ones(1, 1, *w.shape[2:], dtype=torch.float64)
        fanout = F.conv_transpose2d(ones_out, ones_k, stride=node.stride, padding=node.padding,
                                    output_padding=_output_padding(in_shape[1:], out_hw, w.shape[2:], node.stride,
                                                                   node.padding))
        self.fanout = fanout[0, 0].flatten() * (w.shape[0] // node.groups)  # float64 [H * W], exact integers
        # torch's CPU convolution of 1x1 kernels is several times slower than the same sums as a batched matmul
        self.pointwise = w.shape[2:] == (1, 1) and tuple(node.padding) == (0, 0) and node.groups == 1
        delay = torch.from_numpy(node.delay)
        self.by_delay = [(int(d), (w * (delay == d)).to(torch.float32), (w * (delay == d)).to(torch.float64))
                         for d in delay.unique().tolist()] if node.delay.size else []
        """Per delay value d: the kernel of the synapses with that delay (float32, float64)."""

    def operand(self, x: torch.Tensor) -> torch.Tensor:
        """What the convolution multiplies, as exact floats (float32 where the sums allow, see the class): x
        itself (graded), or its events ``x != 0`` as 0/1 (binary; bool spikes are their own events)."""
        node = self.node
        values = x if node.graded or x.dtype == torch.bool else x != 0
        exact32 = (_max_abs(values) if node.graded else 1) * self.row_l1 < self.FLOAT32_EXACT
        return _as_float(values, torch.float32 if exact32 else torch.float64)

    def convolve(self, operand: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """Currents of an :meth:`operand` ([steps * B, C, H, W]), exact integers in its dtype: the convolution, then
        the weight exponent (``<< weight_exp``: a power-of-two scaling, exact in floats). With synaptic delays, the
        synapses of delay d add their currents d steps later (the first d steps of each get none)."""
        if not self.by_delay:
            return self._convolve(operand, self.w32 if operand.dtype == torch.float32 else self.w64)
        out = None
        for d, w32, w64 in self.by_delay:
            part = self._convolve(operand, w32 if operand.dtype == torch.float32 else w64).unflatten(0, (steps, -1))
            out = torch.zeros_like(part) if out is None else out
            out[d:] += part[:max(steps - d, 0)]
        return out.flatten(0, 1)

    def _convolve(self, operand: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        node = self.node
        if self.pointwise:
            x = operand[:, :, ::node.stride[0], ::node.stride[1]]
            out = (weight.flatten(1) @ x.reshape(*x.shape[:2], -1)).reshape(x.shape[0], -1, *x.shape[2:])
        else:
            out = F.conv2d(operand, weight, stride=node.stride, padding=node.padding, groups=node.groups)
        if node.weight_exp:
            out.mul_(float(1 << node.weight_exp))
        return out

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """Currents of inputs x [N, C, H, W]: exact integers in float32 or float64 (see :meth:`operand`)."""
        return self.convolve(self.operand(x))

    def synaptic_ops(self, x: torch.Tensor) -> int:
        """Every (non-zero input event, synapse) pair of one step x [B, C, H, W]: events per position times that
        position's fan-out."""
        return int(self.synaptic_ops_per_step(_as_float(x != 0, torch.float32).unsqueeze(0))[0])

    def synaptic_ops_per_step(self, events: torch.Tensor) -> np.ndarray:
        """:meth:`synaptic_ops` of every step of 0/1 float ``events`` [T, B, C, H, W] at once ([T] int64): the
        events at each position, summed over samples and channels (exact in float32 below 2^24 terms)."""
        steps, batch, channels = events.shape[:3]
        per_position = _count(events.reshape(steps, batch * channels, -1))
        return (per_position.to(torch.float64) @ self.fanout).to(torch.int64).numpy()


def _output_padding(in_hw, out_hw, kernel, stride, padding) -> tuple[int, int]:
    return tuple(in_hw[i] - ((out_hw[i] - 1) * stride[i] - 2 * padding[i] + kernel[i]) for i in range(2))


def _max_abs(x: torch.Tensor) -> int:
    """max |x| in one pass (0 if empty)."""
    lo, hi = torch.aminmax(x) if x.numel() else (0, 0)
    return max(-int(lo), int(hi))


def _count(x: torch.Tensor) -> torch.Tensor:
    """Sums over dimension 1 of 0/1 floats, exact: float32 partial sums are exact integers below 2^24 terms."""
    return x.sum(1, dtype=None if x.shape[1] < ConvKernel.FLOAT32_EXACT else torch.float64)


def _as_float(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in a float ``dtype``; bool goes through a uint8 view, which torch converts several times faster."""
    return (x.view(torch.uint8) if x.dtype == torch.bool else x).to(dtype)


def _add(xs: list[torch.Tensor], bound: int) -> torch.Tensor:
    """Elementwise sum of ``xs`` (bool spikes count 0/1), exact: in float32 where ``bound``, the largest |sum|
    (:func:`value_bounds`), keeps every partial sum below 2^24, else in float64."""
    dtype = torch.float32 if bound < ConvKernel.FLOAT32_EXACT else torch.float64
    total = _as_float(xs[0], dtype)
    for x in xs[1:]:
        total = total + _as_float(x, dtype)
    return total


def _conv(kernel: ConvKernel, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, int]:
    """A conv over all steps of x [T, B, C, H, W] in one call: currents [T, B, ...], synaptic ops per step, and
    how many currents lie outside Lava's 24-bit Conv accumulator."""
    steps, batch = x.shape[:2]
    operand = kernel.operand(x.flatten(0, 1))
    events = _as_float(x != 0, torch.float32) if kernel.node.graded else operand.unflatten(0, (steps, batch))
    currents = kernel.convolve(operand, steps)
    overflow = int((currents.abs() >= L.UV_HALF).sum()) if _max_abs(currents) >= L.UV_HALF else 0
    return currents.unflatten(0, (steps, batch)), kernel.synaptic_ops_per_step(events), overflow


def _overflows(params, peak: int, bias: torch.Tensor, steps: int) -> RegisterOverflows | None:
    """Counters for u and v where a bound cannot rule an overflow out (None: the step skips the check). u holds at
    most ``(peak << 6)`` times the geometric sum of its decay; v, before the spike, at most the threshold plus u
    and the bias above, and ``min(steps, 4096 / dv)`` times u and the bias below."""
    decay_u, decay_v = params.decay_factors()
    drive = peak << L.ACT_SHIFT
    u_max = drive * min(steps, L.DECAY_UNITY / max(L.DECAY_UNITY - decay_u, 1))
    b_max = int(bias.abs().max()) if bias.numel() else 0
    v_max = max(params.threshold() + u_max + b_max,
                (u_max + b_max) * min(steps, L.DECAY_UNITY / max(L.DECAY_UNITY - decay_v, 1)))
    return RegisterOverflows.zero() if u_max >= L.UV_HALF or v_max > L.V_MAX else None


def _lif(node: LIFNode, current: torch.Tensor | None, trace: bool = False, *, bias_payload: torch.Tensor | None = None,
         resets: frozenset[int] = frozenset(), recurrent: tuple[ConvKernel, ...] = (),
         registers: dict[tuple[str, str], Overflow] | None = None
         ) -> tuple[torch.Tensor, np.ndarray, MembraneTrace | None]:
    """Spikes (bool [T, B, C, H, W]) of a LIF population driven by ``current`` [T, B, C, H, W] (None: no synaptic
    input) and, for a bias-driven input layer, ``bias_payload`` (integers [T, B, C, H, W] added to its bias
    mantissa), their number at each step, and (with ``trace``) its state after every step. The state is float32
    where that is exact for these inputs (:func:`float_dtype`), else float64 (exact for every Loihi integer, and
    faster than int64); every step updates it in place; it is zeroed before the steps in ``resets``.
    ``recurrent``: the population's recurrent synapses, whose currents from step t - 1's spikes join step t's input
    (also across a reset: the synapse delivers what it received, as Lava's Dense does). Values beyond the
    :data:`REGISTERS` are added to ``registers`` (per (layer, register)), in the same pass (the synaptic input with
    its recurrent currents, as the neuron's one input port sums them)."""
    params = node.params()
    if current is None:
        current = torch.zeros(bias_payload.shape, dtype=torch.float32)
    peak = _max_abs(current) + sum(k.row_l1 << k.node.weight_exp for k in recurrent)
    dtype = float_dtype(params, peak)
    bias = params.bias().to(dtype)
    if bias_payload is not None:
        mant = params.bias_mant + bias_payload.to(torch.int64)
        lo, hi = L.BIAS_MANT_RANGE
        if mant.numel() and (int(mant.min()) < lo or int(mant.max()) > hi):
            raise ValueError(f"{node.name}: bias input plus bias mantissa leaves the 13-bit range [{lo}, {hi}]")
        bias = dataclasses.replace(params, bias_mant=mant).bias().to(dtype)
    state = LIFState.zeros(current.shape[1:], dtype=dtype)
    spikes = torch.empty(current.shape, dtype=dtype)
    us, vs = (torch.empty(current.shape, dtype=dtype) for _ in range(2)) if trace else (None, None)
    overflow = _overflows(params, peak, bias, current.shape[0]) if registers is not None else None
    a_in_found = Overflow() if registers is not None and peak > A_IN_MAX else None
    if a_in_found is not None and not recurrent:  # the whole input at once; with a loop, step by step below
        a_in_found.tally(current, -A_IN_MAX, A_IN_MAX)
    for t in range(current.shape[0]):
        if t in resets:
            state.reset()
        a_in = current[t]
        if recurrent and t:
            a_in = a_in.to(dtype) + sum(k.currents(spikes[t - 1]).to(dtype) for k in recurrent)
        if a_in_found is not None and recurrent:
            a_in_found.tally(a_in, -A_IN_MAX, A_IN_MAX)
        lif_step_inplace(state, a_in, params, bias if bias_payload is None else bias[t], spikes[t], overflow)
        if trace:
            us[t], vs[t] = state.u, state.v
    if a_in_found is not None and a_in_found.count:
        registers[(node.name, "synaptic input")] = a_in_found
    for register, found in ((("current", overflow.current), ("voltage", overflow.voltage)) if overflow else ()):
        if found.count:
            registers[(node.name, register)] = found
    recorded = MembraneTrace(us.to(torch.int64), vs.to(torch.int64)) if trace else None
    return spikes.to(torch.bool), _count(spikes.flatten(1)).to(torch.int64).numpy(), recorded


def _sigma_delta(node: SigmaDeltaNode, a_in: torch.Tensor, trace: bool,
                 registers: dict[tuple[str, str], Overflow] | None = None
                 ) -> tuple[torch.Tensor, np.ndarray, MembraneTrace | None]:
    """Graded payloads (int64 [T, B, C, H, W]) of a sigma-delta population fed ``a_in`` (exact integers, [T, B, C, H,
    W]), its messages per step and (with ``trace``) sigma and act after every step. State values beyond Lava's
    int32 (:data:`SIGMA_DELTA_REGISTERS`) are added to ``registers`` (per (layer, register))."""
    params = node.sigma_delta_params()
    a_in = a_in.to(torch.int64)
    state = SigmaDeltaState.zeros(a_in.shape[1:])
    out = torch.empty(a_in.shape, dtype=torch.int64)
    sigma, act = (torch.empty(a_in.shape, dtype=torch.int64) for _ in range(2)) if trace else (None, None)
    found = {register: Overflow() for register in SIGMA_DELTA_REGISTERS} if registers is not None else None
    for t in range(a_in.shape[0]):
        out[t] = sigma_delta_step(state, a_in[t], params)
        if found is not None:
            for register, value in zip(SIGMA_DELTA_REGISTERS, (state.sigma, state.act, state.residue)):
                found[register].tally(value, *INT32)
        if trace:
            sigma[t], act[t] = state.sigma, state.act
    for register, overflow in (found or {}).items():
        if overflow.count:
            registers[(node.name, register)] = overflow
    return out, _events_per_step(out), MembraneTrace(sigma, act) if trace else None


def _delayed(x: torch.Tensor) -> torch.Tensor:
    """x [T, ...] one step later (Lava's synapse latency): zeros first."""
    return torch.cat([torch.zeros_like(x[:1]), x[:-1]])


def _events_per_step(x: torch.Tensor) -> np.ndarray:
    """Non-zero values of x [T, ...] at each step ([T] int64)."""
    return (x != 0).flatten(1).sum(1).numpy()


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Spikes [T, B, C, H, W] (any dtype, 0/1) -> float64 [T * B, heads, N, d]."""
    steps, b, c, h, w = x.shape
    return split_heads(_as_float(x, torch.float64).reshape(steps * b, c, h * w), heads)


def _per_step(x: torch.Tensor, steps: int) -> np.ndarray:
    return x.reshape(steps, -1).sum(1).to(torch.int64).numpy()


def _accumulates(qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(k-v coincidences, accumulates) per step of heads [T * B, heads, N, d]: k^T v adds one per token and
    (k event, v event) pair; q (k^T v) adds a row of d per q event."""
    pairs = _per_step(kh.sum(-1) * vh.sum(-1), steps)
    return pairs, pairs + _per_step(qh, steps) * qh.shape[-1]


def product_counts(node: SpikeProductNode, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                   ) -> dict[str, np.ndarray]:
    """The :data:`PRODUCT_COUNTS` at each step of spikes q, k, v [T, B, C, H, W] ([T] int64 each), then the
    ``packed`` lowering's events and synaptic ops
    (:func:`~snn_deploy.sims.backends.packed_counts.packed_product_counts`): every lowering is priced from one run."""
    heads, steps = node.heads, q.shape[0]
    qh, kh, vh = (_heads(x, heads) for x in (q, k, v))
    kv = kh.transpose(-1, -2) @ vh
    nonzero = kv != 0
    pairs, accumulates = _accumulates(qh, kh, vh, steps)
    return {"pairs": pairs, "kv_nonzero": _per_step(nonzero, steps),
            "gates": _per_step(qh.sum(-2).unsqueeze(-1) * nonzero, steps),
            "out_nonzero": _per_step((qh @ kv) != 0, steps), "accumulates": accumulates,
            "kvrow_nonzero": _per_step(_column_sums(heads, k, v) != 0, steps),
            **packed_product_counts(node, qh, kh, vh, kv, steps)}


def _column_sums(heads: int, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """k^T v per head summed over each token column's rows (the ``kvrow`` stage): [T * B, heads, d, d, W]."""
    steps, b, c, h, w = k.shape
    kh, vh = (_as_float(x, torch.float64).reshape(steps * b, heads, c // heads, h, w) for x in (k, v))
    return torch.einsum("bgiyx,bgjyx->bgijx", kh, vh)


def _spike_product(node: SpikeProductNode, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, counts: bool
                   ) -> tuple[torch.Tensor, np.ndarray, dict[str, np.ndarray] | None]:
    """:func:`~snn_deploy.fixedpoint.spike_product` of spikes [T, B, C, H, W]: currents (float64, exact),
    synaptic ops per step, and with ``counts`` the :data:`PRODUCT_COUNTS`."""
    steps, b, c, h, w = q.shape
    qf, kf, vf = (_as_float(x, torch.float64).reshape(steps * b, c, h * w) for x in (q, k, v))
    out = spike_product(qf, kf, vf, node.heads, node.multiplier)
    if counts:
        found = product_counts(node, q, k, v)
        return out.reshape(steps, b, c, h, w), found["accumulates"], found
    sops = _accumulates(*(split_heads(x, node.heads) for x in (qf, kf, vf)), steps)[1]
    return out.reshape(steps, b, c, h, w), sops, None


def _sent_events(graph: Graph, payload: torch.Tensor) -> np.ndarray:
    """Input events per step: the non-zero payloads the host sends; none for a bias-driven input, whose image is
    written into its layer's biases once (lava-dl's ``bias_mant``), not sent."""
    if graph.input.drive == "bias":
        return np.zeros(payload.shape[0], dtype=np.int64)
    return _events_per_step(payload)


def count_events(graph: Graph, payload: torch.Tensor, spikes: dict[str, torch.Tensor],
                 kernels: dict[str, ConvKernel]) -> EventCounts:
    """:class:`EventCounts` of one batch from its input payloads [T, B, ...] and every LIF's recorded spikes,
    for backends that return spikes only (``kernels``: a :class:`ConvKernel` per conv node, made once)."""
    values = {graph.input.name: payload, **spikes}
    for node in graph.of_kind(SumNode):
        values[node.name] = sum(values[i].to(torch.int64) for i in node.inputs)
    events = EventCounts(_sent_events(graph, payload), {}, {}, {}, {})
    for node in graph.nodes:
        if isinstance(node, LIFNode):
            events.spikes[node.name] = _events_per_step(spikes[node.name])
        elif isinstance(node, SumNode):
            events.sum_events[node.name] = _events_per_step(values[node.name])
        elif isinstance(node, ConvNode):
            for source in conv_sources(graph, node):
                events.conv_events[(node.name, source)] = kernels[node.name].synaptic_ops_per_step(
                    _as_float(values[source] != 0, torch.float32))
        elif isinstance(node, SpikeProductNode):
            events.products[node.name] = product_counts(node, *(spikes[i] for i in node.inputs))
    return events


def simulate(graph: Graph, x: torch.Tensor, *, record: set[str] | None = None,
             traces: set[str] | None = None, counts: bool = False, lava_time: bool = False,
             check_registers: bool = True) -> SimResult:
    """Run a batch through ``graph``. ``record``: LIF node names whose spikes to keep (default: all);
    ``traces``: LIF node names whose membrane state (u, v) to keep at every step (default: none); ``counts``:
    also count the activity the hardware sees (:class:`EventCounts`) in the same pass; ``check_registers``: count
    the values beyond the :data:`REGISTERS` (off only to measure what the count costs, benchmarks/sim_speed.py).

    A graph with :attr:`~Graph.pipeline_fill` runs on Lava's time axis: the input padded with zeros for the
    pipeline depth D, every synapse one step late, every population from the first step; each node's steps are
    then read at its depth (its functional steps). ``lava_time`` keeps the whole axis instead (T + D steps, index
    i = Lava's time step i + 1), as Lava's probes record it. Registers are counted over the whole axis (the
    pipeline-fill steps run on the hardware too)."""
    payload = input_sequence(graph, x)
    steps = payload.shape[0]
    fill = graph.pipeline_fill or lava_time
    depths = graph.depths()
    if lava_time and graph.reset_interval:
        raise ValueError("lava_time runs without resets; the graph resets every "
                         f"{graph.reset_interval} steps")
    if fill:
        payload = torch.cat([payload, payload.new_zeros((max(depths.values()), *payload.shape[1:]))])
    lif_names = {n.name for n in graph.of_kind(LIFNode)}
    record = lif_names if record is None else set(record)
    traces = set(traces or ())
    for what, names in (("spikes", record), ("membrane traces", traces)):
        if names - lif_names:
            raise ValueError(f"only LIF {what} can be recorded; {sorted(names - lif_names)} are no LIF nodes")
    kept: dict[str, MembraneTrace] = {}
    resets = frozenset(graph.reset_steps(payload.shape[0]))
    bounds = value_bounds(graph)
    uses = Counter(i for node in graph.nodes for i in node.inputs)
    values: dict[str, torch.Tensor] = {}
    spikes: dict[str, torch.Tensor] = {}
    spike_counts: dict[str, np.ndarray] = {}
    sops: dict[str, np.ndarray] = {}
    overflow: dict[str, int] = {}
    registers: dict[tuple[str, str], Overflow] = {}
    events = EventCounts(_sent_events(graph, payload), spike_counts, {}, {}, {}, registers) if counts else None
    sources: dict[str, torch.Tensor] = {graph.input.name: payload}  # spike sources of convs, while counting
    graded: dict[str, torch.Tensor] = {}
    for node in graph.nodes:
        inputs = [values[i] for i in node.inputs]
        for i in node.inputs:  # free every value after its last consumer
            uses[i] -= 1
            if not uses[i]:
                del values[i]
        if isinstance(node, InputNode):
            values[node.name] = payload
        elif isinstance(node, ConvNode):
            kernel = ConvKernel(node, graph[node.inputs[0]].shape)
            currents, sops[node.name], out_of_range = _conv(kernel, inputs[0])
            if not node.recurrent:  # a recurrent conv's currents were added inside its LIF's steps
                values[node.name] = _delayed(currents) if fill else currents
            if out_of_range:
                overflow[node.name] = out_of_range
            if events is not None:
                events.conv_events[(node.name, node.inputs[0])] = sops[node.name]
                for source in conv_sources(graph, node)[1:]:
                    events.conv_events[(node.name, source)] = kernel.synaptic_ops_per_step(
                        _as_float(sources[source] != 0, torch.float32))
        elif isinstance(node, SigmaDeltaNode):
            a_in = inputs[0] if len(inputs) == 1 else _add(inputs, sum(bounds[i] for i in node.inputs))
            values[node.name], spike_counts[node.name], trace = _sigma_delta(
                node, a_in, node.name in traces, registers if check_registers else None)
            if trace is not None:
                kept[node.name] = trace
            if node.name in record:
                spikes[node.name] = (values[node.name] != 0).to(torch.uint8)
                graded[node.name] = values[node.name]
            if events is not None:
                sources[node.name] = values[node.name]
        elif isinstance(node, LIFNode):
            bias_driven = isinstance(graph[node.inputs[0]], InputNode) and graph[node.inputs[0]].drive == "bias"
            single = len(inputs) == 1 and inputs[0].is_floating_point()
            current = (None if bias_driven else inputs[0] if single
                       else _add(inputs, sum(bounds[i] for i in node.inputs)))
            recurrent = tuple(ConvKernel(c, node.shape) for c in graph.recurrent_synapses(node.name))
            values[node.name], spike_counts[node.name], trace = _lif(
                node, current, node.name in traces, bias_payload=inputs[0] if bias_driven else None,
                resets=resets, recurrent=recurrent, registers=registers if check_registers else None)
            if trace is not None:
                kept[node.name] = trace
            if node.name in record:
                spikes[node.name] = values[node.name].view(torch.uint8)
            if events is not None:
                sources[node.name] = values[node.name]
        elif isinstance(node, SumNode):
            values[node.name] = _add(inputs, bounds[node.name])
            if events is not None:
                events.sum_events[node.name] = _events_per_step(values[node.name])
        elif isinstance(node, SpikeProductNode):
            values[node.name], sops[node.name], found = _spike_product(node, *inputs, events is not None)
            if fill:
                values[node.name] = _delayed(values[node.name])
            if events is not None:
                events.products[node.name] = found
        elif isinstance(node, ReadoutNode):
            values[node.name] = inputs[0]
        else:
            raise TypeError(f"simulator has no rule for node kind {node.kind!r}")
    readout = graph.classifier
    result = SimResult(spikes, None, spike_counts, sops, overflow, registers, kept, events, graded)
    if fill and not lava_time:
        _functional_window(graph, result, steps)
        if readout is not None:
            values[readout.name] = values[readout.name][depths[readout.name]:][:steps]
    result.logits = readout_logits(readout, values[readout.name]) if readout is not None else None
    return result


def _functional_window(graph: Graph, result: SimResult, steps: int) -> None:
    """Read every recording of a Lava-time run at its node's depth (see :func:`simulate`): its functional steps.
    Counts of a synapse stage are counted at its source's step (one step before the stage)."""
    depths = graph.depths()

    def window(x, name: str, lag: int = 0):
        start = depths[name] - lag
        return x[start:start + steps]

    for recorded in (result.spikes, result.graded, result.spike_counts):
        for name in recorded:
            recorded[name] = window(recorded[name], name)
    for name in result.synaptic_ops:
        result.synaptic_ops[name] = window(result.synaptic_ops[name], name, _lag(graph, name))
    result.traces = {name: MembraneTrace(window(t.u, name), window(t.v, name)) for name, t in result.traces.items()}
    events = result.events
    if events is not None:
        events.input_events = events.input_events[:steps]
        events.conv_events = {key: window(v, key[0], _lag(graph, key[0])) for key, v in events.conv_events.items()}
        events.sum_events = {name: window(v, name) for name, v in events.sum_events.items()}
        events.products = {name: {k: window(v, name, 1) for k, v in found.items()}
                           for name, found in events.products.items()}


def _lag(graph: Graph, name: str) -> int:
    """Steps between a synapse stage's source and its depth: its latency, none for a recurrent conv (it has its
    LIF's depth, :meth:`Graph.depths`)."""
    node = graph[name]
    return 0 if isinstance(node, ConvNode) and node.recurrent else node.latency


def readout_logits(readout: ReadoutNode, features: torch.Tensor) -> torch.Tensor:
    """The host-side classifier: mean of the readout input [T, B, C, H, W] over tokens (unless the readout reads
    every neuron, :attr:`ReadoutNode.per_neuron`) and steps, then affine."""
    features = features.to(torch.float64)
    pooled = (features.flatten(2) if readout.per_neuron else features.flatten(3).mean(3)).mean(0)
    return pooled @ torch.from_numpy(readout.weight).T + torch.from_numpy(readout.bias)


def readout_input(graph: Graph, spikes: dict[str, torch.Tensor]) -> torch.Tensor:
    """The readout's input [T, B, C, H, W] rebuilt from recorded LIF spikes (sums of spike tensors), for
    backends that return spikes only."""
    def value(name: str) -> torch.Tensor:
        node = graph[name]
        if isinstance(node, LIFNode):
            return spikes[name].to(torch.int64)
        if isinstance(node, SumNode):
            return sum(value(i) for i in node.inputs)
        raise ValueError(f"readout input depends on {node.kind} node {name!r}, which is not recorded as spikes")
    return value(graph.readout.inputs[0])
