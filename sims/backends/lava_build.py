"""A :class:`~snn_deploy.graph.Graph` as a Lava process network, run bit-exactly in Lava's CPU models.

:func:`build` maps each node to a Lava process in Lava's (W, H, C) layout: the input to a ``RingBuffer`` source,
convolutions to ``Conv``, LIF populations to ``LIFReset``, sums, spike products and path-balancing delays to the
processes of :mod:`snn_deploy.sims.backends.lava_procs`. The readout stays on the host and is not built. Nodes placed
on the host (``Graph.host``: the analog input layer under ``export --input-on-host``) are built as the same CPU
processes as everything else: here they stand for the host code that computes them, with the same arithmetic and
timing, so the spikes do not change. A recurrent conv is a ``Dense`` from its ``LIFReset`` back to it (the
synapse's one-step latency is the recurrent edge's delay); such a network runs one sample per runtime
(:func:`_one_by_one`). Its LIFs also start without biases, each given its bias when the sample's step 0
reaches it (:attr:`LavaNetwork.biases`): a layer firing on its bias while the pipeline fills would otherwise feed
those spikes back into step 0, where the functional graph has no recurrent input. A pipeline-fill graph keeps its
biases from the first step: there the fill is part of the graph (the simulator feeds those spikes back too).

Timing. Conv and the spike product deliver one step late, so node ``n`` shows functional step ``t`` at Lava step
``t + depth(n)`` (0-based; Lava's ``time_step`` is that plus one). A node whose inputs have different depths gets
delay lines on the shallower ones (arrival depth of an edge = depth of its producer), so every input shows the
same functional step in the same Lava step.

Spikes come back through one ``Extractor`` per LIF, drained after every sample: a sink ``RingBuffer`` is read with
``Var.get``, which Lava transfers one element at a time (about 20 s for spikformer-tiny's 0.5 M recorded values).

Samples run back to back in one runtime: sample ``i`` occupies input steps ``[i T, (i + 1) T)``. Every LIF zeroes
``u`` and ``v`` when functional step 0 of a sample reaches it (:func:`reset_offset`); Conv buffers, delay lines
and relays hold no more than the latency they model, so nothing of one sample reaches the next one's aligned
steps. What a layer computes before its first reset (biases integrating while the input is still in flight) is
discarded by that reset.

Sigma-delta populations (lava-dl netx's SDNN layers) become Lava's ``Delta``, ``SigmaDelta`` or ``Sigma``, which
have no reset; their graphs are pipeline-fill graphs (:attr:`Graph.pipeline_fill`), built with plain ``LIF`` and
run one sample per runtime from Lava's first step, as lava-dl's own loader runs them. Their graded payloads come
back (int64) where a LIF's spikes do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
# (lava imports work: importing this package ran snn_deploy's Lava compatibility finder first)
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIF, LIFReset
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta

from snn_deploy.console import progress as console_progress
from snn_deploy.errors import UserError
from snn_deploy.sims.backends.lava_procs import DelayLine, SpikeProduct, SumRelay, model_map
from snn_deploy.fixedpoint.synapse import quantize_weights, torch_conv_weight_to_lava, torch_image_to_lava
from snn_deploy.graph import (
    ConvNode, Graph, InputNode, LIFNode, Node, ReadoutNode, Shape, SigmaDeltaNode, SpikeProductNode, SumNode,
    refuse_features,
)
from snn_deploy.graph.checks import PIPELINE_FILL, SIGMA_DELTA
from snn_deploy.watchdog import TIMEOUT_ENV, Stalled, end_processes, timeout_from_env, watchdog, within

Progress = Callable[[int, int], None]
"""Called with (Lava steps done, total Lava steps) after each sample."""

MAX_CONV_GROUPS = 127
"""Lava's Conv model stores ``groups`` as int8: more groups wrap and its process hangs."""


def lava_shape(shape: Shape) -> tuple[int, int, int]:
    """(C, H, W) -> Lava's (W, H, C)."""
    c, h, w = shape
    return w, h, c


