"""A :class:`~snn_deploy.graph.Graph` as a Lava process network that a Loihi 2 chip could load, run bit-exactly in
Lava's CPU models (Lava's own ``fixed_pt`` models; for ``Conv``, ``Sparse`` and ``DelaySparse`` the faster,
bit-exact ones of :mod:`.lava_models`, tested equal to Lava's).

:func:`build` builds the one hardware lowering (:func:`snn_deploy.graph.hardware.lower`, Loihi 2's choices:
spike products in the graph's lowering (``Graph.attention``), residual sums as graded relays): what the mapper and
the cost model price is what runs here. Every process has a Loihi 2 implementation
(:mod:`snn_deploy.sims.backends.lava_chip` lists them and checks a built network): populations are ``LIFReset``
(LIF nodes), ``LIF`` (coincidence ``and`` neurons), ``GradedVec`` (relays of residual sums, ``kv`` sums) and
``ProdNeuron`` (``gate`` products; the ``graded`` and ``packed`` lowerings' ``and`` too; the ``packed``
lowering's relays are ``GradedVec``, its right shifts ``Sparse`` with a negative ``weight_exp``; ``Sigma``
accumulators and a clock ``LIF`` are the ``token-serial`` arrays', built alone by the tests: a whole token-serial
network is refused, :func:`check_buildable`); projections are ``Conv`` (a conv node's kernel; the lowering's own
``kernel`` projections), ``Sparse`` / ``DelaySparse`` (channel maps, path balancing, delayed convs and kernels) and
``Dense`` (a recurrent conv back into its LIF). Host I/O is ``lava.proc.io``: a ``RingBuffer`` sends the input
payloads, one more sends the spikes of each layer the host computes (``Graph.host``, computed here with
:mod:`snn_deploy.fixedpoint`), and an ``Extractor`` per LIF node brings spikes back, a whole array per step
(``every_population``: per population, for event counts). The readout stays on the host.

Timing. Every synapse delivers one step late, neurons answer in the step they receive, so population ``p`` shows
functional step ``t`` at Lava step ``t + depth(p)`` (0-based; Lava's ``time_step`` is that plus one; the depths are
the lowering's). A projection from a source shallower than its population's deepest input gets the difference as a
synaptic delay (``DelaySparse``), so every input shows the same functional step in the same Lava step.

A recurrent conv is a ``Dense`` from its ``LIFReset`` back to it (the synapse's one-step latency is the recurrent
edge's delay); such a network runs one sample per runtime (:func:`_one_by_one`). Its LIFs also start without
biases, each given its bias when the sample's step 0 reaches it (:attr:`LavaNetwork.biases`): a layer firing on
its bias while the pipeline fills would otherwise feed those spikes back into step 0. A pipeline-fill graph keeps
its biases from the first step: there the fill is part of the graph (the simulator feeds those spikes back too).

Sigma-delta populations (lava-dl netx's SDNN layers) become Lava's ``Delta``, ``SigmaDelta`` or ``Sigma``, which
have no reset; their graphs are pipeline-fill graphs (:attr:`Graph.pipeline_fill`), built with plain ``LIF`` and
run one sample per runtime from Lava's first step, as lava-dl's own loader runs them. Their graded payloads come
back (int64) where a LIF's spikes do.

Samples run back to back in one runtime: sample ``i`` occupies input steps ``[i T, (i + 1) T)``. Every LIF zeroes
``u`` and ``v`` when functional step 0 of a sample reaches it (:func:`reset_offset`); the coincidence, relay and
product neurons keep nothing from one step to the next, and synapses hold no more than the latency they model, so
nothing of one sample reaches the next one's aligned steps.

Running on a Loihi 2 chip (docs/lava_chip.md): the same processes under ``Loihi2HwCfg`` instead of
``Loihi2SimCfg``; ``RingBuffer``/``Extractor`` become the chip's host I/O adapters; ``LIFReset``'s
``reset_interval`` must be a power of 2 there (``graph.checks`` flags it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse import csr_matrix
# (lava imports work: importing this package ran snn_deploy's Lava compatibility finder first)
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.graded.process import GradedVec
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIF, LIFReset
from lava.proc.prodneuron.process import ProdNeuron
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta
from lava.proc.sparse.process import DelaySparse, Sparse

from snn_deploy.console import progress as console_progress
from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import conv_step, lif_run
from snn_deploy.fixedpoint.sigma_delta import SigmaDeltaState, sigma_delta_step
from snn_deploy.fixedpoint.synapse import quantize_weights, torch_conv_weight_to_lava, torch_image_to_lava
from snn_deploy.graph import ConvNode, Graph, LIFNode, Shape, SigmaDeltaNode, SpikeProductNode, refuse_features
from snn_deploy.graph.checks import PIPELINE_FILL, SIGMA_DELTA
from snn_deploy.graph.hardware import (
    COINCIDENCE, Lowering, Population, Projection, conv_pairs, lower, pair_weights, product_choices, sparse_pairs,
    sparse_weight, synapse_delays,
)
from snn_deploy.sims.backends.lava_models import FAST_MODELS
from snn_deploy.watchdog import TIMEOUT_ENV, Stalled, end_runtime, lava_infrastructure, timeout_from_env, watchdog

Progress = Callable[[int, int], None]
"""Called with (Lava steps done, total Lava steps) after each sample."""

MAX_CONV_GROUPS = 127
"""Lava's Conv model stores ``groups`` as int8: more groups wrap and its process hangs."""
CHANNEL_SLOTS = 2
"""Messages each Lava channel holds (Lava's default 64). Each is a shared-memory ring of that many full-size
messages, and a run of 64 steps or more touches them all: 64 slots of qkformer-cifar10-4-384's 786,432-neuron
coincidence arrays are 400 MB per channel. Lava's Loihi protocol moves one message per port and step, received in
the step it is sent, so two slots never block."""
SUPPORTED = ("recurrent synapses", SIGMA_DELTA, PIPELINE_FILL)
"""The netx features (``graph.checks.netx_features``) the builder computes."""
SUMS = "relay"
"""Residual sums as graded relays (Loihi 2's graded spikes); spike products as the graph's lowering
(``Graph.attention``: ``coincidence``, ``graded`` or ``packed``; ``token-serial`` is refused,
:func:`check_buildable`)."""
BUILT_LOWERINGS = ("coincidence", "graded", "packed")
CLOCK_BIAS = 1 << 6
"""A clock LIF's bias: one threshold unit (Lava compares v with vth << 6) per tick."""


