"""Run a data set through a deployed graph in batches and keep the activity the cost model needs.

A hardware estimate needs activity counted the way the chip sees it
(:class:`~snn_deploy.graph.EventCounts`): a sum node has no hardware, so a conv reading a residual
stream receives every summand's spikes as separate events, and the coincidence-neuron model of spike products needs
k-v coincidences, non-zero k^T v entries and gated q events. The simulator counts these in its one pass
(``simulate(counts=True)``); other backends' recorded spikes are counted by
:func:`~snn_deploy.sims.backends.simulator.count_events` with the same functions. Backends come from
:mod:`snn_deploy.sims.backends.registry`.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process runs a contiguous shard of the samples and the counts are
summed with gloo; every process returns the totals, and callers write from rank 0 only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snn_deploy.console import progress
from snn_deploy.data.tensors import Input, dataset_tensors
from snn_deploy.errors import UserError
from snn_deploy.graph import (
    PRODUCT_COUNTS, Activity, ConvNode, EventCounts, Graph, LIFNode, Raster, SigmaDeltaNode, SpikeProductNode,
    SumNode, conv_sources, input_sequence,
)
from snn_deploy.graph.hardware import packed_count_keys
from snn_deploy.sims.backends import registry as backends
from snn_deploy.sims.backends.simulator import (
    LIF_REGISTERS, SIGMA_DELTA_REGISTERS, ConvKernel, count_events, readout_input,
)

RASTER_LAYERS, RASTER_NEURONS, RASTER_SAMPLES = 6, 8, 4


def bundle_tensors(graph: Graph, dataset: str, split: str, count: int, data_dir: Path | None):
    """Up to ``count`` samples of ``split`` shaped for ``graph``'s input (bundles carry no model config)."""
    c, h, w = graph.input.shape
    if h != w:
        raise UserError(f"the bundle's input is {h} x {w}; data sets provide square inputs only")
    return dataset_tensors(Input(c, h, graph.T), dataset, split, count, data_dir)


def _zeros(graph: Graph, backend: str, T: int) -> Activity:
    act = Activity(T, backend, input_events=np.zeros(T, dtype=np.int64))
    for node in graph.nodes:
        if isinstance(node, LIFNode):
            act.spikes[node.name] = np.zeros(T, dtype=np.int64)
            own = SIGMA_DELTA_REGISTERS if isinstance(node, SigmaDeltaNode) else LIF_REGISTERS
            act.registers.update({(node.name, r): np.zeros(2, dtype=np.int64) for r in own})
        elif isinstance(node, ConvNode):
            for s in conv_sources(graph, node):
                act.conv_events[(node.name, s)] = np.zeros(T, dtype=np.int64)
        elif isinstance(node, SumNode):
            act.sum_events[node.name] = np.zeros(T, dtype=np.int64)
        elif isinstance(node, SpikeProductNode):
            act.products[node.name] = {c: np.zeros(T, dtype=np.int64)
                                       for c in (*PRODUCT_COUNTS, *packed_count_keys(node))}
    return act


def _raster(graph: Graph, spikes: dict[str, torch.Tensor]) -> Raster:
    """The most active neurons of a few LIF layers spread over the network, over the first samples of a batch."""
    lifs = [n.name for n in graph.of_kind(LIFNode)]
    picks = [lifs[i] for i in np.linspace(0, len(lifs) - 1, min(RASTER_LAYERS, len(lifs))).round().astype(int)]
    neurons, rows = [], []
    for name in dict.fromkeys(picks):
        s = spikes[name][:, :RASTER_SAMPLES].flatten(2)  # [T, B, neurons]
        top = s.sum((0, 1), dtype=torch.int64).argsort(descending=True, stable=True)[:RASTER_NEURONS]
        for i in top.tolist():
            neurons.append((name, i))
            rows.append(s[:, :, i].transpose(0, 1).reshape(-1).numpy())
    return Raster(neurons, np.stack(rows).astype(np.uint8))


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes."""

    rank: int = 0
    world: int = 1

    def slice(self, n: int) -> slice:
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)


def init_shard() -> Shard:
    """Join the process group when started by torchrun (gloo, CPU); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Shard(dist.get_rank(), dist.get_world_size())