def reset_offset(depth: int, steps: int) -> int:
    """``LIFReset`` offset for a LIF at ``depth`` in runs of ``steps`` steps per sample.

    LIFReset zeroes u and v when ``time_step % steps == offset``, before integrating that step's input. The source
    sends payload step ``t`` at time_step ``t + 1``, so functional step 0 of every sample reaches depth ``d`` at a
    time_step congruent to ``d + 1``.
    """
    return (depth + 1) % steps


@dataclass
class LavaNetwork:
    """A built network: the process of each node (readout excluded), delay lines, and an extractor per LIF node."""

    graph: Graph
    processes: dict[str, AbstractProcess]
    delays: list[DelayLine]
    recorders: dict[str, Extractor]
    samples: int
    steps: int
    """Lava steps that bring every sample through the deepest LIF: samples * T + that LIF's depth."""
    biases: dict[int, list[LIFNode]] = field(default_factory=dict)
    """Lava time step -> the LIFs (built without bias) whose bias is set just before it: their step 0 (a network
    with recurrent synapses, see the module docstring)."""

    @property
    def source(self) -> Source:
        return self.processes[self.graph.input.name]  # type: ignore[return-value]

    def all_processes(self) -> list[AbstractProcess]:
        return [*self.processes.values(), *self.delays, *self.recorders.values()]

    def chunks(self) -> list[int]:
        """Steps per run call: one sample each, then the tail that drains the pipeline (single steps up to the last
        step before which a bias is set)."""
        tail = self.steps - self.graph.T * self.samples
        if self.biases:
            first = max(self.biases) - 1
            return [1] * first + [self.steps - first]
        return [self.graph.T] * self.samples + ([tail] if tail else [])

    def run_config(self) -> Loihi2SimCfg:
        """Fixed-point models; ours and the extractor's named per instance (the extractor's models carry no tag)."""
        models = {**model_map(self.all_processes()), **{r: PyLoihiExtractorModel for r in self.recorders.values()}}
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


def _conv(node: ConvNode, in_shape: Shape) -> Conv:
    """Lava ignores ``weight_exp`` in Conv and never clips its weights: the exponent goes into the weights."""
    weight, groups = node.folded_weight(), node.groups
    if groups > MAX_CONV_GROUPS:
        weight, groups = node.dense_kernel(weight), 1
    conv = Conv(weight=torch_conv_weight_to_lava(weight), input_shape=lava_shape(in_shape),
                stride=node.stride[::-1], padding=node.padding[::-1], groups=groups,
                num_message_bits=24 if node.graded else 0)
    if tuple(conv.a_out.shape) != lava_shape(node.shape):
        raise ValueError(f"{node.name}: Lava Conv gives {tuple(conv.a_out.shape)}, graph says {lava_shape(node.shape)}")
    return conv


def _recurrent_dense(node: ConvNode) -> Dense:
    """A recurrent conv as Lava's ``Dense`` from its LIF back to it (flat ports, (C, H, W) order): its one-step
    latency is the recurrent edge's delay. Its weights must pass Dense's 8-bit clip and truncation unchanged
    (mixed signs keep 9 bits); the exponent is Dense's ``weight_exp``."""
    n = int(np.prod(node.shape))
    weight = node.dense_kernel().astype(np.int64).reshape(n, n)
    mixed = bool((weight > 0).any() and (weight < 0).any())
    bits = 8 + mixed
    if not np.array_equal(np.asarray(quantize_weights(weight, bits)), weight):
        raise UserError(f"the Lava builder: recurrent synapse {node.name!r} has weights Lava's Dense would clip to "
                        "8 bits; re-export it")
    return Dense(weights=weight, weight_exp=node.weight_exp, num_weight_bits=bits, num_message_bits=0)


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


def _source(payload: np.ndarray, total_steps: int) -> Source:
    """Samples back to back, then zeros until the deepest layer has seen the last sample."""
    steps, batch = payload.shape[:2]
    frames = np.zeros((total_steps, *payload.shape[2:]), dtype=np.int32)
    frames[:steps * batch] = payload.swapaxes(0, 1).reshape(steps * batch, *payload.shape[2:])
    return Source(data=np.moveaxis(torch_image_to_lava(frames), 0, -1))


def _out_port(process: AbstractProcess) -> OutPort:
    return process.a_out if isinstance(process, (Conv, Dense, SpikeProduct)) else process.s_out


