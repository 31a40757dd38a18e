"""The ``packed`` attention lowering (snn_deploy/graph/hardware.py ``packed_arrays``): several spike-product
fields per 24-bit graded payload. Its populations, stepped as the chip steps them, equal the simulator's spike
product at the tiny families' and the published configurations' token counts and head dims; every value stays
within Loihi 2's payload for all inputs (all-ones included); it runs in Lava from chip processes; a shape whose
fields cannot fit is refused by name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from snn_deploy.graph import LOIHI, LOIHI2, SpikeProductNode
from snn_deploy.graph import hardware as hw
from snn_deploy.graph.hardware import (
    PAYLOAD_MAX, PRODUCT_LOWERINGS, WEIGHT_EXP_RANGE, Packing, choose_packing, sparse_pairs,
)
from test_attention_lowerings import _expected, _graph, product_in_lava, product_ticks

CONFIG_SHAPES = [(8, 8, 32), (8, 8, 48), (8, 8, 16), (4, 4, 48), (14, 14, 64), (7, 7, 64)]
"""(H, W, d) of the published configurations' products: CIFAR Spikformer (d = 32) and QKFormer (d = 48, its last
stages at 8 x 8 and 4 x 4), DVS (d = 16), ImageNet Spikformer / V2 (14 x 14, d = 64) and QKFormer (7 x 7)."""


def product_steps(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, multiplier: int
                  ) -> tuple[np.ndarray, dict[str, int]]:
    """The ``packed`` populations evaluated step by step (every population from its sources' same step: the
    arithmetic the tick model checks with its timing, cheap enough for the configurations' shapes): each
    projection's ``W @ s`` shifted by its weight exponent (floor), ``ProdNeuron`` = first operand x the sum of the
    others, ``GradedVec`` = the sum. Returns the attention LIF's current [T, C, H, W] and the largest magnitude each
    population held or received (synaptic sums included)."""
    steps, c, h, w = q.shape
    node = SpikeProductNode("p", ("q", "k", "v"), (c, h, w), heads=heads, multiplier=multiplier)
    pops = PRODUCT_LOWERINGS["packed"].arrays(_graph((c, h, w)), node, 1)
    read = hw.attention_read(node, pops[-1])
    wiring = {}
    for pop in pops:
        for index, proj in enumerate(pop.projections):
            rows, cols = sparse_pairs(proj, pop.shape)
            wiring[pop.name, index] = csr_matrix((hw.pair_weights(proj, pop.shape, rows, cols), (rows, cols)),
                                                 shape=(pop.neurons, int(np.prod(proj.source_shape))))
    rows, cols = sparse_pairs(read, (c, h, w))
    attention = csr_matrix((np.full(rows.size, read.weight, np.int64), (rows, cols)),
                           shape=(c * h * w, int(np.prod(read.source_shape))))
    largest = dict.fromkeys((p.name for p in pops), 0)
    out = np.zeros((steps, c * h * w), np.int64)
    for t in range(steps):
        values = {n: x[t].reshape(-1).astype(np.int64) for n, x in zip("qkv", (q, k, v))}
        for pop in pops:
            sums = []
            for index, proj in enumerate(pop.projections):
                a = wiring[pop.name, index] @ values[proj.source]
                largest[pop.name] = max(largest[pop.name], int(np.abs(a).max(initial=0)))
                e = proj.weight_exp
                sums.append(a << e if e >= 0 else a >> -e)
            values[pop.name] = sums[0] * sum(sums[1:]) if pop.neuron == "product" else sum(sums)
            largest[pop.name] = max(largest[pop.name], int(np.abs(values[pop.name]).max(initial=0)))
        out[t] = attention @ values[read.source]
    return out.reshape(steps, c, h, w), largest


@st.composite
def config_maps(draw, shapes=CONFIG_SHAPES, heads=(1,)):
    """q, k, v [T, C, H, W] at one of ``shapes``: a random density, then all-ones, all-zeros and q = k = v."""
    h, w, d = draw(st.sampled_from(shapes))
    n_heads = draw(st.sampled_from(heads))
    shape = (1, n_heads * d, h, w)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    p = rng.uniform(0, 1, 3)
    q, k, v = ((rng.uniform(size=shape) < p[i]).astype(np.int64) for i in range(3))
    same = (rng.uniform(size=shape) < rng.uniform()).astype(np.int64)
    ones, zeros = np.ones(shape, np.int64), np.zeros(shape, np.int64)
    q, k, v = (np.concatenate([x, ones, zeros, same]) for x in (q, k, v))
    return q, k, v, n_heads, draw(st.sampled_from([1, 3, -2]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=config_maps())
def test_packed_arrays_compute_the_spike_product_at_the_configurations_shapes(case):
    """The configurations' N and d (one head): exact, and every value within the bounds the packing states
    (:meth:`Packing.largest`), which are within 24 bits; all-ones reaches the kv and gate bounds."""
    q, k, v, heads, multiplier = case
    got, largest = product_steps(q, k, v, heads, multiplier)
    assert np.array_equal(got, _expected(q, k, v, heads, multiplier))
    _, c, h, w = q.shape
    n, d = h * w, c // heads
    packing = choose_packing(n, d)
    bound = packing.largest(n, d)
    assert max(largest.values()) <= PAYLOAD_MAX
    assert largest["p.and"] <= bound["and"] and largest["p.unpack"] <= bound["group"]
    assert largest["p.kv"] <= bound["kv"] and largest["p.gate"] <= bound["gate"]
    assert largest["p.group"] <= bound["group"] and largest.get("p.shift1.0", 0) <= bound["group"]
    if d % packing.fields == 0:  # all-ones fills every field of every word: the bound is reached
        assert largest["p.kv"] == bound["kv"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=config_maps(shapes=[(h, w, d) for h in (1, 2, 3) for w in (1, 3, 4) for d in (1, 2, 3, 5)],
                        heads=(1, 2)))
def test_the_tick_model_of_packed_equals_the_step_model_on_small_shapes(case):
    """Timing (path balancing of q and of the shift levels) and arithmetic together, tick by tick."""
    q, k, v, heads, multiplier = case
    expected = _expected(q, k, v, heads, multiplier)
    assert np.array_equal(product_ticks("packed", q, k, v, heads, multiplier), expected)
    assert np.array_equal(product_steps(q, k, v, heads, multiplier)[0], expected)


def test_a_wrong_shift_is_caught(monkeypatch):
    """Negative control: one bit short in a shift relay breaks the unpacked fields of the all-ones product."""
    q = k = v = np.ones((1, 4, 2, 2), dtype=np.int64)
    assert choose_packing(4, 4).fields > 1

    def short_shift(graph, node, period):
        return [replace(p, projections=tuple(replace(j, weight_exp=j.weight_exp + 1) if j.weight_exp < 0 else j
                                             for j in p.projections)) for p in hw.packed_arrays(graph, node, period)]

    monkeypatch.setitem(PRODUCT_LOWERINGS, "packed", replace(PRODUCT_LOWERINGS["packed"], arrays=short_shift))
    assert not np.array_equal(product_steps(q, k, v, 1, 1)[0], _expected(q, k, v, 1, 1))


def test_the_chosen_packings_save_neurons_and_stay_in_range():
    """CIFAR and ImageNet: two fields of 11 bits (F b = 22 <= 23) at the gate, groups whose sums stay under 2^11,
    kv's counts in narrower fields where that packs more; fewer neurons than ``graded``'s N d^2 + d^2 + N d^2;
    every weight exponent within the estimated range, no shift beyond it in one stage."""
    for n, d in [(64, 32), (196, 64), (49, 64), (64, 48)]:
        packing = choose_packing(n, d)
        assert packing.fields >= 2 and packing.fields * packing.bits <= 23
        assert min(packing.group, d) * n < 1 << packing.bits and packing.problems(n, d) == []
        assert packing.neurons(n, d) < 0.75 * (2 * n * d * d + d * d)
        assert all(WEIGHT_EXP_RANGE[0] <= e <= WEIGHT_EXP_RANGE[1] for e in packing.exponents())
        assert sum(packing.shifts()) == packing.bits and max(packing.shifts()) <= -WEIGHT_EXP_RANGE[0]
    assert choose_packing(64, 32) == Packing(bits=11, fields=2, group=16, kv_bits=7, kv_fields=3)  # re-packed
    assert choose_packing(196, 64) == Packing(bits=11, fields=2, group=8)  # kv's 8-bit fields: two per word too
    assert choose_packing(1, 1).fields == 1  # d = 1: nothing to pack (graded-like cost)


def test_fields_that_cannot_fit_are_refused_by_name():
    assert "group sum" in Packing(bits=6, fields=2, group=4).problems(64, 32)[0]  # 4 x 64 = 256 >= 2^6
    assert "kv fields" in Packing(bits=11, fields=2, group=1, kv_bits=6, kv_fields=3).problems(64, 32)[0]
    assert any("24-bit" in p for p in Packing(bits=12, fields=2, group=1).problems(4096, 8))
    assert any("exponent" in p for p in Packing(bits=4, fields=5, group=1).problems(8, 8))  # 2^16: exponent 9
    node = SpikeProductNode("huge", ("q", "k", "v"), (2, 4096, 2048), heads=1)  # N = 2^23 tokens: no field fits
    graph = type("G", (), {"of_kind": lambda self, kind: [node]})()
    problems = hw.payload_problems(graph, "packed")
    assert problems and problems[0].node == "huge" and problems[0].what.startswith("packed:")
    ok = SpikeProductNode("ok", ("q", "k", "v"), (64, 8, 8), heads=2)
    assert hw.payload_problems(type("G", (), {"of_kind": lambda self, kind: [ok]})(), "packed") == []


def test_packed_is_refused_on_a_binary_spike_chip():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    graph = probe_graph()
    assert hw.attention_problems(graph, LOIHI2, "packed") == []
    assert "binary spikes only" in hw.attention_problems(graph, LOIHI, "packed")[0].what


@pytest.mark.lava
@pytest.mark.parametrize("shape, heads", [((2, 6, 2, 3), 2), ((2, 4, 3, 3), 1)])
def test_packed_arrays_run_exactly_in_lava_from_chip_processes(shape, heads):
    """Lava's ProdNeuron, GradedVec, Sparse (negative weight exponents: its arithmetic right shift), Conv and
    DelaySparse, random maps then all-ones and all-zeros: two heads of d = 3 (two words, one with a missing field),
    and one head of d = 4 over 9 tokens, whose kv words are re-packed for the gate."""
    rng = np.random.default_rng(5)
    q, k, v = ((rng.uniform(size=shape) < 0.6).astype(np.int64) for _ in range(3))
    q, k, v = (np.concatenate([x, np.ones_like(x[:1]), np.zeros_like(x[:1])]) for x in (q, k, v))
    packing = choose_packing(shape[2] * shape[3], shape[1] // heads)
    assert packing.fields > 1 and packing.repacked == (heads == 1)
    expected = _expected(q, k, v, heads, 3)
    assert np.array_equal(product_in_lava("packed", q, k, v, heads, 3), expected)


@pytest.mark.lava
@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny"])
def test_a_tiny_family_runs_whole_in_lava_with_packed_attention(name):
    """The whole network, ``export --attention packed``'s graph, in Lava from chip processes: every LIF spike for
    spike as the simulator."""
    import test_lava_build
    from snn_deploy.graph import input_sequence
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.sims.backends.simulator import simulate
    graph = replace(test_lava_build.spiking_zoo_graph(name), attention="packed")
    x = torch.rand(2, *graph.input.shape, generator=torch.Generator().manual_seed(1))
    run = lava_build.run(graph, input_sequence(graph, x), progress=lambda *_: None)
    assert "LIF" not in run.processes and run.processes.count("ProdNeuron") >= 2
    expected = simulate(graph, x).spikes
    products = {p.name for p in graph.of_kind(SpikeProductNode)}
    attention = [n.name for n in graph.nodes if products & set(n.inputs)]
    assert attention and all(expected[n].any() for n in attention), "the attention LIFs must spike"
    mismatched = [n for n in expected if not torch.equal(run.spikes[n], expected[n])]
    assert not mismatched, mismatched


def test_export_packed_records_it_and_the_report_prices_it(tmp_path):
    """``export --attention packed``: the bundle records it, ``report`` names and prices it (every population kind
    of the lowering in report.json, which matches its schema), its attention LIFs spike as the graph says."""
    import json

    from export_testing import active_model, run_cli
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.modelfile import save_model
    from snn_deploy.sims.hardware.report import schema
    from snn_deploy.sims.hardware.schema import validate
    model = save_model(active_model("spikformer-tiny"), tmp_path / "m.pt", source="test", created_from="test")
    code, out = run_cli("export", model, "--attention", "packed", "-o", tmp_path / "p.loihi")
    assert code == 0, out
    assert load_bundle(tmp_path / "p.loihi").manifest["attention"] == "packed"
    code, out = run_cli("report", tmp_path / "p.loihi", "--dataset", "digits", "--samples", "2", "-o", tmp_path / "r")
    assert code == 0 and "packed lowering" in out, out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert validate(report, schema()) == []
    assert report["mapping"]["spike_products"] == "packed" and not report["mapping"]["violations"]
    kinds = {layer["kind"] for layer in report["layers"]}
    assert {"and", "kv", "gate", "group", "unpack"} <= kinds and kinds & {"shift", "carry"}
