"""Quantization, lowering to the integer graph, NIR round trip and bundles."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from export_testing import active_model, images, quantized
from snn_deploy.errors import UserError
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.exporters.formats.bundle import MANIFEST_FILE, NETWORK_FILE, load_bundle, write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.sims.backends.torch_reference import torch_spikes
from snn_deploy.sims.runs.verify import compare
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, LOIHI, LOIHI2, SpikeProductNode, SumNode
from snn_deploy.quant import QuantReport, bias_to_mant_exp, choose_vth_and_exponent, quantize, restructure
from snn_deploy.sims.backends.simulator import simulate

DEPLOYABLE_TINY = ["spikformer-tiny", "spikformer-v2-tiny"]


@pytest.mark.parametrize("name", DEPLOYABLE_TINY)
def test_integer_model_and_simulator_agree_on_every_layer(name):
    model = quantized(name)
    graph = lower(model)
    x = images(6)
    report = compare(graph, {"torch": torch_spikes(model, graph, x), "sim": (lambda r: (r.spikes, r.logits))(
        simulate(graph, x))}, labels=None)
    assert report.exact, report.first_divergence()
    checked = [layer for layer in report.layers if layer.mismatches["sim"] is not None]
    assert len(checked) >= 10
    active = [layer for layer in checked if 0 < layer.spikes["torch"] < layer.neurons * graph.T * 6]
    assert len(active) >= len(checked) // 2, "too few layers spike for the comparison to mean anything"


def test_quantized_model_tracks_the_loihi_mode_model():
    model = active_model("spikformer-tiny")
    x = images(32)
    with torch.no_grad():
        before = model(x).argmax(1)
    quantize(model)
    with torch.no_grad():
        after = model(x.double()).argmax(1)
    assert (before == after).double().mean() >= 0.8


def test_choose_vth_and_exponent_fills_the_weight_range():
    vth, exp = choose_vth_and_exponent(0.5, 2.0)  # k = vth / 2; 0.5 k = 254 -> vth = 1016
    assert (vth, exp) == (1016, 0)
    vth, exp = choose_vth_and_exponent(100.0, 2.0)  # vth would be 5: the exponent grows until vth >= 64
    assert exp == 4 and vth == int(254 * 16 * 2 / 100)
    assert choose_vth_and_exponent(1e-9, 2.0)[0] == L.VTH_RANGE[1]


def test_bias_mantissa_and_exponent():
    mant, exp, clipped = bias_to_mant_exp(torch.tensor([100.0, -5000.0, 4095.0, 1e9]))
    assert mant[:3].tolist() == [100, -2500, 4095] and exp[:3].tolist() == [0, 1, 0]
    assert clipped == 1 and exp[3] == L.BIAS_EXP_HW_RANGE[1]


def test_hand_computed_fold_of_one_unit():
    from snn_deploy.models.units import UnitHost

    host = UnitHost()
    host.add_unit("u", torch.nn.Conv2d(1, 1, 1, bias=False), 1, mode="loihi", input="spikes")
    host.u_conv.weight.data.fill_(0.5)
    host.u_bn.running_mean.fill_(0.25)
    host.u_bn.eps = 0.0
    host.u_bn.running_var.fill_(4.0)
    host.u_bn.weight.data.fill_(2.0)
    host.u_bn.bias.data.fill_(0.75)
    host.eval()
    report = quantize(host)
    # W' = 0.5 * 2 / 2 = 0.5, b' = -0.25 * 1 + 0.75 = 0.5; theta 1, tau 2 -> vth = 254 * 2 / 0.5 = 1016, k = 508
    unit = report.units[0]
    assert (unit.vth, unit.weight_exp) == (1016, 0)
    assert host.u_conv.weight.item() == 254
    assert unit.bias_mant[0] << unit.bias_exp[0] == round(0.5 * 508 * 64)


def test_restructure_rebuilds_an_integer_model_from_its_record():
    model = active_model("spikformer-tiny")
    report = QuantReport.from_dict(json.loads(json.dumps(quantize(model).to_dict())))
    fresh = active_model("spikformer-tiny", seed=5)
    restructure(fresh, report)
    fresh.load_state_dict(model.state_dict(), strict=True)
    x = images(2).double()
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


def test_nir_round_trip_is_exact_and_loads_with_nir_read(tmp_path):
    graph = lower(quantized("spikformer-tiny"))
    path = tmp_path / "net.nir"
    nir_io.write(graph, path)
    ir = nir.read(str(path))
    assert "snn_deploy.spike_product" in [e.decode() if isinstance(e, bytes) else e
                                          for e in ir.metadata["snn_deploy"]["required_extensions"]]
    back = nir_io.read(path)
    assert [n.name for n in back.nodes] == [n.name for n in graph.nodes]
    x = images(3)
    a, b = simulate(graph, x), simulate(back, x)
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes) and torch.equal(a.logits, b.logits)
    kinds = {type(node).__name__ for node in ir.nodes.values()}
    assert {"Conv2d", "CubaLIF", "Scale", "SumPool2d", "Affine", "Delay"} <= kinds


def test_spike_product_extension_cannot_run_silently(tmp_path):
    graph = lower(quantized("spikformer-tiny"))
    ir = nir_io.to_nir(graph)
    products = [n for n in ir.nodes.values() if isinstance(n, nir.Delay)]
    assert products and all(np.isnan(p.delay).all() for p in products)


def test_nir_file_from_elsewhere_is_refused(tmp_path):
    path = tmp_path / "plain.nir"
    nir.write(str(path), nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                            "output": nir.Output(output_type={"output": np.array([2])})},
                                     edges=[("input", "output")]))
    with pytest.raises(UserError, match="not written by snn-deploy"):
        nir_io.read(path)
    (tmp_path / "broken.nir").write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(UserError, match="not a readable NIR file"):
        nir_io.read(tmp_path / "broken.nir")


def _graph() -> Graph:
    return lower(quantized("spikformer-tiny"))


def test_bundle_round_trip_hashes_and_refusals(tmp_path):
    graph = _graph()
    out = tmp_path / "bundle"
    write_bundle(graph, out, target=LOIHI2, quantization={"schema_version": 1}, extra={"arch": "spikformer-tiny"})
    bundle = load_bundle(out)
    manifest = bundle.manifest
    assert manifest["T"] == graph.T and manifest["pipeline_latency_steps"] == max(graph.depths().values())
    assert manifest["required_extensions"] == ["snn_deploy.spike_product"]
    with pytest.raises(UserError, match="already exists"):
        write_bundle(graph, out, target=LOIHI2, quantization={}, extra={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # nothing half-written beside it
    first = (out / NETWORK_FILE).read_bytes()
    write_bundle(graph, out, target=LOIHI2, quantization={"schema_version": 1}, extra={"arch": "spikformer-tiny"},
                 force=True)
    assert (out / NETWORK_FILE).read_bytes() == first  # deterministic
    with (out / NETWORK_FILE).open("ab") as f:
        f.write(b"x")
    with pytest.raises(UserError, match="does not match its hash"):
        load_bundle(out)
    (out / MANIFEST_FILE).write_text("{")
    with pytest.raises(UserError, match="damaged JSON"):
        load_bundle(out)


def test_binary_spike_target_lists_every_graded_layer():
    from snn_deploy.graph import target_problems

    graph = _graph()
    problems = target_problems(graph, LOIHI)
    graded = [n.name for n in graph.nodes if isinstance(n, ConvNode) and n.graded]
    products = [n.name for n in graph.nodes if isinstance(n, SpikeProductNode)]
    assert sorted(p.node for p in problems) == sorted(graded + products)
    assert not target_problems(graph, LOIHI2)


def test_graph_structure_of_tiny_spikformer():
    graph = _graph()
    assert isinstance(graph.nodes[0], InputNode) and graph.input.scale == 255.0
    sums = graph.of_kind(SumNode)
    assert [s.name for s in sums][:3] == ["patch_embed.rpe_add", "block.0.attn_add", "block.0.mlp_add"]
    depths = graph.depths()
    assert depths["patch_embed.proj_lif"] == 1 and depths["block.0.attn.attn_lif"] == depths["block.0.attn.q_lif"] + 1
    assert all(isinstance(graph[n.inputs[0]], ConvNode) or isinstance(graph[n.inputs[0]], SpikeProductNode)
               for n in graph.of_kind(LIFNode))


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny"])
def test_input_layer_worst_case_fits_the_current_register(name):
    from snn_deploy.graph import current_bounds
    from snn_deploy.quant import INPUT_CURRENT_MAX

    graph = lower(quantized(name))
    first_lif = next(n for n in graph.nodes if isinstance(n, LIFNode))
    assert current_bounds(graph)[first_lif.name] <= INPUT_CURRENT_MAX
