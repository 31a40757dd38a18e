"""The one hardware lowering (snn_deploy/graph/hardware.py): the mapper prices it, the Lava builder builds it from
processes a Loihi 2 chip can load, and its coincidence neurons compute the spike product exactly in Lava."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import spike_product, torch_image_to_lava
from snn_deploy.graph import LOIHI2, SpikeProductNode, input_sequence
from snn_deploy.graph.hardware import conv_pairs, lower, product_arrays, sparse_pairs
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.watchdog import stop_runtime

lava = pytest.mark.lava


def _shapes(shape, names):
    """Stands in for a graph where only the shapes of ``names`` are read (product_arrays)."""
    return {n: SimpleNamespace(shape=shape) for n in names}


def test_sparse_pairs_follow_the_channel_maps():
    """The and / kvrow / kv / gate / gather projections as synapse lists: each target neuron reads what the model
    says."""
    heads, d, h, w = 2, 3, 2, 2
    shape = (heads * d, h, w)
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads)
    pops = product_arrays(_shapes(shape, "qkv"), node)
    and_pop, row_pop, kv_pop, gate_pop = pops
    rows, cols = sparse_pairs(and_pop.projections[0], and_pop.shape)  # from k: channel (g, j, i) reads g d + i
    assert rows.size == and_pop.neurons and np.unique(rows).size == and_pop.neurons
    f, t = np.divmod(rows, h * w)
    g, j, i = f // (d * d), f // d % d, f % d
    assert np.array_equal(cols, (g * d + i) * h * w + t)
    rows, cols = sparse_pairs(row_pop.projections[0], row_pop.shape)  # the h rows of its pair's token column
    assert rows.size == and_pop.neurons and np.array_equal(np.bincount(rows), np.full(row_pop.neurons, h))
    assert np.array_equal(cols // (h * w), rows // w) and np.array_equal(cols % w, rows % w)
    rows, cols = sparse_pairs(kv_pop.projections[0], kv_pop.shape)  # the w columns of its pair
    assert rows.size == row_pop.neurons and np.array_equal(np.bincount(rows), np.full(kv_pop.neurons, w))
    assert np.array_equal(cols // w, rows)
    rows, cols = sparse_pairs(gate_pop.projections[1], gate_pop.shape)  # kv broadcast to every token
    assert np.array_equal(cols, rows // (h * w))


def test_conv_pairs_equal_the_convolution():
    from snn_deploy.fixedpoint import conv_step
    from snn_deploy.graph import ConvNode
    rng = np.random.default_rng(0)
    conv = ConvNode("c", ("x",), (4, 3, 2), weight=rng.integers(-5, 6, (4, 2, 3, 2)), stride=(2, 1),
                    padding=(1, 0), groups=2)
    x = rng.integers(0, 5, (4, 6, 3))
    rows, cols, weight = conv_pairs(conv, x.shape)
    dense = np.zeros((24, x.size), dtype=np.int64)
    np.add.at(dense, (rows, cols), weight)
    expected = conv_step(x, conv.weight.astype(np.int64), stride=(2, 1), padding=(1, 0), groups=2, graded=True)
    assert np.array_equal(dense @ x.ravel(), np.asarray(expected).ravel())


def test_mapper_prices_the_lowering():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    graph = probe_graph()
    mapping = map_graph(graph, LOIHI2)
    lowered = lower(graph, mapping.products, mapping.sums)
    assert [(p.name, p.kind, p.shape) for p in mapping.populations] == \
        [(p.name, p.kind, p.shape) for p in lowered.populations]
    assert all(mapping.depths[k] == v for k, v in lowered.depths.items())


def product_in_lava(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, multiplier: int) -> np.ndarray:
    """The coincidence populations of one spike product, built by the Lava builder's own functions, fed q, k, v
    spike maps [T, C, H, W] from RingBuffers; returns the currents its attention LIF would receive, [T, C, H, W],
    read through a GradedVec (threshold 0: it forwards every non-zero sum)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer

    from snn_deploy.sims.backends import lava_build as lb
    from snn_deploy.graph.hardware import attention_read
    steps, c, h, w = q.shape
    shape = (c, h, w)
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads, multiplier=multiplier)
    pops = product_arrays(_shapes(shape, "qkv"), node)
    out = attention_read(node, pops[-1])
    depth = dict.fromkeys("qkv", 0)
    procs = {n: RingBuffer(data=np.moveaxis(torch_image_to_lava(x.astype(np.int32)), 0, -1))
             for n, x in zip("qkv", (q, k, v))}
    graded = {"p.kvrow", "p.kv", "p.gate"}

    def synapse(pop, proj, delay):  # as the builder chooses: an undelayed kernel is a Conv
        if proj.kind == "kernel" and not delay:
            return lb._kernel(pop, proj, proj.source in graded)
        return lb._sparse(None, pop, proj, delay, proj.source in graded)
    for pop in pops:
        depth[pop.name] = max(depth[p.source] + 1 for p in pop.projections)
        procs[pop.name] = lb._population(pop, None, 0, True)
        for index, proj in enumerate(pop.projections):
            made = synapse(pop, proj, depth[pop.name] - 1 - depth[proj.source])
            lb._connect(procs[proj.source].s_out, made.s_in)
            lb._connect(made.a_out, lb._in(procs[pop.name], index))
    target = SimpleNamespace(shape=shape, neurons=c * h * w)
    gather = synapse(target, out, 0)
    sink = GradedVec(shape=(c * h * w,), vth=0)
    lb._connect(procs["p.gate"].s_out, gather.s_in)
    lb._connect(gather.a_out, sink.a_in)
    recorder = Extractor(shape=(c * h * w,), buffer_size=steps + 8)
    sink.s_out.connect(recorder.in_port)
    total = steps + depth["p.gate"] + 1
    source = procs["q"]
    source.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(
        select_tag="fixed_pt", exception_proc_model_map={recorder: PyLoihiExtractorModel}))
    try:
        frames = np.stack([recorder.receive() for _ in range(total)])[depth["p.gate"] + 1:]
    finally:
        stop_runtime(source)
    flat = frames.reshape(steps, w, h, c)  # Lava's (W, H, C) order
    return np.moveaxis(flat, (1, 2, 3), (3, 2, 1)).astype(np.int64)