def _in_port(process: AbstractProcess, index: int) -> InPort:
    """Where a node's ``index``-th input connects: the spike product has one port per operand; other processes have
    one InPort, which sums everything connected to it (the several currents into one LIF, the summands of a sum)."""
    if isinstance(process, SpikeProduct):
        return (process.q_in, process.k_in, process.v_in)[index]
    return process.s_in if isinstance(process, Conv) else process.a_in


def build(graph: Graph, payload: np.ndarray | torch.Tensor) -> LavaNetwork:
    """The Lava network for ``graph`` fed integer ``payload`` [T, B, C, H, W] (``snn_deploy.graph.input_sequence``)."""
    refuse_features(graph, "the Lava builder", supported=("recurrent synapses", SIGMA_DELTA, PIPELINE_FILL))
    if graph.pipeline_fill and np.asarray(payload).shape[1] > 1:
        raise ValueError("a pipeline-fill graph runs one sample per Lava run (run() splits the batch)")
    payload = np.asarray(payload)
    expected = (graph.T, graph.input.shape)
    if payload.ndim != 5 or (payload.shape[0], tuple(payload.shape[2:])) != expected:
        raise ValueError(f"payload shape {payload.shape} does not fit [T={graph.T}, B, *{graph.input.shape}]")
    depths = graph.depths()
    lif_depth = max((depths[n.name] for n in graph.of_kind(LIFNode)), default=0)
    samples = payload.shape[1]
    total = samples * graph.T + lif_depth
    processes: dict[str, AbstractProcess] = {}
    delays: dict[tuple[str, int], DelayLine] = {}

    def arriving(name: str, delay: int) -> OutPort:
        """The output of node ``name``, delayed by ``delay`` steps (one shared delay line per (node, delay))."""
        port = _out_port(processes[name])
        if delay == 0:
            return port
        if (name, delay) not in delays:
            line = delays[(name, delay)] = DelayLine(shape=tuple(port.shape), delay=delay)
            port.connect(line.s_in)
        return delays[(name, delay)].s_out

    # biases wait for step 0 where recurrent synapses would feed fill spikes into it; a pipeline-fill graph
    # computes those spikes (lava-dl's netx does the same)
    deferred = not graph.pipeline_fill and any(n.recurrent for n in graph.of_kind(ConvNode))
    biases: dict[int, list[LIFNode]] = {}
    for node in graph.nodes:
        process = _process(node, graph, depths, payload, total, biased=not deferred)
        if deferred and isinstance(node, LIFNode) and node.bias_mant.any():
            biases.setdefault(depths[node.name] + 1, []).append(node)
        if process is None:
            continue
        processes[node.name] = process
        if isinstance(process, Dense):  # a recurrent synapse: from its LIF back into it
            lif = processes[node.inputs[0]]
            lif.s_out.flatten().connect(process.s_in)
            process.a_out.reshape(tuple(lif.a_in.shape)).connect(lif.a_in)
            continue
        base = max((depths[i] for i in node.inputs), default=0)
        for index, name in enumerate(node.inputs):
            arriving(name, base - depths[name]).connect(_in_port(process, index))
    recorders = {}
    for node in graph.of_kind(LIFNode):
        recorders[node.name] = Extractor(shape=lava_shape(node.shape), buffer_size=max(graph.T, lif_depth))
        processes[node.name].s_out.connect(recorders[node.name].in_port)
    return LavaNetwork(graph, processes, list(delays.values()), recorders, samples, total, biases)


def _process(node: Node, graph: Graph, depths: dict[str, int], payload: np.ndarray, total: int, biased: bool
             ) -> AbstractProcess | None:
    if isinstance(node, InputNode):
        return _source(payload, total)
    if isinstance(node, ConvNode):
        return _recurrent_dense(node) if node.recurrent else _conv(node, graph[node.inputs[0]].shape)
    if isinstance(node, SigmaDeltaNode):
        return _sigma_delta(node)
    if isinstance(node, LIFNode):
        return _lif(node, depths[node.name], graph.T, graph.pipeline_fill, biased)
    if isinstance(node, SumNode):
        return SumRelay(shape=lava_shape(node.shape))
    if isinstance(node, SpikeProductNode):
        return SpikeProduct(shape=lava_shape(node.shape), heads=node.heads, multiplier=node.multiplier)
    if isinstance(node, ReadoutNode):
        return None
    raise TypeError(f"no Lava process for node kind {node.kind!r}")


