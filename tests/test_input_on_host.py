"""``export --input-on-host``: the analog input layer computed by the host, the chip receiving its binary spikes.

The placement lives in the graph (``Graph.host``), the NIR file (node metadata) and the bundle manifest; target
checks, mapper, cost model and report read it; no backend's spikes change.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import nir
import numpy as np
import pytest
import torch

from export_testing import active_model, quantized
from export_testing import error_line as _error_line
from export_testing import run_cli as _run
from graph_testing import Draw, lif
from snn_deploy.errors import UserError
from snn_deploy.sims.backends import lava_build
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.exporters.frontends import model_file as pipeline
from snn_deploy.exporters.formats.bundle import NETWORK_FILE, Bundle, load_bundle, write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx
from snn_deploy.graph import (
    ConvNode, Graph, InputNode, LOIHI, LOIHI2, ReadoutNode, analog_input_layer, input_sequence,
    target_problems,
)
from snn_deploy.modelfile import save_model
from snn_deploy.sims.hardware.cost import hardware_cost, paper_energy
from snn_deploy.sims.runs.driver import run_dataset
from snn_deploy.sims.hardware.mapper import HOST, map_graph
from snn_deploy.sims.hardware.report import analyse, build, csv_text, schema
from snn_deploy.sims.hardware.schema import validate
from snn_deploy.sims.backends.simulator import simulate


def conv_chain() -> Graph:
    """A sequential network whose only construct Loihi 1 cannot carry is its analog input: graded payloads -> conv
    -> LIF -> strided conv -> LIF -> dense -> LIF, leaky neurons with biases."""
    rng = np.random.default_rng(0)
    leaky = dict(du=3000, dv=500, bias_mant=Draw(-20, 60), bias_exp=Draw(0, 3), rng=rng)
    return Graph([
        InputNode("input", (), (2, 8, 8), scale=255.0),
        ConvNode("c1", ("input",), (4, 8, 8), weight=rng.integers(-60, 80, (4, 2, 3, 3)), padding=(1, 1),
                 graded=True),
        lif("l1", "c1", (4, 8, 8), vth=400, **leaky),
        ConvNode("c2", ("l1",), (6, 4, 4), weight=rng.integers(-100, 128, (6, 4, 3, 3)), stride=(2, 2),
                 padding=(1, 1)),
        lif("l2", "c2", (6, 4, 4), vth=60, **leaky),
        ConvNode("fc", ("l2",), (10, 1, 1), weight=rng.integers(-120, 128, (10, 6, 4, 4))),
        lif("l3", "fc", (10, 1, 1), vth=100, **leaky),
        ReadoutNode("head", ("l3",), (10, 1, 1), weight=rng.normal(size=(3, 10)), bias=np.zeros(3)),
    ], T=4)


def on_host(graph: Graph) -> Graph:
    return dataclasses.replace(graph, host=analog_input_layer(graph))


def inputs(graph: Graph, batch: int = 3) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (graph.T, batch, *graph.input.shape)))


def test_the_analog_input_layer_is_the_convs_reading_the_input_and_the_lifs_they_feed():
    assert analog_input_layer(conv_chain()) == {"c1", "l1"}
    assert conv_chain().host == frozenset()


@pytest.mark.parametrize("host, match", [({"nope"}, "unknown"), ({"input"}, "only convs and LIFs"),
                                         ({"l1"}, r"reads \['c1'\] from the chip"),
                                         ({"c1"}, r"feeds \['l1'\] on the chip"),
                                         ({"c1", "l1", "c2"}, r"feeds \['l2'\] on the chip")])
def test_a_placement_the_host_cannot_compute_or_hand_over_as_spikes_is_refused(host, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(conv_chain(), host=frozenset(host))


def test_loihi1_export_fails_without_the_flag_and_succeeds_with_it(monkeypatch):
    monkeypatch.setattr(pipeline, "lower", lambda model: conv_chain())
    prepared = pipeline.Prepared(model=None, quantization={}, rewrites={})  # lower is replaced: no model needed
    with pytest.raises(UserError, match="1 layer") as caught:
        pipeline.lower_for_target(prepared, LOIHI)
    assert "analog input" in str(caught.value) and "at c1 " in str(caught.value)
    assert "--input-on-host" in str(caught.value)
    graph = pipeline.lower_for_target(prepared, LOIHI, input_on_host=True)
    assert graph.host == {"c1", "l1"} and not target_problems(graph, LOIHI)
    assert not map_graph(graph, LOIHI).violations


def test_other_loihi1_problems_stay_reported():
    graph = lower(quantized("spikformer-tiny"))
    before, after = target_problems(graph, LOIHI), target_problems(on_host(graph), LOIHI)
    assert {p.node for p in before} - {p.node for p in after} == {"patch_embed.proj_conv"}
    assert {p.what.split(",")[0] for p in after} == {"integer residual stream as graded spikes",
                                                     "spike product needs graded messages"}
    assert "--input-on-host" in next(p.fix for p in before if p.node == "patch_embed.proj_conv")
    assert not any("--input-on-host" in p.fix for p in after)


def test_bundle_and_nir_round_trip_keep_the_placement(tmp_path):
    graph = on_host(conv_chain())
    write_bundle(graph, tmp_path / "host", target=LOIHI, quantization={}, extra={})
    bundle = load_bundle(tmp_path / "host")
    assert bundle.graph.host == {"c1", "l1"}
    assert bundle.manifest["input"]["host_layers"] == ["c1", "l1"]
    assert bundle.manifest["input"]["chip_receives"] == {"l1": "binary spikes"}
    ir = nir.read(str(tmp_path / "host" / NETWORK_FILE))
    assert [bool(ir.nodes[n].metadata["snn_deploy"]["host"]) for n in ("c1", "l1", "c2", "l2")] == [
        True, True, False, False]
    write_bundle(conv_chain(), tmp_path / "chip", target=LOIHI2, quantization={}, extra={})
    chip = load_bundle(tmp_path / "chip")
    assert chip.graph.host == frozenset() and chip.manifest["input"]["host_layers"] == []
    assert chip.manifest["input"]["chip_receives"] == {"input": "graded payloads"}


def test_the_mapper_gives_host_layers_no_cores_and_receives_their_spikes_from_the_host():
    graph = conv_chain()
    chip, host = map_graph(graph, LOIHI2), map_graph(on_host(graph), LOIHI2)
    assert len(host.cores) == len(chip.cores) - len(chip.layers["l1"].cores) < len(chip.cores)
    layer = host.layers["l1"]
    assert (layer.placement, len(layer.cores), layer.synapses, layer.stored_synapses, layer.depth,
            layer.limited_by) == ("host", 0, 0, 0, 0, None)
    assert "l1" not in {c.population for c in host.cores} | {p.name for p in host.populations}
    assert sum(c.memory_bits for c in host.cores) == sum(c.memory_bits for c in chip.cores
                                                         if c.population != "l1")
    from_l1 = [t for t in host.traffic if t.source == "l1"]
    assert from_l1 and all((t.src == HOST).all() for t in from_l1)
    assert not any(t.source == "input" for t in host.traffic)
    assert (chip.layers["l2"].depth, host.layers["l2"].depth) == (2, 1)
    assert [v.node for v in map_graph(graph, LOIHI).violations] == ["c1"]


def test_cost_charges_host_layers_nothing_on_chip_and_the_paper_convention_is_unchanged():
    graph, hosted = conv_chain(), on_host(conv_chain())
    x = inputs(graph, 4)
    activity = run_dataset(hosted, x, torch.zeros(4, dtype=torch.long))
    assert all(activity.spikes[n].sum() > 0 for n in ("l1", "l2", "l3")), "a silent layer would prove nothing"
    chip = hardware_cost(graph, map_graph(graph, LOIHI2), activity)
    host = hardware_cost(hosted, map_graph(hosted, LOIHI2), activity)
    assert sum(host.layer_energy_pj["l1"].values()) == 0 and host.layer_synops["l1"] == 0
    # l1's spikes come from the host, so their delivery is charged to the receiver, as the input's is
    assert host.layer_energy_pj["l2"]["spike_delivery"] > chip.layer_energy_pj["l2"]["spike_delivery"]
    assert host.synaptic_ops == chip.synaptic_ops - chip.layer_synops["l1"]
    assert paper_energy(hosted, activity) == paper_energy(graph, activity)
    assert paper_energy(hosted, activity).layers[0].kind == "mac"


def test_the_report_lists_host_layers_with_no_cores(tmp_path):
    graph = on_host(conv_chain())
    activity = run_dataset(graph, inputs(graph), torch.zeros(3, dtype=torch.long))
    report = build(analyse(graph, LOIHI, activity), Bundle(tmp_path, graph, {}), dataset="none", split="test")
    assert validate(report, schema()) == []
    rows = {row["name"]: row for row in report["layers"]}
    assert list(rows) == ["l1", "l2", "l3"]
    assert (rows["l1"]["placement"], rows["l1"]["cores"], rows["l1"]["energy_pj"]) == ("host", 0, 0.0)
    assert rows["l1"]["paper_energy_pj"] > 0 and rows["l1"]["spikes"] > 0
    assert rows["l2"]["placement"] == "chip" and rows["l2"]["cores"] >= 1
    assert report["mapping"]["violations"] == []
    csv_rows = list(csv.DictReader(io.StringIO(csv_text(report))))
    assert [r["placement"] for r in csv_rows] == ["host", "chip", "chip"]


def test_spikes_do_not_change_in_the_simulator_and_onnx(tmp_path):
    graph = conv_chain()
    nir_io.write(on_host(graph), tmp_path / "net.nir")
    hosted = nir_io.read(tmp_path / "net.nir")
    x = inputs(graph)
    expected, got = simulate(graph, x), simulate(hosted, x)
    for name, spikes in expected.spikes.items():
        assert torch.equal(got.spikes[name], spikes), name
    assert torch.equal(got.logits, expected.logits)
    onnx_spikes, onnx_logits = run_onnx(to_onnx(hosted), hosted, x)
    assert all(torch.equal(onnx_spikes[n], s) for n, s in expected.spikes.items())
    assert torch.allclose(onnx_logits, expected.logits, rtol=0, atol=1e-9)


@pytest.mark.lava
def test_lava_runs_host_layers_as_the_same_processes_with_the_same_spikes():
    graph = conv_chain()
    x = inputs(graph, 2)
    expected = simulate(graph, x).spikes
    got = lava_build.run(on_host(graph), input_sequence(graph, x)).spikes
    assert all(torch.equal(got[n], s) for n, s in expected.items())


def test_cli_export_input_on_host_end_to_end(tmp_path):
    model = save_model(active_model("qkformer-tiny-8x8"), tmp_path / "qk.pt", source="test", created_from="test")
    host_layers = ["patch_embed1.proj_conv", "patch_embed1.proj_lif"]
    code, out = _run("export", model, "-o", tmp_path / "chip.loihi")
    assert code == 0 and "computed on the host" not in out, out
    code, out = _run("export", model, "--target", "loihi2", "--input-on-host", "-o", tmp_path / "host.loihi")
    assert code == 0 and f"computed on the host: {', '.join(host_layers)}" in out, out
    bundle = load_bundle(tmp_path / "host.loihi")
    assert bundle.graph.host == set(host_layers)
    assert bundle.manifest["input"]["chip_receives"] == {"patch_embed1.proj_lif": "binary spikes"}
    reports = {}
    for name in ("chip", "host"):
        code, out = _run("simulate", tmp_path / f"{name}.loihi", "--dataset", "digits", "--samples", "8",
                         "--json", tmp_path / f"{name}.json")
        assert code == 0, out
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
    chip, host = reports["chip"], reports["host"]
    first = next(row for row in host["layers"] if row["name"] == "patch_embed1.proj_lif")
    assert (first["placement"], first["cores"]) == ("host", 0)
    assert host["mapping"]["cores"] < chip["mapping"]["cores"]
    assert host["run"]["accuracy"] == chip["run"]["accuracy"]
    assert host["paper_45nm"]["energy_pj"] == chip["paper_45nm"]["energy_pj"]

    code, out = _run("export", model, "--target", "loihi1", "-o", tmp_path / "l1.loihi")
    assert code == 2 and "patch_embed1.proj_conv" in _error_line(out) and "--input-on-host" in out
    code, out = _run("export", model, "--target", "loihi1", "--input-on-host", "-o", tmp_path / "l1.loihi")
    line = _error_line(out)
    assert code == 2 and "patch_embed1.proj_conv" not in line and "integer residual stream" in line
    code, out = _run("export", model, "--target", "onnx", "--input-on-host", "-o", tmp_path / "m.onnx")
    assert code == 2 and "--input-on-host" in _error_line(out)
    assert not (tmp_path / "l1.loihi").exists() and not (tmp_path / "m.onnx").exists()