def check_buildable(graph: Graph) -> None:
    """Refuse, in one line, a spike-product lowering this builder cannot build exactly from Loihi 2 processes."""
    unbuilt = sorted(set(product_choices(graph).values()) - set(BUILT_LOWERINGS))  # per product (--attention auto)
    if unbuilt:
        raise UserError(f"the Lava builder: attention lowering {unbuilt[0]!r} is priced by the mapper but a "
                        "whole network is not built in Lava: its sub-step ticks are ticks of every core, and Lava's "
                        "LIF/LIFReset decay and integrate bias on every tick, so the other layers would not hold their "
                        "state between steps (its product arrays alone are tested in Lava; docs/attention_lowerings.md)"
                        f"; export with --attention {' or '.join(BUILT_LOWERINGS)} to run it in Lava")


def lava_shape(shape: Shape) -> tuple[int, int, int]:
    """(C, H, W) -> Lava's (W, H, C)."""
    c, h, w = shape
    return w, h, c


def lava_index(flat: np.ndarray, shape: Shape) -> np.ndarray:
    """Flat (C, H, W) neuron indices -> flat indices in Lava's (W, H, C) order (how every flat port is laid out)."""
    c, h, w = np.unravel_index(flat, shape)
    return np.ravel_multi_index((w, h, c), lava_shape(shape))


def reset_offset(depth: int, steps: int) -> int:
    """``LIFReset`` offset for a LIF at ``depth`` in runs of ``steps`` steps per sample.

    LIFReset zeroes u and v when ``time_step % steps == offset``, before integrating that step's input. The source
    sends payload step ``t`` at time_step ``t + 1``, so functional step 0 of every sample reaches depth ``d`` at a
    time_step congruent to ``d + 1``.
    """
    return (depth + 1) % steps