@st.composite
def spike_maps(draw):
    """q, k, v [T, C, H, W] spike maps: random densities per step, plus all-ones (full-scale counts: k^T v = N),
    all-zeros and simultaneous q = k = v steps."""
    heads = draw(st.sampled_from([1, 2]))
    d = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    steps = draw(st.integers(1, 4))
    shape = (steps, heads * d, h, w)
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, (3, steps, 1, 1, 1))
    q, k, v = ((rng.uniform(size=shape) < p[i]).astype(np.int64) for i in range(3))
    ones, zeros = np.ones((1, *shape[1:]), np.int64), np.zeros((1, *shape[1:]), np.int64)
    same = (rng.uniform(size=(1, *shape[1:])) < 0.5).astype(np.int64)
    q, k, v = (np.concatenate([x, ones, zeros, same]) for x in (q, k, v))
    multiplier = draw(st.sampled_from([1, 3, -2, 64]))
    return q, k, v, heads, multiplier


@lava
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spike_maps())
def test_coincidence_neurons_equal_the_spike_product(case):
    q, k, v, heads, multiplier = case
    c, h, w = q.shape[1:]
    got = product_in_lava(q, k, v, heads, multiplier)
    flat = [x.reshape(x.shape[0], c, h * w) for x in (q, k, v)]
    expected = np.asarray(spike_product(*flat, heads, multiplier)).reshape(q.shape)
    assert np.array_equal(got, expected)


