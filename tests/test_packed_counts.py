"""The ``packed`` lowering's activity counts (sims/backends/packed_counts.py, ``hardware.packed_counts``): every
packed population's events and every projection's synaptic ops, counted from q, k, v spikes, equal those of the
lowering's own populations stepped on the same spikes (an independent evaluation: each projection's synapses from
``sparse_pairs`` and its weights, ``W @ s`` shifted by its weight exponent); at a stated rate their expectations
(sims/hardware/stated_activity.py ``packed_expectation``) agree with random spikes at that rate. Lava's own events
and synaptic ops: tests/test_lava_events.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from snn_deploy.graph import SpikeProductNode
from snn_deploy.graph import hardware as hw
from snn_deploy.sims.backends.simulator import product_counts
from snn_deploy.sims.hardware.stated_activity import packed_expectation
from test_attention_lowerings import _graph


def stepped_counts(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int) -> dict[str, list[int]]:
    """Events and synaptic ops per step of the packed populations evaluated from their synapses: a population's
    events are its non-zero values; a projection's ops every (non-zero source value, synapse) pair, synapses as Lava
    holds them (:func:`~snn_deploy.graph.hardware.packed_fanouts`)."""
    steps, c, h, w = q.shape
    node = SpikeProductNode("p", ("q", "k", "v"), (c, h, w), heads=heads)
    pops = hw.PRODUCT_LOWERINGS["packed"].arrays(_graph((c, h, w)), node, 1)
    fans = dict(hw.packed_fanouts((c, h, w), heads))
    out: dict[str, list[int]] = {}
    for t in range(steps):
        values = {n: x[t].reshape(-1).astype(np.int64) for n, x in zip("qkv", (q, k, v))}
        for pop in pops:
            suffix, sums = pop.name.removeprefix("p."), []
            for j, proj in enumerate(pop.projections):
                rows, cols = hw.sparse_pairs(proj, pop.shape)
                wiring = csr_matrix((hw.pair_weights(proj, pop.shape, rows, cols), (rows, cols)),
                                    shape=(pop.neurons, int(np.prod(proj.source_shape))))
                a = wiring @ values[proj.source]
                sums.append(a << proj.weight_exp if proj.weight_exp >= 0 else a >> -proj.weight_exp)
                per_neuron = np.repeat(fans[suffix][j][1], proj.source_shape[1] * proj.source_shape[2])
                out.setdefault(f"{hw.PACKED_OPS}{suffix} {j}", []).append(
                    int(per_neuron @ (values[proj.source] != 0)))
            values[pop.name] = sums[0] * sum(sums[1:]) if pop.neuron == "product" else sum(sums)
            out.setdefault(hw.PACKED_EVENTS + suffix, []).append(int((values[pop.name] != 0).sum()))
    return out


SHAPES = [(c, h, w, heads) for c, heads in ((1, 1), (4, 1), (5, 1), (6, 2), (32, 1)) for h, w in ((2, 3), (3, 3))]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(SHAPES + [(64, 8, 8, 2)]), seed=st.integers(0, 2 ** 16))
def test_packed_counts_equal_the_stepped_lowering(shape, seed):
    """Random densities, then all-ones and all-zeros: two fields, three, re-packed kv, carrying relays."""
    c, h, w, heads = shape
    rng = np.random.default_rng(seed)
    q, k, v = ((rng.uniform(size=(2, c, h, w)) < rng.uniform()).astype(np.int64) for _ in range(3))
    q, k, v = (np.concatenate([x, np.ones_like(x[:1]), np.zeros_like(x[:1])]) for x in (q, k, v))
    node = SpikeProductNode("p", ("q", "k", "v"), (c, h, w), heads=heads)
    counted = product_counts(node, *(torch.from_numpy(x)[:, None] for x in (q, k, v)))
    stepped = stepped_counts(q, k, v, heads)
    assert set(hw.packed_count_keys(node)) == set(stepped)
    for key, expected in stepped.items():
        assert counted[key].tolist() == expected, key
    assert all(counted[key][2] > 0 for key in stepped)  # all-ones: every population sends
    assert all(counted[key][3] == 0 for key in stepped)


def test_the_fan_out_of_v_and_of_the_carrying_relays_depends_on_the_channel():
    """Why per-channel counts: v's field f reaches the ``and`` words only from channels e = f mod F1, a carrying
    relay's shift reads only the shifted half."""
    fans = dict(hw.packed_fanouts((64, 8, 8), 2))
    v_reads = [fan.reshape(2, 32) for source, fan in fans["and"] if source == "v"]  # (head, e)
    reads = np.arange(32) % 3
    assert len(v_reads) == 3 and all((fan[:, reads == f] == 32).all() and not fan[:, reads != f].any()
                                     for f, fan in enumerate(v_reads))
    half = fans["shift1.1"][1][1].reshape(-1, 2, 2)  # (block, half, group)
    assert half[:, 1].all() and not half[:, 0].any()


@pytest.mark.parametrize("shape, heads, rate", [((8, 4, 4), 2, 0.3), ((32, 8, 8), 1, 0.1), ((12, 3, 4), 1, 0.5)])
def test_stated_packed_counts_match_random_spikes_at_that_rate(shape, heads, rate):
    """The stated-rate expectations (fields taken independent) within 5% of 300 random samples' counts."""
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads)
    gen = torch.Generator().manual_seed(0)
    trials = 300
    q, k, v = ((torch.rand(1, trials, *shape, generator=gen) < rate).float() for _ in range(3))
    measured = product_counts(node, q, k, v)
    expected = hw.packed_counts(node, {key: e[None, :] for key, e in packed_expectation(node, rate).items()})
    assert set(expected) == set(hw.packed_count_keys(node))
    for key, value in expected.items():
        assert float(measured[key].sum()) / trials == pytest.approx(float(value[0]), rel=0.05), key
