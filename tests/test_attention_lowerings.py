"""The spike-product lowerings (export --attention coincidence | graded | token-serial, snn_deploy/graph/hardware.py):
each one's populations, run tick by tick as the chip would step them, equal the simulator's spike product; the
mapper prices them with each neuron variant's per-core limit; the bundle records the choice; a lowering that cannot
be exact is refused by name."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn_deploy.fixedpoint import spike_product
from snn_deploy.graph import LOIHI, LOIHI2, SpikeProductNode
from snn_deploy.graph import hardware as hw
from snn_deploy.graph.hardware import COINCIDENCE, PRODUCT_LOWERINGS, sparse_pairs, synapse_delays
from snn_deploy.watchdog import stop_runtime

LOWERINGS = tuple(PRODUCT_LOWERINGS)


def _graph(shape):
    """Stands in for a graph where only the shapes of q, k, v are read."""
    return {n: SimpleNamespace(shape=shape) for n in "qkv"}


def _decay(x: np.ndarray, d: int) -> np.ndarray:
    """Lava's fixed-point decay: sign-magnitude ``x (4096 - d) >> 12``."""
    return np.sign(x) * ((np.abs(x) * (4096 - d)) >> 12)


def product_network(lowering: str, shape, heads: int, multiplier: int):
    """The populations of ``lowering`` for one spike product of q, k, v maps of ``shape`` (C, H, W), then a sink
    read as the attention LIF reads them; their depths (the lowering's timing contract,
    ``hardware.population_depths``), the ticks per step, and each projection's path-balancing delay."""
    c, h, w = shape
    node = SpikeProductNode("p", ("q", "k", "v"), shape, heads=heads, multiplier=multiplier)
    spec = PRODUCT_LOWERINGS[lowering]
    period = spec.substeps(None, node)
    pops = spec.arrays(_graph(shape), node, period)
    read = hw.attention_read(node, pops[-1])
    sink = SimpleNamespace(name="sink", kind="sink", neuron="sink", shape=shape, projections=(read,),
                           neurons=c * h * w, bias=0, graded=True)
    pops = [*pops, sink]
    depth = dict.fromkeys("qkv", 0)
    for pop in pops:
        depth[pop.name] = max((depth[p.source] + 1 + p.wait for p in pop.projections if not p.periodic), default=0)
    balance = {}
    for pop in pops:
        for proj in pop.projections:
            delay = depth[pop.name] - 1 - proj.wait - depth[proj.source]
            balance[pop.name, proj.source, proj.weight] = delay % period if proj.periodic else delay
    return pops, depth, period, balance