def _reduce(act: Activity, shard: Shard) -> None:
    """Sum every count (and take the slowest backend time) over the processes, in place."""
    if shard.world == 1:
        return
    import torch.distributed as dist

    arrays = act.arrays()
    flat = torch.from_numpy(np.concatenate([np.array([act.samples, act.correct]), *arrays]))
    dist.all_reduce(flat)
    act.samples, act.correct = int(flat[0]), int(flat[1])
    offset = 2
    for a in arrays:
        a[:] = flat[offset:offset + a.size].numpy()
        offset += a.size
    slowest = torch.tensor([act.backend_s], dtype=torch.float64)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    worst = torch.tensor([int(act.registers[k][1]) for k in sorted(act.registers)], dtype=torch.int64)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    for key, value in zip(sorted(act.registers), worst.tolist()):
        act.registers[key][1] = value
    act.backend_s, act.processes = float(slowest), shard.world


def _first_outputs(act: Activity, graph: Graph, spikes: dict[str, torch.Tensor], logits: torch.Tensor | None) -> None:
    """Keep the first sample's logits and the readout's input spike counts (a backend that does not return the
    readout's input spikes leaves the counts out)."""
    if graph.classifier is None or logits is None:
        return
    act.first_logits = logits[0].double().numpy()
    try:
        act.first_counts = readout_input(graph, spikes)[:, 0].sum(0).flatten().numpy()
    except KeyError:
        act.first_counts = None


def run_dataset(graph: Graph, x: torch.Tensor, labels: torch.Tensor | None, *, backend: str = "sim",
                batch_size: int = 32, shard: Shard = Shard()) -> Activity:
    """Run samples ``x`` ([N, C, H, W] images held for T steps, or [steps, N, C, H, W] per step) with ``labels``
    through ``graph``. Without labels, or for a graph without a classifier, accuracy is None.

    Returns the totals over all processes. The raster holds the first samples of rank 0's shard.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be positive, got {batch_size}")
    runner = backends.get(backend, graph_only=True)
    kernels: dict[str, ConvKernel] = {}  # for counting the spikes of backends that do not count, made once
    axis = 1 if x.dim() == 5 else 0
    part = shard.slice(x.shape[axis])
    x = x.narrow(axis, part.start, part.stop - part.start)
    if graph.classifier is None:
        labels = None
    labels = labels[part] if labels is not None else None
    act = _zeros(graph, backend, x.shape[0] if x.dim() == 5 else graph.T)
    act.labelled = labels is not None
    n = int(x.shape[axis])
    with progress("simulating", n, shard.rank == 0) as advance:
        for start in range(0, n, batch_size):
            xb = x.narrow(axis, start, min(batch_size, n - start))
            began = time.perf_counter()
            if runner.run_counted is not None:
                spikes, logits, events = runner.run_counted(graph, xb)
                act.backend_s += time.perf_counter() - began
            else:
                spikes, logits = runner.run(graph, xb, None)
                act.backend_s += time.perf_counter() - began
                kernels = kernels or {n.name: ConvKernel(n, graph[n.inputs[0]].shape)
                                      for n in graph.of_kind(ConvNode)}
                events = count_events(graph, input_sequence(graph, xb), spikes, kernels)
            act.samples += int(xb.shape[axis])
            if labels is not None and logits is not None:
                act.correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
            act.add(events)
            if act.raster is None:
                act.raster = _raster(graph, spikes)
                _first_outputs(act, graph, spikes, logits)
            advance(int(xb.shape[axis]))
    _reduce(act, shard)
    return act
