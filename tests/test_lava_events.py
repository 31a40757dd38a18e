"""What the cost model prices is what Lava runs, event for event.

The cost model (sims/hardware/cost.py) prices a bundle from the mapper's lowering and the simulator's activity:
spikes each population sends and synaptic operations each projection does, per step. Here the Lava network built
from the same lowering runs the same samples, every population recorded, and the same counts are taken from what
Lava's processes sent: a population's events are its non-zero messages; a projection's operations are its source's
events times the synapses of the Lava process each reaches (a Conv's kernel geometry, computed with Lava's own
convolution on an all-ones kernel; a Sparse/DelaySparse's stored synapses).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from snn_deploy.fixedpoint import torch_image_to_lava
from snn_deploy.graph import LOIHI2, input_sequence
from snn_deploy.sims.backends import lava_build
from snn_deploy.sims.hardware.cost import hardware_cost, rates
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.runs.driver import run_dataset

pytestmark = pytest.mark.lava


def _lava_events(run: lava_build.LavaRun, payload: np.ndarray, input_name: str) -> dict[str, np.ndarray]:
    """Events (non-zero messages), bool [T, B, neurons] in Lava's flat order, of every population and host source."""
    images = {input_name: payload, **{n: s.numpy() for n, s in run.spikes.items()}}  # [T, B, C, H, W]
    events = {n: torch_image_to_lava(v).reshape(*v.shape[:2], -1) != 0 for n, v in images.items()}
    events.update({n: v != 0 for n, v in run.outputs.items()})
    return events


def _synaptic_ops(synapse, events: np.ndarray) -> np.ndarray:
    """Operations per step [T] of a Lava synapse process fed ``events`` [T, B, N]: every (event, synapse) pair."""
    from lava.proc.conv import utils as conv_utils
    from lava.proc.conv.process import Conv
    if isinstance(synapse, Conv):
        ones = np.ones_like(synapse.weight.init)
        geometry = [synapse.kernel_size.init, synapse.stride.init, synapse.padding.init, synapse.dilation.init,
                    int(np.asarray(synapse.groups.init).ravel()[0])]
        shape = tuple(synapse.s_in.shape)
        return np.array([sum(int(conv_utils.conv(e.reshape(shape), ones, *geometry).sum()) for e in step)
                         for step in events])
    pattern = synapse.weights.init.tocsr().astype(np.int64)
    pattern.data[:] = 1  # every synapse the process holds
    return np.array([int((pattern @ step.T.astype(np.int64)).sum()) for step in events])


# qkformer-tiny: its delayed k_relay (a 1x1 identity conv) is held and priced as its non-zero synapses; packed:
# every packed population's words, shift levels and unpacked fields and every projection into and out of them
# (v's per-field reads, the carrying relays' half reads, kv's re-packing) counted as Lava sends them
@pytest.mark.parametrize("name, attention", [(name, attention) for attention in ("coincidence", "packed")
                                             for name in ("spikformer-tiny", "qkformer-tiny", "spikformer-v2-tiny")])
def test_cost_model_counts_the_events_lava_runs(name, attention):
    import dataclasses

    import test_lava_build
    graph = dataclasses.replace(test_lava_build.spiking_zoo_graph(name), attention=attention)
    samples = 2
    x = torch.rand(samples, *graph.input.shape, generator=torch.Generator().manual_seed(4))
    payload = input_sequence(graph, x)

    mapping = map_graph(graph, LOIHI2)
    activity = run_dataset(graph, x, None, backend="sim")
    priced = rates(graph, mapping, activity)
    cost = hardware_cost(graph, mapping, activity)

    run = lava_build.run(graph, payload, progress=lambda *_: None, every_population=True)
    net = lava_build.build(graph, payload)  # the same processes, for their synapses
    events = _lava_events(run, np.asarray(payload), graph.input.name)

    assert [p.name for p in mapping.populations] == [p.name for p in net.lowering.populations]
    kinds = {p.kind for p in mapping.populations}
    assert {"lif", "sum", "and", "kv", "gate"} <= kinds  # every population kind the lowering makes
    if attention == "packed":
        assert {"kvrow", "group", "unpack"} <= kinds and kinds & {"shift", "carry"}
    for pop in mapping.populations:
        sent = events[pop.name].sum((1, 2))
        assert sent.sum() > 0, pop.name
        np.testing.assert_array_equal(sent, priced.spikes[pop.name] * samples, err_msg=f"events of {pop.name}")
    projections = [(pop, j, proj) for pop in mapping.populations for j, proj in enumerate(pop.projections)]
    assert len(net.synapses) == len(projections)
    total = 0
    for (pop, j, proj), synapse in zip(projections, net.synapses):
        ops = _synaptic_ops(synapse, events[proj.source])
        total += ops.sum()
        np.testing.assert_array_equal(ops, priced.synops[pop.name][j] * samples,
                                      err_msg=f"synaptic ops of {proj.source} -> {pop.name}")
    assert total > 0
    assert total == pytest.approx(cost.synaptic_ops * samples, rel=1e-12)
