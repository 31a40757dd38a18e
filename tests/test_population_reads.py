"""Population-coded reads (issue 18): the lowering's own shared kernels (``kind="kernel"``: the kv sums, the
attention gather, the residual relays' reads) arrive on one input axon per projection and source core where their
target is spatial, as Loihi 2's compiler prices a shared-kernel projection; Lava builds them as ``Conv``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from snn_deploy.graph import LOIHI2, SpikeProductNode, SumNode
from snn_deploy.graph.hardware import (
    Population, _relay, attention_read, kernel_read, lower, product_arrays, sparse_pairs,
)
from snn_deploy.sims.hardware.mapper import _tiling, map_graph, population_coded
from snn_deploy.watchdog import stop_runtime


def _arrays(shape=(48, 4, 6), heads=2, multiplier=3):
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads, multiplier=multiplier)
    graph = {n: SimpleNamespace(shape=shape) for n in "qkv"}
    return node, {p.kind: p for p in product_arrays(graph, node)}


def test_kv_sum_is_two_kernel_stages_and_the_gather_a_grouped_kernel():
    node, pops = _arrays()
    c, h, w = node.shape
    d, pairs = c // node.heads, node.heads * (c // node.heads) ** 2
    assert list(pops) == ["and", "kvrow", "kv", "gate"]
    (row,), (kv,) = pops["kvrow"].projections, pops["kv"].projections
    assert pops["kvrow"].shape == (pairs, 1, w) and row.kind == "kernel" and row.kernel == (h, 1)
    assert pops["kv"].shape == (pairs, 1, 1) and kv.kind == "kernel" and kv.kernel == (1, w)
    assert row.shared_per_channel == h and kv.shared_per_channel == w and row.weight == kv.weight == 1
    gather = attention_read(node, pops["gate"])
    assert gather.kind == "kernel" and gather.channels.b == d and gather.weight == node.multiplier
    # the gather's groups are the pair order (head, e, c): channel g d + e reads gates (g, e, 0..d-1)
    rows, cols = sparse_pairs(gather, node.shape)
    assert np.array_equal(cols // (h * w) // d, rows // (h * w)) and np.array_equal(cols % (h * w), rows % (h * w))
    assert np.array_equal(np.bincount(rows), np.full(c * h * w, d))


def test_kernel_reads_count_one_input_axon_per_projection_on_spatial_targets():
    node, pops = _arrays()
    c, h, w = node.shape
    compiler = LOIHI2.compiler
    attn = Population("attn", "lif", "attn", node.shape, (attention_read(node, pops["gate"]),))
    for pop in (pops["kvrow"], attn):
        assert population_coded(pop, pop.projections[0], compiler)
        for tile in ((pop.shape[0], pop.shape[1], 1), (1, 1, 1), pop.shape):
            assert (_tiling(pop, tile, True, compiler).fan_in == 1).all()
    kv = pops["kv"]  # a 1 x 1 target: per-neuron axons, w per kv neuron
    assert not population_coded(kv, kv.projections[0], compiler)
    assert (_tiling(kv, (5, 1, 1), True, compiler).fan_in[:-1] == 5 * w).all()
    relay = _relay(SumNode("add", ("a", "b"), node.shape))
    assert [p.kind for p in relay.projections] == ["kernel", "kernel"]
    assert (_tiling(relay, (c, h, 1), True, compiler).fan_in == 2).all()


def test_a_delayed_kernel_read_is_held_as_its_synapses():
    """The probe graph's residual sum reads its shallow summand delayed: a DelaySparse, every synapse stored and
    per-neuron axons; its deep summand and the products' kernels are shared and population-coded."""
    from snn_deploy.sims.backends.lava_chip import probe_graph
    lowering = lower(probe_graph(), sums="relay")
    pops = {p.name: p for p in lowering.populations}
    shallow, deep = pops["add"].projections
    assert lowering.delay(pops["add"], shallow) > 0 and shallow.shared_per_channel == 0
    assert lowering.delay(pops["add"], deep) == 0 and deep.shared_per_channel == 1
    assert not population_coded(pops["add"], shallow, LOIHI2.compiler)
    assert population_coded(pops["add"], deep, LOIHI2.compiler)
    # q meets its kv: delayed by the and, kvrow and kv stages
    q_read = pops["product.gate"].projections[0]
    assert lowering.depths["product.kv"] == lowering.depths["k"] + 3
    assert lowering.delay(pops["product.gate"], q_read) == 3


def test_the_mapper_prices_kernel_reads_within_the_bound():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    from snn_deploy.sims.hardware.bound import resource_bound
    for lowering in ("coincidence", "graded"):
        mapping = map_graph(probe_graph(), LOIHI2, products=lowering)
        assert resource_bound(mapping).cores <= len(mapping.cores)
        assert {p.kind for p in mapping.populations} >= {"kvrow", "kv", "sum"}


def test_kernel_read_of_a_wide_weight_prices_its_bits():
    proj = kernel_read("x", "s", (8, 2, 2), per_group=4, weight=-96)
    assert proj.weight_bits == 2 and proj.channels.b == 4 and proj.shared_per_channel == 4


@pytest.mark.lava
def test_a_depthwise_kernel_of_many_groups_runs_in_lava():
    """More than 127 groups (Lava's int8 ``groups`` would wrap): the fast Conv model holds them in int32 and
    computes the (H, 1) column sums exactly."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer

    from snn_deploy.fixedpoint import torch_image_to_lava
    from snn_deploy.sims.backends import lava_build as lb
    from snn_deploy.sims.backends.lava_models import FAST_MODELS
    channels, h, w, steps = 300, 3, 2, 3
    x = (np.random.default_rng(0).uniform(size=(steps, channels, h, w)) < 0.5).astype(np.int32)
    target = SimpleNamespace(shape=(channels, 1, w), neurons=channels * w)
    conv = lb._kernel(target, kernel_read("r", "s", (channels, h, w), (h, 1)), graded=False)
    source = RingBuffer(data=np.moveaxis(torch_image_to_lava(x), 0, -1))
    source.s_out.connect(conv.s_in)
    recorder = Extractor(shape=tuple(conv.a_out.shape), buffer_size=steps + 2)
    conv.a_out.connect(recorder.in_port)
    source.run(condition=RunSteps(num_steps=steps + 1), run_cfg=Loihi2SimCfg(
        select_tag="fixed_pt", exception_proc_model_map={**FAST_MODELS, recorder: PyLoihiExtractorModel}))
    try:
        got = np.stack([recorder.receive() for _ in range(steps + 1)])[1:]
    finally:
        stop_runtime(source)
    expected = torch_image_to_lava(x.sum(2, keepdims=True))  # [T, W, 1, C]
    assert np.array_equal(got, expected)