@lava
def test_built_network_has_only_chip_processes_and_the_mapped_synapses():
    """Every process class is one a Loihi 2 chip loads; the Lava network holds one process per population and
    one synapse per projection of the lowering the mapper prices, with as many synapses."""
    from lava.magma.core.process.process import AbstractProcess
    from lava.proc.conv.process import Conv

    from snn_deploy.sims.backends import lava_build, lava_chip
    graph = lava_chip.probe_graph()
    net = lava_build.build(graph, np.zeros((graph.T, 1, *graph.input.shape), dtype=np.int64))
    assert lava_chip.non_chip_types(net.all_processes()) == []
    lava_chip.check_chip(net.all_processes())
    mapping = map_graph(graph, LOIHI2)
    assert [p.name for p in mapping.populations] == [p.name for p in net.lowering.populations]
    for pop in mapping.populations:
        assert int(np.prod(net.processes[pop.name].s_out.shape)) == pop.neurons
    projections = [(pop, j, proj) for pop in mapping.populations for j, proj in enumerate(pop.projections)]
    assert len(net.synapses) == len(projections)
    for (pop, j, proj), synapse in zip(projections, net.synapses):
        priced = int(mapping.per_core_synapses[pop.name][j].sum())
        if isinstance(synapse, Conv):
            assert proj.kind in ("conv", "kernel")
        else:
            assert synapse.weights.init.nnz == priced, f"{pop.name} <- {proj.source}"

    class SpikeProduct(AbstractProcess):  # a CPU-only custom process, as the old builder had
        pass
    with pytest.raises(UserError, match="SpikeProduct"):
        lava_chip.check_chip([*net.all_processes(), SpikeProduct()])


def test_loihi2_target_check_flags_a_reset_period_that_is_not_a_power_of_two():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    from snn_deploy.graph import LOIHI, target_problems
    assert not [p for p in target_problems(probe_graph(4), LOIHI2) if "power of 2" in p.what]
    flagged = [p for p in target_problems(probe_graph(5), LOIHI2) if "power of 2" in p.what]
    assert len(flagged) == 1 and "5" in flagged[0].what
    assert not [p for p in target_problems(probe_graph(5), LOIHI) if "power of 2" in p.what]


@lava
@pytest.mark.parametrize("which", ["residual_and_graph", "spike_product_graph"])
def test_layer_by_layer_equals_the_whole_run(which):
    """Each layer alone, driven by the simulator's spikes, gives the whole Lava run's spikes (and the simulator's):
    residual relays read from other layers, delayed convs, a spike product."""
    import test_lava_build
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.sims.backends.simulator import simulate
    graph = getattr(test_lava_build, which)()
    x = torch.rand(2, *graph.input.shape, generator=torch.Generator().manual_seed(1))
    expected = simulate(graph, x).spikes
    assert all(0 < s.float().mean() < 1 for s in expected.values())
    payload = input_sequence(graph, x)
    whole = lava_build.run(graph, payload, progress=lambda *_: None)
    calls = []
    layers = lava_build.run_layers(graph, payload, expected, progress=lambda done, total: calls.append(done))
    assert calls == list(range(1, len(expected) + 1))
    for name, spikes in expected.items():
        assert torch.equal(layers.spikes[name], whole.spikes[name]), name
        assert torch.equal(layers.spikes[name], spikes), name


def test_per_layer_needs_the_simulator_first():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    from snn_deploy.sims.runs.verify import run_backends
    graph = probe_graph()
    with pytest.raises(UserError, match="sim before lava"):
        run_backends(None, graph, torch.zeros(1, *graph.input.shape), None, ["lava", "sim"], per_layer=True)


@lava
def test_verify_per_layer_agrees():
    import test_lava_build
    from snn_deploy.sims.runs.verify import run_backends
    graph = test_lava_build.spike_product_graph()
    x = torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(2))
    report = run_backends(None, graph, x, None, ["sim", "lava"], per_layer=True)
    assert report.exact


@lava
def test_a_layer_past_the_timeout_ends_the_run_with_one_error(monkeypatch):
    """SNN_DEPLOY_LAVA_TIMEOUT bounds every layer's runtime: a hanging worker ends the layer-by-layer run with one
    UserError (the CLI's one line), not a hang."""
    import time

    from lava.proc.io.extractor import PyLoihiExtractorModel

    import test_lava_build
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.sims.backends.simulator import simulate

    monkeypatch.setattr(PyLoihiExtractorModel, "run_spk", lambda self: time.sleep(3600))  # workers are forked
    monkeypatch.setenv("SNN_DEPLOY_LAVA_TIMEOUT", "4")
    graph = test_lava_build.residual_and_graph()
    x = torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    start = time.monotonic()
    with pytest.raises(UserError, match="Lava stopped answering") as info:
        lava_build.run_layers(graph, input_sequence(graph, x), simulate(graph, x).spikes, progress=lambda *_: None)
    assert time.monotonic() - start < 60 and "\n" not in str(info.value)
