"""The ``netx`` backend: a netx file run by lava-dl's own loader (``netx.hdf5.Network``) in Lava's fixed-point CPU
models, spikes read back in the graph's functional time base.

This is the independent reference for an imported network: Intel's loader builds the Lava processes from the file,
nothing of snn-deploy's graph is used except to name and shape the layers it reads back. Each ``Network.layers``
entry is one LIF node of :func:`~snn_deploy.exporters.frontends.netx.read_netx`'s graph, in order.

Timing: Lava's layer at graph depth d computes a sample's functional step s at its time step d + 1 + s (time
steps count from 1); samples are streamed back to back, ``steps`` apart, and the run goes on until the deepest
layer has seen the last one. netx resets layer i at time steps ``reset_offset + 1 + i`` modulo the interval; a
layer's index equals its depth when the input layer has a neuron (bias-driven) and is one less otherwise, so
``reset_offset`` is 0 or 1 for every layer to restart exactly when each sample (or reset period) reaches it.
A reset does not clear the delay buffers of Lava's ``DelayDense`` or a recurrent ``Dense``, so a network with
synaptic delays or recurrent synapses runs each sample in its own Lava run, as does a graph without resets
(:attr:`Graph.pipeline_fill`: lava-dl's default, every layer stepping from Lava's first time step, which the
simulator reproduces for one sample per run). Sigma-delta layers come back as their graded payloads (int64), so
``verify`` compares values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snn_deploy.errors import UserError
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, SigmaDeltaNode
from snn_deploy.fixedpoint import torch_image_to_lava
from snn_deploy.watchdog import stop_runtime

Spikes = dict[str, torch.Tensor]


def netx_reset_interval(graph: Graph, steps: int, batch: int) -> int | None:
    """The ``reset_interval`` :func:`run_netx` gives lava-dl's ``Network`` (None: lava-dl's default, no reset):
    the graph's; with several samples streamed back to back, at least one reset per sample. A UserError where
    Lava's LIFReset cannot follow the graph's resets."""
    interval = graph.reset_interval
    if graph.reset_steps(steps) and graph.reset_offset:
        raise UserError(f"the graph resets with offset {graph.reset_offset} (the Loihi 2 silicon phase), which "
                        "Lava's LIFReset cannot reproduce; run at most reset_interval + offset steps")
    if batch > 1 and not graph.pipeline_fill:  # with a pipeline fill, each sample is its own run
        interval = interval or steps
        if steps % interval:
            raise UserError(f"the netx backend streams samples back to back: {steps} steps per sample must be a "
                            f"multiple of the reset interval {interval}")
    return interval or None


def _lava_layout(x: np.ndarray, shape: tuple[int, int, int], flat: bool) -> np.ndarray:
    """[N, C, H, W] -> Lava's [N, W, H, C] (or [N, C*H*W] in torch's flatten order for a dense first layer)."""
    return x.reshape(len(x), -1) if flat else torch_image_to_lava(x)


def run_netx(path: Path | str, graph: Graph, payload: np.ndarray) -> Spikes:
    """Spikes [steps, B, C, H, W] (uint8; a sigma-delta node's graded payloads, int64) of every LIF node of
    ``graph`` (imported from ``path``) for the integer input ``payload`` [steps, B, C, H, W]
    (:func:`~snn_deploy.graph.input_sequence` of the inputs)."""
    try:
        from lava.lib.dl.netx.blocks.process import Input
        from lava.lib.dl.netx.hdf5 import Network
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
    except Exception as exc:  # ImportError, or a failure inside lava's own import chain
        raise UserError(f"the netx backend needs lava-nc and lava-dl ({type(exc).__name__}: {exc})") from None
    steps, batch = payload.shape[:2]
    if batch > 1 and (graph.pipeline_fill or any(n.delay.size or n.recurrent for n in graph.of_kind(ConvNode))):
        # a reset clears neurons, not Lava's (Delay)Dense buffers: streamed samples would leak into each other; and
        # a run without resets (lava-dl's default) is one sample from Lava's first step
        runs = [run_netx(path, graph, payload[:, b:b + 1]) for b in range(batch)]
        return {name: torch.cat([run[name] for run in runs], dim=1) for name in runs[0]}
    node: InputNode = graph.input
    bias_driven = node.drive == "bias"
    depths = graph.depths()
    lifs = graph.of_kind(LIFNode)
    bits = 0 if bias_driven or node.payload_bits == 1 else node.payload_bits
    net = Network(net_config=str(path), reset_interval=netx_reset_interval(graph, steps, batch),
                  reset_offset=0 if bias_driven else 1, input_message_bits=bits)
    if len(net.layers) != len(lifs):
        raise UserError(f"{path}: lava-dl builds {len(net.layers)} layers, the graph has {len(lifs)} neuron layers")
    total = steps * batch + max(depths.values())
    stream = np.concatenate([payload[:, b] for b in range(batch)])  # sample after sample
    stream = np.concatenate([stream, np.zeros((total - len(stream), *stream.shape[1:]), stream.dtype)])
    sinks = []
    for layer in net.layers:
        sinks.append(Sink(shape=layer.out.shape, buffer=total))
        layer.out.connect(sinks[-1].a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    try:
        if bias_driven:
            frames = torch_image_to_lava(stream).astype(np.int32)
            held = bool((frames == frames[0]).all())
            bias = net.in_layer.neuron.bias_mant
            bias.init = frames[0]
            if held:
                net.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
            else:  # a new bias every step: Lava sets a Var between runs
                for t in range(total):
                    if t:
                        bias.set(frames[t])
                    net.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
        else:
            frames = _lava_layout(stream, node.shape, len(net.inp.shape) == 1)
            source = Source(data=np.moveaxis(frames, 0, -1).astype(np.int32))
            # an SDNN input layer (netx's Input block, a Delta) leaves Network.inp unconnected: lava-dl's own test
            # feeds the Delta's a_in
            source.s_out.connect(net.in_layer.neuron.a_in if isinstance(net.in_layer, Input) else net.inp)
            net.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        recorded = [np.moveaxis(np.asarray(sink.data.get()), -1, 0) for sink in sinks]
    finally:
        stop_runtime(net)
    spikes: Spikes = {}
    for lif, out in zip(lifs, recorded):
        shape = lif.shape
        out = out.reshape(len(out), *shape) if out.ndim == 2 else out.transpose(0, 3, 2, 1)  # (W, H, C) -> (C, H, W)
        window = out[depths[lif.name]: depths[lif.name] + batch * steps]
        window = window.reshape(batch, steps, *shape).swapaxes(0, 1)
        spikes[lif.name] = (torch.from_numpy(window.astype(np.int64)) if isinstance(lif, SigmaDeltaNode)  # payloads
                            else torch.from_numpy(window != 0).to(torch.uint8))
    return spikes