def run(graph: Graph, payload: np.ndarray | torch.Tensor, *, progress: Progress | None = None,
        timeout_s: float | None = None) -> LavaRun:
    """Run integer ``payload`` [T, B, C, H, W] through ``graph`` in Lava, all samples in one compiled runtime.

    Returns every LIF node's spikes re-aligned to the functional time base: equal to ``simulate(graph, x).spikes``.
    A Lava worker that crashes, or a call that makes no progress for ``timeout_s`` seconds (default:
    :func:`snn_deploy.watchdog.timeout_from_env`), ends the run with a :class:`UserError` instead of Lava's hang.
    """
    limit = timeout_s if timeout_s is not None else timeout_from_env()
    if (graph.pipeline_fill or any(n.recurrent for n in graph.of_kind(ConvNode))) and np.shape(payload)[1] > 1:
        return _one_by_one(graph, payload, progress, limit)
    start = time.perf_counter()
    net = build(graph, payload)
    source = net.source
    frames: dict[str, list[np.ndarray]] = {name: [] for name in net.recorders}
    stalled = None
    try:
        with watchdog(limit) as watch:
            source.create_runtime(run_cfg=net.run_config())
            watch.workers = list(_infrastructure(source).actors)
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
                            graded = isinstance(graph[name], SigmaDeltaNode)  # payloads, not spikes
                            frames[name].append(received.astype(np.int64 if graded else np.uint8))
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
        _end_runtime(source)
        raise UserError(f"Lava stopped answering ({stalled}); the run was ended. Check `snn-deploy doctor`; for a "
                        f"network whose steps legitimately take longer, set ${TIMEOUT_ENV} (seconds, now "
                        f"{limit:g})")
    depths = graph.depths()
    spikes = {name: _aligned(np.concatenate(f), depths[name], graph.T, net.samples) for name, f in frames.items()}
    return LavaRun(spikes, net.steps, compiled - start, stepped - compiled, time.perf_counter() - start)


def _one_by_one(graph: Graph, payload: np.ndarray | torch.Tensor, progress: Progress | None, limit: float) -> LavaRun:
    """One runtime per sample: a recurrent Dense delivers the last step's spikes of a sample after LIFReset's reset,
    into the next sample, where the functional graph (and a fresh chip) starts from nothing; a pipeline-fill graph
    runs each sample from Lava's first step."""
    runs = [run(graph, payload[:, i:i + 1], progress=progress, timeout_s=limit) for i in range(np.shape(payload)[1])]
    spikes = {name: torch.cat([r.spikes[name] for r in runs], 1) for name in runs[0].spikes}
    return LavaRun(spikes, sum(r.steps for r in runs), sum(r.compile_s for r in runs), sum(r.run_s for r in runs),
                   sum(r.wall_s for r in runs))


def _infrastructure(source: Source):
    """Lava's message infrastructure of the running network: its actors (one OS process per Lava process and the
    runtime service) and its shared-memory manager. Lava offers no public handle on them."""
    return source.runtime._messaging_infrastructure


def _end_runtime(source: Source) -> None:
    """Kill the workers of a stalled runtime (stopping it would wait for them forever), then release its shared
    memory through Lava's own manager so nothing is left in /dev/shm."""
    infrastructure = _infrastructure(source)
    end_processes(list(infrastructure.actors))
    within(10, infrastructure.smm.shutdown)


def _aligned(frames: np.ndarray, depth: int, steps: int, samples: int) -> torch.Tensor:
    """Recorded (Lava steps, W, H, C) -> [T, B, C, H, W]: sample i's step t sits at Lava step i T + t + depth."""
    frames = frames[depth:depth + steps * samples]
    frames = frames.reshape(samples, steps, *frames.shape[1:]).swapaxes(0, 1)
    return torch.from_numpy(torch_image_to_lava(frames))
