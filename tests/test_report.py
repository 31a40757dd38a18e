"""``snn-deploy report`` and ``simulate`` end to end: the JSON against its schema, the HTML's plots, the CSV's rows,
atomic and refused outputs, and a run sharded over two processes with torchrun."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from export_testing import quantized
from snn_deploy.cli import cli
from snn_deploy.exporters.formats.bundle import write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2
from snn_deploy.sims.hardware.plots import PLOTS
from snn_deploy.sims.hardware.schema import validate

SAMPLES = "8"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "qk.loihi"
    write_bundle(lower(quantized("qkformer-tiny")), path, target=LOIHI2, quantization={},
                 extra={"arch": "qkformer-tiny"})
    return path


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def report_dir(bundle, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("reports") / "r"
    code, text = _run("report", bundle, "--dataset", "digits", "--samples", SAMPLES, "-o", out)
    assert code == 0, text
    return out, text


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        if tag in ("script", "link") or (tag == "img" and not attrs.get("src", "").startswith("data:")):
            self.external.append(tag)


def test_report_json_validates_against_its_schema(report_dir):
    out, _ = report_dir
    report = json.loads((out / "report.json").read_text())
    schema = json.loads((out / "report.schema.json").read_text())
    assert validate(report, schema) == []
    assert report["schema_version"] == 5 and report["run"]["samples"] == int(SAMPLES)
    assert report["bundle"]["arch"] == "qkformer-tiny" and report["mapping"]["violations"] == []
    assert sum(layer["energy_share"] for layer in report["layers"]) == pytest.approx(1.0)  # of the dynamic energy
    hw = report["hardware"]["neurons"]
    assert hw["provenance"] == "calibrated" and hw["labels"]["time"].startswith(
        "calibrated on PilotNet LIF (lava-dl benchmark), residual")
    assert hw["energy_pj_total"] == pytest.approx(hw["energy_pj_dynamic"] + hw["energy_pj_static"])
    assert {layer["kind"] for layer in report["layers"]} == {"lif", "sum", "and", "kvrow", "kv", "gate"}
    assert all(f["source"] for f in report["hardware"]["neurons"]["constants"].values())
    bound = report["mapping"]["lower_bound"]  # the resource lower bound beside the mapper's cores
    assert bound["global_cores"] <= bound["cores"] <= report["mapping"]["cores"] == bound["mapper_cores"]
    assert all(hw["lower_bound_cores"] <= hw["cores"] for hw in report["hardware"].values())
    # the schema is not vacuous: damaged copies fail
    broken = dict(report, run=dict(report["run"], backend="fpga"))
    del broken["layers"]
    assert {e.split(":")[0] for e in validate(broken, schema)} == {"$", "$.run.backend"}


def test_report_html_is_self_contained_with_every_plot(report_dir):
    out, _ = report_dir
    parser = _Images()
    parser.feed((out / "report.html").read_text())
    assert len(parser.sources) == len(PLOTS) + 1 and not parser.external  # + the spike-product lowerings plot
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    for name in (*PLOTS, "lowerings"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_csv_has_one_row_per_layer(report_dir):
    out, text = report_dir
    report = json.loads((out / "report.json").read_text())
    rows = list(csv.DictReader((out / "layers.csv").open()))
    assert [r["name"] for r in rows] == [layer["name"] for layer in report["layers"]]
    assert rows[0]["shape"] == "8x16x16"
    assert "patch_embed1.proj_lif" in text and "wrote" in text  # the console table


def test_time_per_layer_names_the_bottleneck_core_and_its_limit(report_dir):
    out, text = report_dir
    report = json.loads((out / "report.json").read_text())
    layers, cores, timing = report["layers"], report["cores"], report["timing"]
    slowest = max(layers, key=lambda la: la["time_per_step_ns"])
    assert timing["bottleneck"]["layer"] == slowest["name"] and 0 < slowest["time_share"] <= 1
    for layer in layers:  # the bottleneck core is the layer's slowest core, its time the layer's time
        own = [c for c in cores if c["layer"] == layer["name"]]
        assert layer["bottleneck_core"] == max(own, key=lambda c: c["busy_ns_per_step"])["index"]
        assert layer["time_per_step_ns"] == pytest.approx(max(c["busy_ns_per_step"] for c in own))
        assert layer["time_share"] == pytest.approx(layer["time_per_step_ns"] / timing["step_ns"])
    hw = report["hardware"]["neurons"]
    assert len(timing["timeline_ns"]["total"]) == report["bundle"]["T"] + max(la["depth"] for la in layers)
    assert sum(timing["timeline_ns"]["total"]) == pytest.approx(hw["latency_ns"])
    assert hw["energy_pj_total"] == pytest.approx(hw["energy_pj_dynamic"] + hw["energy_pj_static"])
    assert hw["energy_pj_static"] > 0 and timing["label"] == hw["labels"]["time"]
    assert "limit" in text and "t/step" in text and f"#{slowest['bottleneck_core']}" in text


def test_cores_csv_and_neurobench_metrics(report_dir):
    out, _ = report_dir
    report = json.loads((out / "report.json").read_text())
    rows = list(csv.DictReader((out / "cores.csv").open()))
    assert [int(r["core"]) for r in rows] == [c["index"] for c in report["cores"]]
    memory = report["profile"]["limits"]["synaptic_memory_bytes_per_core"]["value"]
    for row, core in zip(rows, report["cores"]):
        assert int(row["memory_bytes"]) * 8 >= core["memory_bits"] > (int(row["memory_bytes"]) - 1) * 8
        assert float(row["memory_share"]) == pytest.approx(int(row["memory_bytes"]) / memory)
    # every spike message sent on the chip arrives at some core
    sent = sum(c["spikes_out"] for c in report["cores"])
    assert sum(c["spikes_in"] for c in report["cores"]) >= sent > 0
    nb = json.loads((out / "neurobench.json").read_text())
    assert set(nb) == {"footprint", "parameter_count", "connection_sparsity", "classification_accuracy",
                       "activation_sparsity", "synaptic_operations"}
    spikes = sum(la["spikes"] for la in report["layers"] if la["kind"] == "lif")
    outputs = sum(la["neurons"] for la in report["layers"] if la["kind"] == "lif") * report["bundle"]["T"]
    assert nb["activation_sparsity"] == pytest.approx(1 - spikes / outputs)
    ops = nb["synaptic_operations"]
    assert ops["Dense"] > ops["Effective_ACs"] + ops["Effective_MACs"] > 0 and ops["Effective_MACs"] > 0
    assert nb["parameter_count"] > 100_000 and 0 <= nb["connection_sparsity"] < 0.5


def test_plots_give_every_layer_a_row_up_to_100_layers(report_dir):
    """A 100-layer report: per-layer plots grow with the layer count (one label row per layer, no overlap)."""
    from PIL import Image

    from snn_deploy.sims.hardware import plots
    from snn_deploy.graph import Activity

    out, _ = report_dir
    report = json.loads((out / "report.json").read_text())
    base = report["layers"]
    report["layers"] = [dict(base[i % len(base)], name=f"block{i}.layer") for i in range(100)]
    report["cores"] = [dict(c, layer=f"block{i}.layer") for i, c in enumerate(report["cores"][:100])]
    images = plots.render(report, Activity(report["bundle"]["T"], "sim"))
    for name in ("layer_time", "energy_layers", "firing_rate", "core_utilisation"):
        height = Image.open(io.BytesIO(images[name])).height
        assert height >= 100 * plots.ROW_INCHES * 100, name  # at 100 dpi, one row per layer


def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    """Chromium loads the page, decodes every inline image, and takes a screenshot (scripts/report_screenshot.py)."""
    spec = importlib.util.spec_from_file_location("report_screenshot", ROOT / "scripts" / "report_screenshot.py")
    shot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shot)
    if shot.browser() is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium): the page was not checked in a browser")
    out, _ = report_dir
    loaded, total = shot.images_loaded(out / "report.html")
    assert loaded == total == len(PLOTS) + 1
    png = shot.screenshot(out / "report.html", tmp_path / "report.png", 1000, 1400)
    from PIL import Image

    image = Image.open(png).convert("L")
    assert image.size == (1000, 1400)
    assert image.getextrema()[0] < 100  # text and plots drawn, not a blank page


def test_existing_report_dir_needs_force(report_dir, bundle):
    out, _ = report_dir
    before = (out / "report.json").read_text()
    code, text = _run("report", bundle, "--dataset", "digits", "--samples", "2", "-o", out)
    assert code == 2 and text.strip().splitlines() == [text.strip().splitlines()[0]]
    assert text.startswith("error:") and "--force" in text and (out / "report.json").read_text() == before
    code, text = _run("report", bundle, "--dataset", "digits", "--samples", "2", "-o", out, "--force")
    assert code == 0, text
    assert json.loads((out / "report.json").read_text())["run"]["samples"] == 2
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


@pytest.mark.parametrize("args, message", [
    (("--dataset", "no-such-set"), "no-such-set"),
    (("--dataset", "digits", "--samples", "0"), "--samples"),
    (("--dataset", "cifar10"), "cifar"),
    (("--dataset", "digits", "--traces", "no-such-layer", "--traces-out", "t.npz"), "is not a LIF layer"),
    (("--dataset", "digits", "--traces", "all"), "--traces-out"),
])
def test_bad_input_is_one_error_line(bundle, tmp_path, args, message):
    code, text = _run("simulate", bundle, *args, "--data-dir", tmp_path)
    assert code == 2 and text.startswith("error:") and len(text.strip().splitlines()) == 1, text
    assert message in text


def test_missing_bundle_is_one_error_line(tmp_path):
    code, text = _run("report", tmp_path / "nothing", "--dataset", "digits", "-o", tmp_path / "out")
    assert code == 2 and text.startswith("error:") and "not a bundle" in text


def test_simulate_prints_the_figures_and_writes_valid_json(bundle, tmp_path):
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "4", "--json", tmp_path / "s.json")
    assert code == 0, text
    for needle in ("accuracy", "synaptic ops", "45 nm", "the coincidence lowering", "embedded cores", "samples/s",
                   "steps/s", "lower bound"):
        assert needle in text
    report = json.loads((tmp_path / "s.json").read_text())
    from snn_deploy.sims.hardware.report import schema

    assert validate(report, schema()) == []


def test_simulate_with_a_violated_profile_is_a_failed_check(bundle, tmp_path):
    """Loihi 1 cannot carry the Loihi 2 bundle's graded spikes: exit 1 after the outputs are written (not 0, and
    not the usage/bad-input status 2); --allow-violations exits 0."""
    args = ("simulate", bundle, "--dataset", "digits", "--samples", "2", "--profile", "loihi1")
    code, text = _run(*args, "--neurobench", tmp_path / "nb.json")
    assert code == 1 and "check failed" in text and "violation" in text, text
    assert json.loads((tmp_path / "nb.json").read_text())["synaptic_operations"]["Dense"] > 0
    code, text = _run(*args, "--allow-violations")
    assert code == 0 and "check failed" in text, text


def test_simulate_json_to_stdout_quiet_and_verbose(bundle):
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "--json", "-")
    assert code == 0 and json.loads(text)["run"]["samples"] == 2  # stdout holds the JSON only
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "-q")
    assert code == 0 and text == ""
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "-v")
    assert code == 0 and "limit" in text and "patch_embed1.proj_lif" in text  # the per-layer table


def test_two_processes_under_torchrun_give_the_single_process_result(bundle, tmp_path):
    script = Path(sys.executable).with_name("snn-deploy")
    common = ["simulate", str(bundle), "--dataset", "digits", "--samples", "6", "--batch-size", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    sharded = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              str(script), *common, "--json", str(tmp_path / "two.json")],
                             env=env, capture_output=True, text=True, timeout=240, check=False)
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    assert sharded.stdout.count("accuracy") == 1  # rank 0 prints, rank 1 stays quiet
    code, text = _run(*common, "--json", tmp_path / "one.json")
    assert code == 0, text
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (one["run"]["processes"], two["run"]["processes"]) == (1, 2)
    for report in (one, two):
        del report["run"]["processes"], report["run"]["backend_seconds"], report["run"]["samples_per_s"]
        del report["run"]["steps_per_s"]
    assert one == two


def test_simulate_writes_membrane_traces_of_the_asked_layers(bundle, tmp_path):
    import numpy as np

    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.sims.runs.driver import bundle_tensors
    from snn_deploy.sims.backends.simulator import simulate

    layer = "patch_embed1.proj_lif"
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "--traces", layer,
                      "--traces-out", tmp_path / "t.npz", "--trace-samples", "3")
    assert code == 0 and "membrane traces" in text, text
    with np.load(tmp_path / "t.npz") as data:
        assert sorted(data.files) == sorted(["labels", f"{layer}.u", f"{layer}.v", f"{layer}.spikes"])
        graph = load_bundle(bundle).graph
        x, y = bundle_tensors(graph, "digits", "test", 3, None)
        expected = simulate(graph, x, traces={layer})
        assert data[f"{layer}.v"].shape == (graph.T, 3, *graph[layer].shape)
        assert np.array_equal(data[f"{layer}.v"], expected.traces[layer].v.numpy())
        assert np.array_equal(data[f"{layer}.u"], expected.traces[layer].u.numpy())
        assert np.array_equal(data[f"{layer}.spikes"], expected.spikes[layer].numpy())
        assert np.array_equal(data["labels"], y.numpy()) and np.abs(data[f"{layer}.v"]).max() > 0