def product_ticks(lowering: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, multiplier: int
                  ) -> np.ndarray:
    """The populations of ``lowering`` for one spike product, stepped tick by tick with the neuron models Lava's
    fixed-point processes implement (coincidence LIF, GradedVec, ProdNeuron, Sigma, a clock LIF on its bias),
    every synapse's weight and delay (the lowering's own plus path balancing) and each projection's weight
    exponent; q, k, v [T, C, H, W] arrive at tick t P (P = ticks per step). Returns the current the attention LIF
    receives at each step, [T, C, H, W]."""
    steps, c, h, w = q.shape
    pops, depth, period, balance = product_network(lowering, (c, h, w), heads, multiplier)
    ticks = steps * period + depth["sink"] + 2 * period + 64
    size = {"q": c * h * w, "k": c * h * w, "v": c * h * w, **{p.name: p.neurons for p in pops}}
    out = {n: np.zeros((ticks, size[n]), dtype=np.int64) for n in size}
    for n, x in zip("qkv", (q, k, v)):
        out[n][np.arange(steps) * period] = x.reshape(steps, -1)
    inbox = {p.name: np.zeros((len(p.projections), ticks + 128, p.neurons), dtype=np.int64) for p in pops}
    wiring = []
    for pop in pops:
        for index, proj in enumerate(pop.projections):
            rows, cols = sparse_pairs(proj, pop.shape)
            delays = synapse_delays(proj, pop.shape, rows, cols) + balance[pop.name, proj.source, proj.weight]
            assert delays.min() >= 0
            wiring.append((proj.source, pop.name, index, rows, cols, delays, hw.pair_weights(proj, pop.shape, rows,
                                                                                            cols)))
    exps = {p.name: np.array([getattr(proj, "weight_exp", 0) for proj in p.projections], np.int64)[:, None]
            for p in pops}
    state = {p.name: (np.zeros(p.neurons, np.int64), np.zeros(p.neurons, np.int64)) for p in pops}
    for t in range(ticks):
        for pop in pops:
            a = inbox[pop.name][:, t]  # W @ s per projection, then its weight exponent (>> below 0: floor)
            a = np.where(exps[pop.name] >= 0, a << np.maximum(exps[pop.name], 0), a >> np.maximum(-exps[pop.name], 0))
            u, volt = state[pop.name]
            if pop.neuron == "coincidence":
                u[:] = _decay(u, COINCIDENCE["du"]) + (a.sum(0) << 6)
                volt[:] = _decay(volt, COINCIDENCE["dv"]) + u
                fired = volt > COINCIDENCE["vth"] << 6
                volt[fired] = 0
                out[pop.name][t] = fired
            elif pop.neuron in ("graded", "sink"):
                out[pop.name][t] = a.sum(0)
            elif pop.neuron == "product":
                out[pop.name][t] = a[0] * a[1:].sum(0)  # every later projection adds into the second operand
            elif pop.neuron == "accumulator":
                u += a.sum(0)
                out[pop.name][t] = u
            elif pop.neuron == "clock":  # fires on the first tick of every period
                out[pop.name][t] = int(t % pop.bias == 0)
            else:
                raise AssertionError(pop.neuron)
        for source, target, index, rows, cols, delays, weight in wiring:
            sent = out[source][t][cols]
            hit = sent != 0
            np.add.at(inbox[target][index], (t + 1 + delays[hit], rows[hit]), weight[hit] * sent[hit])
    got = out["sink"][np.arange(steps) * period + depth["sink"]]
    return got.reshape(steps, c, h, w)