@dataclass
class LavaNetwork:
    """A built network: the lowering, a process per population and per host source, the synapses, an extractor
    per LIF node on the chip (per population with ``every_population``), and the spikes of the LIFs the host
    computed."""

    lowering: Lowering
    processes: dict[str, AbstractProcess]
    synapses: list[AbstractProcess]
    recorders: dict[str, Extractor]
    host_spikes: dict[str, np.ndarray]
    samples: int
    steps: int
    """Lava steps that bring every sample through the deepest population recorded: samples * T + its depth."""
    biases: dict[int, list[LIFNode]] = field(default_factory=dict)
    """Lava time step -> the LIFs (built without bias) whose bias is set just before it: their step 0 (a network
    with recurrent synapses, see the module docstring)."""
    depths: dict[str, int] = field(default_factory=dict)
    """Depth of every population built (the lowering's, or a single layer's own when its inputs are replayed)."""

    @property
    def graph(self) -> Graph:
        return self.lowering.graph

    @property
    def source(self) -> AbstractProcess:
        """Any process of the network: Lava compiles and runs the whole connected network from it."""
        return next(iter(self.processes.values()))

    @property
    def lif_names(self) -> set[str]:
        """The LIF populations (their recorders bring spikes, or a sigma-delta layer's payloads)."""
        return {p.name for p in self.lowering.populations if p.kind == "lif"}

    def all_processes(self) -> list[AbstractProcess]:
        return [*self.processes.values(), *self.synapses, *self.recorders.values()]

    def chunks(self) -> list[int]:
        """Steps per run call: one sample each, then the tail that drains the pipeline (single steps up to the last
        step before which a bias is set)."""
        tail = self.steps - self.graph.T * self.samples
        if self.biases:
            first = max(self.biases) - 1
            return [1] * first + [self.steps - first]
        return [self.graph.T] * self.samples + ([tail] if tail else [])

    def run_config(self) -> Loihi2SimCfg:
        """Lava's fixed-point models, the bit-exact fast ones of :mod:`.lava_models` for its slow ones (Conv,
        Sparse, DelaySparse); the extractor's named per instance (its models carry no tag)."""
        models = {**FAST_MODELS, **{r: PyLoihiExtractorModel for r in self.recorders.values()}}
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)


@dataclass
class LavaRun:
    """Spikes of every LIF node, uint8 [T, B, C, H, W] in the functional time base, and where the time went."""

    spikes: dict[str, torch.Tensor]
    steps: int
    compile_s: float
    """Building the processes, compiling, starting the runtime (one OS process per Lava process)."""
    run_s: float
    """Stepping all samples and receiving their spikes."""
    wall_s: float
    """Everything, stopping the runtime included."""
    processes: list[str] = field(default_factory=list)
    """Class name of every Lava process built (layer by layer: every layer's), for the chip check."""
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    """With ``every_population``: what every other population (relays, coincidence, kv and gate arrays) sent,
    int64 [T, B, neurons] in the functional time base, neurons in Lava's flat order."""


def _conv(node: ConvNode, in_shape: Shape, graded: bool) -> Conv:
    """Lava ignores ``weight_exp`` in Conv and never clips its weights: the exponent goes into the weights."""
    weight, groups = node.folded_weight(), node.groups
    if groups > MAX_CONV_GROUPS:
        weight, groups = node.dense_kernel(weight), 1
    return _lava_conv(node.name, weight, groups, in_shape, node.shape, node.stride, node.padding, graded)


def _lava_conv(name: str, weight: np.ndarray, groups: int, in_shape: Shape, out_shape: Shape,
               stride: tuple[int, int], padding: tuple[int, int], graded: bool) -> Conv:
    """Lava's ``Conv`` of a torch-layout kernel [C_out, C_in / groups, kH, kW] from ``in_shape`` onto
    ``out_shape`` (checked)."""
    conv = Conv(weight=torch_conv_weight_to_lava(weight), input_shape=lava_shape(in_shape), stride=stride[::-1],
                padding=padding[::-1], groups=groups, num_message_bits=24 if graded else 0)
    if tuple(conv.a_out.shape) != lava_shape(out_shape):
        raise ValueError(f"{name}: Lava Conv gives {tuple(conv.a_out.shape)}, the lowering says "
                         f"{lava_shape(out_shape)}")
    return conv


