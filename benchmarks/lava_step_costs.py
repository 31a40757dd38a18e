"""Where a Lava step's time goes: each synapse model's arithmetic under Lava's own fixed-point model and under the
fast bit-exact one (sims/backends/lava_models.py), side by side, and the runtime's per-step barrier against the
number of processes.

    python benchmarks/lava_step_costs.py [--configs NAME,...] [--chain 10,40,80] [--json FILE]

Per configuration (built as ``benchmarks/lava_scale.py`` builds it: random weights, spiking batch norms, T = 4,
one sample): every ``Conv``, ``Sparse`` and ``DelaySparse`` of the Lava network is stepped once in this process
(no runtime) on random inputs with 20 % events, once with the arithmetic of Lava's model (``utils.conv``'s
per-channel-pair ``convolve2d``; ``weights[:, s_in].sum(axis=1)``; the delay-split matrix rebuilt) and once with
the fast model's, and the seconds are summed per class: ``lava_s`` / ``fast_s`` per Lava step. ``steps`` is the
Lava steps a run of one sample takes. The barrier: a chain RingBuffer -> (Sparse -> GradedVec) x k of 10 neurons
run for 50 steps under the run config the builder uses, ``ms_per_step`` for 2 k + 1 processes (the Loihi
protocol's phase messages to every process, next to no arithmetic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lava_scale import spiking_graph  # noqa: E402  (the benchmark next to this one)

from snn_deploy.graph import input_sequence  # noqa: E402
from snn_deploy.sims.backends import lava_build  # noqa: E402  (first: Lava's compatibility finder)
from snn_deploy.sims.backends.lava_models import conv as fast_conv  # noqa: E402
from snn_deploy.watchdog import stop_runtime  # noqa: E402


def _timed(step) -> float:
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def synapse_costs(name: str) -> dict:
    from lava.proc.conv import utils as conv_utils
    from lava.proc.conv.process import Conv
    from lava.proc.sparse.models import AbstractPyDelaySparseModel
    from lava.proc.sparse.process import DelaySparse

    graph = spiking_graph(name, 4)
    x = torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    net = lava_build.build(graph, input_sequence(graph, x))
    rng = np.random.default_rng(0)
    lava_s: dict[str, float] = defaultdict(float)
    fast_s: dict[str, float] = defaultdict(float)
    for synapse in net.synapses:
        kind = type(synapse).__name__
        if isinstance(synapse, Conv):
            weight = synapse.weight.init.astype(np.int32)
            events = rng.random(synapse.s_in.shape) < 0.2
            geometry = (synapse.kernel_size.init, synapse.stride.init, synapse.padding.init, synapse.dilation.init,
                        int(np.asarray(synapse.groups.init).ravel()[0]))
            lava_s[kind] += _timed(lambda: conv_utils.conv(events, weight, *geometry))
            fast_s[kind] += _timed(lambda: fast_conv(events, weight, *geometry))
        elif isinstance(synapse, DelaySparse):
            weights, delays = synapse.weights.init.tocsr(), synapse.delays.init.tocsr()
            events = rng.random(weights.shape[1]) < 0.2
            split = AbstractPyDelaySparseModel.get_delay_wgts_mat(weights, delays, int(delays.max()))
            lava_s[kind] += _timed(lambda: AbstractPyDelaySparseModel.get_delay_wgts_mat(
                weights, delays, int(delays.max())).dot(events))
            fast_s[kind] += _timed(lambda: split.dot(events))
        elif hasattr(synapse, "weights"):
            weights = synapse.weights.init.tocsr()
            events = rng.random(weights.shape[1]) < 0.2
            lava_s[kind] += _timed(lambda: weights[:, events].sum(axis=1))
            fast_s[kind] += _timed(lambda: weights.dot(events.astype(np.int64)))
    return {"name": name, "processes": len(net.all_processes()), "steps": net.steps,
            "lava_s": {k: round(v, 4) for k, v in sorted(lava_s.items())},
            "fast_s": {k: round(v, 4) for k, v in sorted(fast_s.items())},
            "lava_s_per_step": round(sum(lava_s.values()), 3), "fast_s_per_step": round(sum(fast_s.values()), 3)}


def barrier(k: int, steps: int = 50) -> dict:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.source import RingBuffer
    from lava.proc.sparse.process import Sparse
    from scipy.sparse import identity

    from snn_deploy.sims.backends.lava_models import FAST_MODELS

    source = RingBuffer(data=np.ones((10, steps), dtype=np.int32))
    previous = source
    for _ in range(k):
        synapse, neuron = Sparse(weights=identity(10, dtype=np.int64, format="csr"), num_message_bits=24), \
            GradedVec(shape=(10,), vth=0)
        previous.s_out.connect(synapse.s_in)
        synapse.a_out.connect(neuron.a_in)
        previous = neuron
    began = time.perf_counter()
    source.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=FAST_MODELS),
                          compile_config={"pypy_channel_size": lava_build.CHANNEL_SLOTS})
    started = time.perf_counter()
    try:
        source.run(condition=RunSteps(num_steps=steps))
        ran = time.perf_counter()
    finally:
        stop_runtime(source)
    return {"processes": 2 * k + 1, "start_s": round(started - began, 2),
            "ms_per_step": round(1000 * (ran - started) / steps, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="spikformer-tiny,spikformer-cifar10-4-384")
    parser.add_argument("--chain", default="10,40,80", help="k values of the barrier chain (2 k + 1 processes)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = {"synapses": [], "barrier": []}
    for name in filter(None, args.configs.split(",")):
        rows["synapses"].append(synapse_costs(name))
        print(json.dumps(rows["synapses"][-1]), flush=True)
    for k in filter(None, args.chain.split(",")):
        rows["barrier"].append(barrier(int(k)))
        print(json.dumps(rows["barrier"][-1]), flush=True)
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