def product_in_lava(lowering: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, multiplier: int
                    ) -> np.ndarray:
    """The same populations built by the Lava builder's own functions (``_population``, ``_sparse``) from Loihi 2
    processes, fed q, k, v from RingBuffers at tick t P, read through a GradedVec sink; [T, C, H, W]."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer

    from snn_deploy.fixedpoint import torch_image_to_lava
    from snn_deploy.sims.backends import lava_build as lb
    from snn_deploy.sims.backends.lava_chip import non_chip_types

    steps, c, h, w = q.shape
    pops, depth, period, balance = product_network(lowering, (c, h, w), heads, multiplier)
    total = steps * period + depth["sink"] + 1
    procs = {}
    for n, x in zip("qkv", (q, k, v)):
        frames = np.zeros((total, c, h, w), dtype=np.int32)
        frames[np.arange(steps) * period] = x
        procs[n] = RingBuffer(data=np.moveaxis(torch_image_to_lava(frames), 0, -1))
    built = []
    for pop in pops:
        procs[pop.name] = (GradedVec(shape=(pop.neurons,), vth=0) if pop.kind == "sink"
                           else lb._population(pop, None, 0, True))
        for index, proj in enumerate(pop.projections):
            graded = proj.source not in "qkv" and next(p for p in pops if p.name == proj.source).graded
            synapse = lb._sparse(None, pop, proj, balance[pop.name, proj.source, proj.weight], graded)
            lb._connect(procs[proj.source].s_out, synapse.s_in)
            lb._connect(synapse.a_out, lb._in(procs[pop.name], index))
            built.append(synapse)
    assert non_chip_types([*procs.values(), *built]) == []
    recorder = Extractor(shape=(c * h * w,), buffer_size=total)
    procs["sink"].s_out.connect(recorder.in_port)
    source = procs["q"]
    source.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(
        select_tag="fixed_pt", exception_proc_model_map={recorder: PyLoihiExtractorModel}))
    try:
        frames = np.stack([recorder.receive() for _ in range(total)])
    finally:
        stop_runtime(source)
    # the source sends frame t at Lava time step t + 1: tick t of the tick model
    got = frames[np.arange(steps) * period + depth["sink"]].reshape(steps, w, h, c)
    return np.moveaxis(got, (1, 2, 3), (3, 2, 1)).astype(np.int64)


@st.composite
def spike_maps(draw):
    """q, k, v [T, C, H, W]: random densities per step, then all-ones (full-scale counts), all-zeros and one step
    with q = k = v."""
    heads = draw(st.sampled_from([1, 2]))
    d = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    steps = draw(st.integers(1, 3))
    shape = (steps, heads * d, h, w)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    p = rng.uniform(0, 1, (3, steps, 1, 1, 1))
    q, k, v = ((rng.uniform(size=shape) < p[i]).astype(np.int64) for i in range(3))
    ones, zeros = np.ones((1, *shape[1:]), np.int64), np.zeros((1, *shape[1:]), np.int64)
    same = (rng.uniform(size=(1, *shape[1:])) < 0.5).astype(np.int64)
    q, k, v = (np.concatenate([x, ones, zeros, same]) for x in (q, k, v))
    return q, k, v, heads, draw(st.sampled_from([1, 3, -2]))


def _expected(q, k, v, heads, multiplier):
    steps, c, h, w = q.shape
    flat = [x.reshape(steps, c, h * w) for x in (q, k, v)]
    return np.asarray(spike_product(*flat, heads, multiplier)).reshape(q.shape)


@pytest.mark.parametrize("lowering", LOWERINGS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(case=spike_maps(), lane_ticks=st.sampled_from([2, 3, 24]))
def test_each_lowering_ticks_out_the_spike_product(lowering, case, lane_ticks, monkeypatch):
    """Small lanes (2, 3 tokens) make the token-serial stream several lanes deep on these tiny maps."""
    monkeypatch.setattr(hw, "SERIAL_LANE_TICKS", lane_ticks)
    assert np.array_equal(product_ticks(lowering, *case), _expected(*case))


def test_the_tick_model_catches_a_wrong_window(monkeypatch):
    """Negative control: a kv window two ticks short of the period (one short still covers the gate phase) drops a token of the step it gates."""
    q = k = v = np.ones((2, 2, 2, 3), dtype=np.int64)
    def short_window(graph, node, period):
        pops = hw.serial_arrays(graph, node, period)
        return [replace(p, projections=(p.projections[0], replace(p.projections[1], delay=period - 2)))
                if p.kind == "kv" else p for p in pops]
    monkeypatch.setitem(PRODUCT_LOWERINGS, "token-serial", replace(PRODUCT_LOWERINGS["token-serial"],
                                                                   arrays=short_window))
    assert not np.array_equal(product_ticks("token-serial", q, k, v, 1, 1), _expected(q, k, v, 1, 1))


def test_token_serial_shares_the_arrays_over_tokens_and_states_its_ticks():
    node = SpikeProductNode("p", ("q", "k", "v"), (384, 8, 8), heads=12)
    rows, cols, tokens = hw._lane(node)
    assert (rows, cols, tokens) == (2, 8, 16)  # 4 lanes of 16 tokens
    pops = {p.kind: p for p in hw.serial_arrays(_graph((384, 8, 8)), node, 2 * tokens)}
    assert pops["and"].neurons == pops["gate"].neurons == 12 * 32 * 32 * 4  # heads d^2 per lane
    assert pops["kv"].neurons == 12 * 32 * 32 and pops["demux"].neurons == 384 * 64  # heads d^2; heads N d
    assert {p.kind: p.variant for p in pops.values()} == {
        "and": "one-variable", "kv": "one-variable", "gate": "one-variable", "clock": "two-variable",
        "demux": "one-variable"}
    assert PRODUCT_LOWERINGS["token-serial"].substeps(None, node) == 32
    coincidence = {p.kind: p for p in hw.product_arrays(_graph((384, 8, 8)), node)}
    assert coincidence["and"].neurons == 12 * 64 * 32 * 32 and coincidence["and"].variant == "two-variable"


def test_the_mapper_packs_each_variant_to_its_limit():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    from snn_deploy.sims.hardware.mapper import map_graph
    graph = probe_graph()
    assert LOIHI2.neurons_per_core_for("one-variable") == 8192 and LOIHI2.neurons_per_core_for("two-variable") == 4096
    for lowering in LOWERINGS:
        mapping = map_graph(graph, LOIHI2, products=lowering)
        assert mapping.products == lowering and mapping.ticks_per_step == PRODUCT_LOWERINGS[lowering].substeps(
            graph, graph.of_kind(SpikeProductNode)[0])
        for core in mapping.cores:
            pop = next(p for p in mapping.populations if p.name == core.population)
            assert core.variant == pop.variant and core.neurons <= LOIHI2.neurons_per_core_for(pop.variant)
    assert map_graph(graph, LOIHI2).products == graph.attention == "coincidence"


def test_graded_lowerings_are_refused_on_a_binary_spike_chip_and_token_serial_where_lifs_do_not_hold():
    from snn_deploy.sims.backends.lava_chip import probe_graph
    graph = probe_graph()
    assert hw.attention_problems(graph, LOIHI2, "coincidence") == []
    assert hw.attention_problems(graph, LOIHI2, "graded") == []
    assert "binary spikes only" in hw.attention_problems(graph, LOIHI, "graded")[0].what
    serial = hw.attention_problems(graph, LOIHI2, "token-serial")
    assert len(serial) == 1 and "decay" in serial[0].what and serial[0].node in [n.name for n in graph.nodes]


def test_a_payload_over_24_bits_is_refused_by_name():
    node = SpikeProductNode("p", ("q", "k", "v"), (4096, 64, 64), heads=1)
    graph = SimpleNamespace(of_kind=lambda kind: [node])
    problems = hw.payload_problems(graph, "token-serial")
    assert problems and problems[0].node == "p" and "24-bit" in problems[0].what
    assert hw.payload_problems(graph, "graded") == []  # kv at most N = 4096


@pytest.mark.lava
@pytest.mark.parametrize("lowering", ["graded", "token-serial"])
def test_the_lowering_runs_exactly_in_lava_from_chip_processes(lowering, monkeypatch):
    """Lava's own fixed-point processes (ProdNeuron, GradedVec, Sigma, LIF, DelaySparse) agree with the tick model
    and the spike product: two lanes of three tokens, random maps then all-ones and all-zeros."""
    monkeypatch.setattr(hw, "SERIAL_LANE_TICKS", 3)
    rng = np.random.default_rng(3)
    shape = (2, 4, 2, 3)  # T, C (2 heads of d = 2), H, W
    q, k, v = ((rng.uniform(size=shape) < 0.5).astype(np.int64) for _ in range(3))
    q, k, v = (np.concatenate([x, np.ones_like(x[:1]), np.zeros_like(x[:1])]) for x in (q, k, v))
    expected = _expected(q, k, v, 2, 3)
    assert np.array_equal(product_ticks(lowering, q, k, v, 2, 3), expected)
    assert np.array_equal(product_in_lava(lowering, q, k, v, 2, 3), expected)


@pytest.fixture(scope="module")
def qk_model(tmp_path_factory):
    from export_testing import active_model
    from snn_deploy.modelfile import save_model
    return save_model(active_model("qkformer-tiny"), tmp_path_factory.mktemp("models") / "qk.pt", source="test",
                      created_from="test")


def test_export_records_the_lowering_and_the_report_names_it(qk_model, tmp_path):
    import json

    from export_testing import error_line, run_cli
    from snn_deploy.exporters.formats.bundle import load_bundle
    code, out = run_cli("export", qk_model, "--attention", "graded", "-o", tmp_path / "g.loihi", "--json",
                        tmp_path / "e.json")
    assert code == 0, out
    bundle = load_bundle(tmp_path / "g.loihi")
    assert bundle.manifest["attention"] == bundle.graph.attention == "graded"
    assert json.loads((tmp_path / "e.json").read_text())["attention"] == "graded"
    code, out = run_cli("simulate", tmp_path / "g.loihi", "--dataset", "digits", "--samples", "2")
    assert code == 0 and "the graded lowering" in out, out
    code, out = run_cli("export", qk_model, "-o", tmp_path / "c.loihi")
    assert code == 0 and load_bundle(tmp_path / "c.loihi").manifest["attention"] == "coincidence"
    manifest = tmp_path / "g.loihi" / "manifest.json"  # a manifest that contradicts its network is damaged
    manifest.write_text(manifest.read_text().replace('"attention": "graded"', '"attention": "coincidence"'))
    code, out = run_cli("simulate", tmp_path / "g.loihi", "--dataset", "digits", "--samples", "2")
    assert code == 2 and "damaged" in error_line(out)


def test_export_refuses_a_lowering_that_cannot_be_exact_by_name(qk_model, tmp_path):
    from export_testing import error_line, run_cli
    code, out = run_cli("export", qk_model, "--attention", "token-serial", "-o", tmp_path / "t.loihi")
    assert code == 2 and "token-serial" in error_line(out) and "decay" in error_line(out)
    assert not (tmp_path / "t.loihi").exists()
    code, out = run_cli("export", qk_model, "--attention", "graded", "--target", "loihi1", "--input-on-host",
                        "-o", tmp_path / "l1.loihi")
    assert code == 2 and "binary spikes only" in error_line(out)
    code, out = run_cli("export", qk_model, "--attention", "graded", "--target", "onnx", "-o", tmp_path / "x.onnx")
    assert code == 2 and "--attention" in error_line(out)
    code, out = run_cli("export", qk_model, "--attention", "neurons", "-o", tmp_path / "n.loihi")
    assert code == 2 and "coincidence, graded, token-serial" in error_line(out)
    code, out = run_cli("export", qk_model, "-o", tmp_path / "b.loihi")
    assert code == 0, out
    code, out = run_cli("verify", tmp_path / "b.loihi", "--attention", "graded", "--dataset", "digits")
    assert code == 2 and "a bundle computes its spike products as it was exported" in error_line(out)
    import snn_deploy as sd
    from snn_deploy.errors import UserError
    with pytest.raises(UserError, match="a bundle computes its spike products as it was exported"):
        sd.verify(tmp_path / "b.loihi", "digits", attention="graded")  # the API is the CLI's workflow


@pytest.mark.lava
def test_lava_runs_the_graphs_lowering_and_refuses_token_serial():
    from snn_deploy.errors import UserError
    from snn_deploy.graph import input_sequence
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.sims.backends.simulator import simulate
    from test_lava_build import spike_product_graph
    graph = replace(spike_product_graph(), attention="graded")
    x = torch.rand(2, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    payload = input_sequence(graph, x)
    run = lava_build.run(graph, payload)
    assert run.processes.count("ProdNeuron") == 2 and "LIF" not in run.processes  # and, gate: one-variable
    expected = simulate(graph, x).spikes
    assert expected["attn_lif"].any() and all(torch.equal(run.spikes[n], expected[n]) for n in expected)
    with pytest.raises(UserError, match="token-serial"):
        lava_build.build(replace(graph, attention="token-serial"), payload)


def test_qkformer_channel_attention_lowers_to_linear_lif_and_synapses_exactly():
    """QKCA (the paper's channel variant, refused before) as LIF + convs: torch's integer model and the simulator
    agree on every layer; no node or synapse count grows faster than tokens x channels; the token attention stays
    LIF + convs as well (no spike product)."""
    from export_testing import active_model, images
    from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.graph import ConvNode, SpikeProductNode
    from snn_deploy.quant import quantize
    from snn_deploy.sims.backends.simulator import simulate
    from snn_deploy.sims.backends.torch_reference import torch_spikes
    from snn_deploy.sims.runs.verify import compare

    for attention in ("channel", "token"):
        model = active_model("qkformer-tiny", qk_attention=attention)
        if blocking_problems(model):
            model, _ = apply_rewrites(model, ["maxpool-after-lif"])
        quantize(model)
        graph = lower(model)
        x = images(4)
        report = compare(graph, {"torch": torch_spikes(model, graph, x),
                                 "sim": (lambda r: (r.spikes, r.logits))(simulate(graph, x))}, labels=None)
        assert report.exact, report.first_divergence()
        masks = [layer for layer in report.layers if layer.node.endswith(("attn_lif", "mask_and"))]
        assert masks and all(layer.spikes["sim"] for layer in masks), "the masks must spike to mean anything"
        attn = [n for n in graph.nodes if ".attn_" in n.name or ".mask_" in n.name]
        assert attn and not [n for n in attn if isinstance(n, SpikeProductNode)]
        for node in attn:
            if isinstance(node, ConvNode):  # synapses: at most one per (channel, token) of the block's maps
                c, h, w = graph[next(n for n in attn if n.name.endswith("attn_sum")).inputs[0]].shape
                assert hw.conv_pairs(node, graph[node.inputs[0]].shape)[0].size <= c * h * w, node.name


def test_the_readme_demo_figures_name_the_lowering_the_demo_exports():
    from pathlib import Path

    import snn_deploy.cli.demo as demo
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| the demo |"))
    assert "the coincidence lowering" in row and "--attention coincidence" in row
    assert '"--attention", "coincidence"' in Path(demo.__file__).read_text()


@pytest.mark.parametrize("family", ["spikformer-tiny", "spikformer-v2-tiny", "qkformer-tiny"])
def test_every_lowering_ticks_out_each_tiny_familys_products(family, monkeypatch):
    """The spike products of each tiny family, at their own shapes, heads and multipliers, fed the q, k, v spikes
    the simulator records for one sample: every lowering's populations give the product."""
    from export_testing import active_model, images
    from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.quant import quantize
    from snn_deploy.sims.backends.simulator import simulate

    monkeypatch.setattr(hw, "SERIAL_LANE_TICKS", 8)  # several lanes at the tiny maps' sizes
    model = active_model(family)
    if blocking_problems(model):
        model, _ = apply_rewrites(model, ["maxpool-after-lif"])
    quantize(model)
    graph = lower(model)
    spikes = simulate(graph, images(1)).spikes
    products = graph.of_kind(SpikeProductNode)
    assert products
    for node in products[:2]:
        q, k, v = (np.asarray(spikes[name][:, 0], dtype=np.int64) for name in node.inputs)
        expected = _expected(q, k, v, node.heads, node.multiplier)
        assert expected.any(), "the product must be non-zero to mean anything"
        for lowering in LOWERINGS:
            assert np.array_equal(product_ticks(lowering, q, k, v, node.heads, node.multiplier), expected), \
                (node.name, lowering)


def test_a_token_serial_bundle_is_reported_with_its_ticks_and_its_violation(tmp_path):
    """Written past export's refusal (as a hand-made or future bundle could be): the report prices it with P ticks
    per step, names it, lists why it is not exact, and matches its schema."""
    import json

    from export_testing import quantized, run_cli
    from snn_deploy.exporters.formats.bundle import write_bundle
    from snn_deploy.exporters.frontends.zoo import lower
    graph = replace(lower(quantized("spikformer-tiny")), attention="token-serial")
    write_bundle(graph, tmp_path / "ts.loihi", target=LOIHI2, quantization={}, extra={"arch": "spikformer-tiny"})
    code, out = run_cli("report", tmp_path / "ts.loihi", "--dataset", "digits", "--samples", "2", "-o",
                        tmp_path / "r", "--allow-violations")
    assert code == 0, out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    hw_json = report["hardware"]["neurons"]
    ticks = PRODUCT_LOWERINGS["token-serial"].substeps(graph, graph.of_kind(SpikeProductNode)[0])
    assert report["mapping"]["spike_products"] == hw_json["spike_products"] == "token-serial"
    assert hw_json["ticks_per_step"] == ticks and hw_json["ticks"] > graph.T * ticks
    assert any("token-serial" in v["what"] for v in report["mapping"]["violations"])
    assert "token-serial lowering" in (tmp_path / "r" / "report.html").read_text()