def _kernel(pop: Population, proj: Projection, graded: bool) -> Conv:
    """A ``kernel`` projection (:func:`~snn_deploy.graph.hardware.kernel_read`) as Lava's ``Conv`` with its
    constant kernel (or its per-tap weights, :attr:`~snn_deploy.graph.hardware.Projection.taps`), one group per
    target channel group (any number of groups: the fast model keeps ``groups`` in int32,
    :class:`~snn_deploy.sims.backends.lava_models.FastConvModel`)."""
    channels = pop.shape[0]
    weight = np.full((channels, proj.channels.b, *proj.kernel), proj.weight, dtype=np.int64)
    if proj.taps:  # per (output, input) channel of a group, every group alike
        taps = np.asarray(proj.taps, dtype=np.int64).reshape(proj.channels.a, proj.channels.b, 1, 1)
        weight = np.tile(taps, (channels // proj.channels.a, 1, 1, 1))
    return _lava_conv(proj.synapse, weight, channels // proj.channels.a, proj.source_shape, pop.shape, proj.stride,
                      proj.padding, graded)


def _exact_bits(name: str, weight: np.ndarray, what: str) -> int:
    """Weight bits for Lava's Dense/Sparse that keep ``weight`` as it is (mixed signs keep 9), or a UserError."""
    mixed = bool((weight > 0).any() and (weight < 0).any())
    bits = 8 + mixed
    if weight.size and not np.array_equal(np.asarray(quantize_weights(weight, bits)), weight):
        raise UserError(f"the Lava builder: {what} {name!r} has weights Lava's Dense/Sparse would clip to 8 bits; "
                        "re-export it")
    return bits


def _recurrent_dense(node: ConvNode) -> Dense:
    """A recurrent conv as Lava's ``Dense`` from its LIF back to it (flat ports, (C, H, W) order): its one-step
    latency is the recurrent edge's delay. Its weights must pass Dense's 8-bit clip and truncation unchanged
    (mixed signs keep 9 bits); the exponent is Dense's ``weight_exp``."""
    n = int(np.prod(node.shape))
    weight = node.dense_kernel().astype(np.int64).reshape(n, n)
    bits = _exact_bits(node.name, weight, "recurrent synapse")
    return Dense(weights=weight, weight_exp=node.weight_exp, num_weight_bits=bits, num_message_bits=0)


def _sparse(graph: Graph, pop: Population, proj: Projection, delay: int, graded: bool) -> Sparse:
    """A channel-map projection, or a conv that needs a synaptic delay, as Lava's ``Sparse`` (``DelaySparse`` with
    a delay: ``delay`` for path balancing plus the lowering's own per synapse, :func:`synapse_delays`) on flat ports
    in Lava's order. A power-of-two factor of the weights goes into ``weight_exp``."""
    if proj.kind in ("sparse", "kernel"):
        rows, cols = sparse_pairs(proj, pop.shape)
        weight, exp = sparse_weight(pair_weights(proj, pop.shape, rows, cols), proj.weight_exp)
        delays = synapse_delays(proj, pop.shape, rows, cols) + delay
    else:
        node = graph[proj.synapse]
        rows, cols, weight = conv_pairs(node, proj.source_shape)
        exp, delays = node.weight_exp, np.full(rows.size, delay)
    bits = _exact_bits(proj.synapse, weight, "synapse")
    matrix = csr_matrix((weight, (lava_index(rows, pop.shape), lava_index(cols, proj.source_shape))),
                        shape=(pop.neurons, int(np.prod(proj.source_shape))))
    common = dict(weights=matrix, num_message_bits=24 if graded else 0, weight_exp=exp, num_weight_bits=bits)
    if delays.any():
        where = (lava_index(rows, pop.shape), lava_index(cols, proj.source_shape))
        return DelaySparse(delays=csr_matrix((delays, where), shape=matrix.shape), **common)
    return Sparse(**common)


def _lif(node: LIFNode, depth: int, steps: int, fill: bool, biased: bool = True) -> LIF:
    """LIFReset zeroing the state when each sample reaches the layer; a plain LIF in a pipeline-fill graph (one
    sample per run, every layer from the first time step, as lava-dl's netx without a reset). ``biased``: False
    builds it without bias (set later, see :attr:`LavaNetwork.biases`)."""
    shape = lava_shape(node.shape)
    common = dict(shape=shape, du=node.du, dv=node.dv, vth=node.vth,
                  bias_mant=np.broadcast_to(node.bias_mant if biased else 0, shape).copy(),
                  bias_exp=np.broadcast_to(node.bias_exp, shape).copy())
    if fill:
        return LIF(**common)
    return LIFReset(**common, reset_interval=steps, reset_offset=reset_offset(depth, steps))


def _sigma_delta(node: SigmaDeltaNode) -> Delta | Sigma | SigmaDelta:
    """Lava's sdn process of a sigma-delta population, as lava-dl's netx builds it (ReLU, no cumulative error)."""
    shape = lava_shape(node.shape)
    if node.mode == "sigma":
        return Sigma(shape=shape)
    exps = dict(vth=node.vth, spike_exp=node.spike_exp, state_exp=node.state_exp)
    if node.mode == "delta":
        return Delta(shape=shape, **exps)
    return SigmaDelta(shape=shape, bias=np.broadcast_to(np.asarray(node.bias_mant), shape).copy(), **exps)


def _population(pop: Population, graph: Graph, depth: int, biased: bool) -> AbstractProcess:
    flat = (pop.neurons,)
    if pop.kind == "lif":
        node = graph[pop.node]
        if isinstance(node, SigmaDeltaNode):
            return _sigma_delta(node)
        return _lif(node, depth, graph.T, graph.pipeline_fill, biased)
    if pop.neuron == "coincidence":
        return LIF(shape=flat, **COINCIDENCE)
    if pop.neuron == "graded":
        return GradedVec(shape=flat, vth=0)
    if pop.neuron == "product":
        return ProdNeuron(shape=flat, vth=0)
    if pop.neuron == "accumulator":
        return Sigma(shape=flat)
    if pop.neuron == "clock":  # v starts one bias short of the threshold: fires on tick 0, then every pop.bias ticks
        return LIF(shape=flat, du=0, dv=0, vth=pop.bias - 1, bias_mant=CLOCK_BIAS, v=(pop.bias - 1) * CLOCK_BIAS)
    raise TypeError(f"no Lava process for a {pop.kind!r} population of {pop.neuron} neurons")


def _frames(values: np.ndarray, total_steps: int) -> Source:
    """Samples [T, B, C, H, W] back to back, then zeros until the deepest layer has seen the last sample."""
    steps, batch = values.shape[:2]
    frames = np.zeros((total_steps, *values.shape[2:]), dtype=np.int32)
    frames[:steps * batch] = values.swapaxes(0, 1).reshape(steps * batch, *values.shape[2:])
    return Source(data=np.moveaxis(torch_image_to_lava(frames), 0, -1))


def host_layers(graph: Graph, payload: np.ndarray) -> dict[str, np.ndarray]:
    """Spikes [T, B, C, H, W] of the LIFs the host computes (``Graph.host``), with the chip's arithmetic
    (:mod:`snn_deploy.fixedpoint`; a sigma-delta layer's graded payloads): what the host sends the chip, as the
    input's RingBuffer does."""
    values: dict[str, np.ndarray] = {graph.input.name: payload.astype(np.int64)}
    for node in graph.nodes:
        if node.name not in graph.host:
            continue
        if isinstance(node, ConvNode):
            values[node.name] = conv_step(values[node.inputs[0]], node.folded_weight().astype(np.int64),
                                          stride=node.stride, padding=node.padding, groups=node.groups,
                                          graded=node.graded)
        elif isinstance(node, SigmaDeltaNode):  # graded payloads (an SDNN input layer)
            current = torch.from_numpy(np.asarray(sum(values[i] for i in node.inputs), dtype=np.int64))
            state, params = SigmaDeltaState.zeros(current.shape[1:]), node.sigma_delta_params()
            values[node.name] = torch.stack([sigma_delta_step(state, a, params) for a in current]).numpy()
        else:
            current = sum(values[i] for i in node.inputs)
            values[node.name] = lif_run(current, du=node.du, dv=node.dv, vth=node.vth,
                                        bias_mant=node.bias_mant.reshape(-1, 1, 1),
                                        bias_exp=node.bias_exp.reshape(-1, 1, 1))[0]
    return {name: values[name].astype(np.int64 if isinstance(graph[name], SigmaDeltaNode) else np.uint8)
            for name in graph.host if isinstance(graph[name], LIFNode)}


def _connect(out: OutPort, into: InPort) -> None:
    """Connect, reshaping the sender where the shapes differ (flat populations and synapses are in Lava's order)."""
    out = out if tuple(out.shape) == tuple(into.shape) else out.reshape(tuple(into.shape))
    out.connect(into)


def _in(process: AbstractProcess, index: int) -> InPort:
    """Where a population's ``index``-th projection arrives: a product neuron has one port per operand (its first
    projection is the first operand, every later one adds into the second: the ``packed`` lowering's fields); other
    neurons sum everything connected to their one InPort (several projections into one population)."""
    if isinstance(process, ProdNeuron):
        return process.a_in1 if index == 0 else process.a_in2
    return process.a_in


def build(graph: Graph, payload: np.ndarray | torch.Tensor, *, every_population: bool = False) -> LavaNetwork:
    """The Lava network for ``graph`` fed integer ``payload`` [T, B, C, H, W] (``snn_deploy.graph.input_sequence``).
    ``every_population``: record what every population sends, not only the LIF nodes' spikes."""
    refuse_features(graph, "the Lava builder", supported=SUPPORTED)
    check_buildable(graph)
    if graph.pipeline_fill and np.asarray(payload).shape[1] > 1:
        raise ValueError("a pipeline-fill graph runs one sample per Lava run (run() splits the batch)")
    payload = np.asarray(payload)
    expected = (graph.T, graph.input.shape)
    if payload.ndim != 5 or (payload.shape[0], tuple(payload.shape[2:])) != expected:
        raise ValueError(f"payload shape {payload.shape} does not fit [T={graph.T}, B, *{graph.input.shape}]")
    lowering = lower(graph, sums=SUMS)
    host = host_layers(graph, payload)
    return _network(lowering, lowering.populations, lowering.depths, {graph.input.name: payload, **host},
                    payload.shape[1], host, every_population)


def _network(lowering: Lowering, pops: Iterable[Population], depths: dict[str, int], values: dict[str, np.ndarray],
             samples: int, host: dict[str, np.ndarray], every_population: bool = False) -> LavaNetwork:
    """Populations ``pops`` of ``lowering`` at ``depths``, every other source they read sent from the host with
    ``values`` [T, B, C, H, W] (the input payload, host layers' spikes; for one layer alone, the simulator's).
    Extractors record the LIFs, or every population."""
    graph = lowering.graph
    pops = list(pops)
    lifs = [p for p in pops if p.kind == "lif"]
    recorded = pops if every_population else lifs
    last = max((depths[p.name] for p in recorded), default=0)
    total = samples * graph.T + last
    graded = {graph.input.name, *(p.name for p in lowering.populations if p.graded),
              *(n.name for n in graph.of_kind(SigmaDeltaNode))}
    names = {p.name for p in pops}
    processes: dict[str, AbstractProcess] = {}
    for pop in pops:
        for proj in pop.projections:
            if proj.source not in names and proj.kind != "recurrent" and proj.source not in processes:
                processes[proj.source] = _frames(values[proj.source], total)
    # biases wait for step 0 where recurrent synapses would feed fill spikes into it; a pipeline-fill graph
    # computes those spikes (lava-dl's netx does the same)
    deferred = not graph.pipeline_fill and any(p.kind == "recurrent" for pop in lifs for p in pop.projections)
    biases: dict[int, list[LIFNode]] = {}
    synapses: list[AbstractProcess] = []
    for pop in pops:
        neuron = processes[pop.name] = _population(pop, graph, depths[pop.name], biased=not deferred)
        if deferred and pop.kind == "lif" and graph[pop.node].bias_mant.any():
            biases.setdefault(depths[pop.name] + 1, []).append(graph[pop.node])
        for index, proj in enumerate(pop.projections):
            source = processes[proj.source]
            delay = lowering.delay(pop, proj, depths)
            if proj.kind == "recurrent":
                synapse = _recurrent_dense(graph[proj.synapse])
            elif proj.kind == "conv" and not delay:
                synapse = _conv(graph[proj.synapse], proj.source_shape, proj.source in graded)
            elif proj.kind == "kernel" and not delay:
                synapse = _kernel(pop, proj, proj.source in graded)
            else:
                synapse = _sparse(graph, pop, proj, delay, proj.source in graded)
            _connect(source.s_out, synapse.s_in)
            _connect(synapse.a_out, _in(neuron, index))
            synapses.append(synapse)
    recorders = {}
    for pop in recorded:
        out = processes[pop.name].s_out
        recorders[pop.name] = Extractor(shape=tuple(out.shape), buffer_size=max(graph.T, last))
        out.connect(recorders[pop.name].in_port)
    return LavaNetwork(lowering, processes, synapses, recorders, host, samples, total, biases, depths)


def run(graph: Graph, payload: np.ndarray | torch.Tensor, *, progress: Progress | None = None,
        timeout_s: float | None = None, every_population: bool = False) -> LavaRun:
    """Run integer ``payload`` [T, B, C, H, W] through ``graph`` in Lava, all samples in one compiled runtime.

    Returns every LIF node's spikes re-aligned to the functional time base: equal to ``simulate(graph, x).spikes``;
    with ``every_population`` also what every other population sent (:attr:`LavaRun.outputs`).
    A Lava worker that crashes, or a call that makes no progress for ``timeout_s`` seconds (default:
    :func:`snn_deploy.watchdog.timeout_from_env`), ends the run with a :class:`UserError` instead of Lava's hang.
    """
    limit = timeout_s if timeout_s is not None else timeout_from_env()
    if (graph.pipeline_fill or any(n.recurrent for n in graph.of_kind(ConvNode))) and np.shape(payload)[1] > 1:
        return _one_by_one(graph, payload, progress, limit, every_population)
    start = time.perf_counter()
    net = build(graph, payload, every_population=every_population)
    spikes, compiled, stepped = _execute(net, progress, limit)
    outputs = {name: spikes.pop(name).numpy() for name in net.recorders if name not in net.lif_names}
    return LavaRun(spikes, net.steps, compiled - start, stepped - compiled, time.perf_counter() - start,
                   [type(p).__name__ for p in net.all_processes()], outputs)


def _execute(net: LavaNetwork, progress: Progress | None, limit: float) -> tuple[dict[str, torch.Tensor], float,
                                                                                 float]:
    """Compile and step ``net``; what every recorder received in the functional time base (LIFs' spikes, host
    layers' included, [T, B, C, H, W]; other populations' payloads [T, B, neurons]), and when compiling and stepping
    ended."""
    graph = net.graph
    source = net.source
    frames: dict[str, list[np.ndarray]] = {name: [] for name in net.recorders}
    stalled = None
    try:
        with watchdog(limit) as watch:
            source.create_runtime(run_cfg=net.run_config(), compile_config={"pypy_channel_size": CHANNEL_SLOTS})
            watch.workers = list(lava_infrastructure(source).actors)
            compiled = time.perf_counter()
            stop = True  # a stalled runtime cannot be stopped: its workers are killed instead
            try:
                with console_progress("Lava", net.steps, show=progress is None) as advance:  # a caller's callback
                    done = 0
                    for chunk in net.chunks():
                        watch.alive()
                        for lif in net.biases.get(done + 1, []):
                            net.processes[lif.name].bias_mant.set(
                                np.broadcast_to(lif.bias_mant, lava_shape(lif.shape)).copy())
                        source.run(condition=RunSteps(num_steps=chunk))
                        for name, recorder in net.recorders.items():
                            received = np.stack([recorder.receive() for _ in range(chunk)])
                            spiking = name in net.lif_names and not isinstance(graph[name], SigmaDeltaNode)
                            frames[name].append(received.astype(np.uint8 if spiking else np.int64))
                        done += chunk
                        advance(chunk)
                        if progress:
                            progress(done, net.steps)
                stepped = time.perf_counter()
            except Stalled:
                stop = False
                raise
            finally:
                if stop:
                    watch.workers = []  # they end now, as they should
                    watch.alive()
                    source.stop()
    except Stalled as exc:
        stalled = exc
    if stalled is not None:
        end_runtime(source)
        raise UserError(f"Lava stopped answering ({stalled}); the run was ended. Check `snn-deploy doctor`; for a "
                        f"network whose steps legitimately take longer, set ${TIMEOUT_ENV} (seconds, now "
                        f"{limit:g})")
    spikes = {name: _aligned(np.concatenate(f), net.depths[name], graph.T, net.samples, name in net.lif_names)
              for name, f in frames.items()}
    spikes.update({name: torch.from_numpy(s) for name, s in net.host_spikes.items()})
    return spikes, compiled, stepped


def run_layers(graph: Graph, payload: np.ndarray | torch.Tensor, recorded: dict[str, np.ndarray | torch.Tensor], *,
               progress: Progress | None = None, timeout_s: float | None = None,
               budget_s: float | None = None) -> LavaRun:
    """Each LIF layer of ``graph`` alone in Lava, one runtime at a time, driven by ``recorded`` spikes [T, B, C, H, W]
    of every LIF node (the simulator's) for what it reads from other layers: memory is bounded by the largest
    layer, not the network. A layer is its LIF population with its spike product's arrays and the relays listed
    before it (:meth:`~snn_deploy.graph.hardware.Lowering.layers`); a relay read from another layer is replayed as
    the sum of its summands. Returns each LIF's own spikes, which equal a whole run's when every layer's inputs are
    the ones recorded. ``progress`` is called with (layers done, layers); without it a bar with an ETA is drawn.
    ``budget_s``: no layer starts after that many seconds; the spikes returned are the layers done."""
    refuse_features(graph, "the Lava builder", supported=SUPPORTED)
    check_buildable(graph)
    payload = np.asarray(payload)
    limit = timeout_s if timeout_s is not None else timeout_from_env()
    samples = payload.shape[1]
    if (graph.pipeline_fill or any(n.recurrent for n in graph.of_kind(ConvNode))) and samples > 1:
        if budget_s is not None:
            raise UserError("a time budget applies to one sample of a recurrent network at a time")
        runs = [run_layers(graph, payload[:, i:i + 1], {n: np.asarray(s)[:, i:i + 1] for n, s in recorded.items()},
                           progress=progress, timeout_s=limit) for i in range(samples)]
        return LavaRun({n: torch.cat([r.spikes[n] for r in runs], 1) for n in runs[0].spikes},
                       sum(r.steps for r in runs), sum(r.compile_s for r in runs), sum(r.run_s for r in runs),
                       sum(r.wall_s for r in runs), [p for r in runs for p in r.processes])
    start = time.perf_counter()
    lowering = lower(graph, sums=SUMS)
    host = host_layers(graph, payload)
    values = {graph.input.name: payload, **{n: np.asarray(s) for n, s in recorded.items()}, **host}
    for pop in lowering.populations:
        if pop.kind == "sum":
            values[pop.name] = sum(values[p.source].astype(np.int64) for p in pop.projections)
    layers = lowering.layers()
    spikes = {name: torch.from_numpy(s) for name, s in host.items()}
    steps = compile_s = run_s = 0.0
    built: list[str] = []
    with console_progress("Lava, layer by layer", len(layers), show=progress is None) as advance:
        for done, layer in enumerate(layers, 1):
            began = time.perf_counter()
            if budget_s is not None and began - start > budget_s:
                break
            net = _network(lowering, layer, lowering.layer_depths(layer), values, samples, {})
            got, compiled, stepped = _execute(net, lambda *_: None, limit)
            spikes.update(got)
            built += [type(p).__name__ for p in net.all_processes()]
            steps, compile_s, run_s = steps + net.steps, compile_s + compiled - began, run_s + stepped - compiled
            del net
            advance(1)
            if progress:
                progress(done, len(layers))
    return LavaRun(spikes, int(steps), compile_s, run_s, time.perf_counter() - start, built)


def _one_by_one(graph: Graph, payload: np.ndarray | torch.Tensor, progress: Progress | None, limit: float,
                every_population: bool = False) -> LavaRun:
    """One runtime per sample: a recurrent Dense delivers the last step's spikes of a sample after LIFReset's reset,
    into the next sample, where the functional graph (and a fresh chip) starts from nothing; a pipeline-fill graph
    runs each sample from Lava's first step."""
    runs = [run(graph, payload[:, i:i + 1], progress=progress, timeout_s=limit, every_population=every_population)
            for i in range(np.shape(payload)[1])]
    spikes = {name: torch.cat([r.spikes[name] for r in runs], 1) for name in runs[0].spikes}
    outputs = {name: np.concatenate([r.outputs[name] for r in runs], 1) for name in runs[0].outputs}
    return LavaRun(spikes, sum(r.steps for r in runs), sum(r.compile_s for r in runs), sum(r.run_s for r in runs),
                   sum(r.wall_s for r in runs), outputs=outputs)


def _aligned(frames: np.ndarray, depth: int, steps: int, samples: int, image: bool = True) -> torch.Tensor:
    """Recorded (Lava steps, W, H, C) -> [T, B, C, H, W] (``image``; else (Lava steps, N) -> [T, B, N]): sample i's
    step t sits at Lava step i T + t + depth."""
    frames = frames[depth:depth + steps * samples]
    frames = frames.reshape(samples, steps, *frames.shape[1:]).swapaxes(0, 1)
    return torch.from_numpy(torch_image_to_lava(frames) if image else np.ascontiguousarray(frames))
