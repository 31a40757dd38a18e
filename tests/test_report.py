"""``snn-deploy report`` and ``simulate`` end to end: the JSON against its schema, the HTML's plots, the CSV's rows,
atomic and refused outputs, and a run sharded over two processes with torchrun."""

from __future__ import annotations

import csv
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
from snn_deploy.exporters.bundle import write_bundle
from snn_deploy.exporters.lower import lower
from snn_deploy.graph import LOIHI2
from snn_deploy.sims.report import PLOTS
from snn_deploy.sims.schema import validate

SAMPLES = "8"


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
    assert report["schema_version"] == 3 and report["run"]["samples"] == int(SAMPLES)
    assert report["bundle"]["arch"] == "qkformer-tiny" and report["mapping"]["violations"] == []
    assert sum(layer["energy_share"] for layer in report["layers"]) == pytest.approx(1.0)  # of the dynamic energy
    hw = report["hardware"]["neurons"]
    assert hw["provenance"] == "calibrated" and hw["labels"]["time"].startswith(
        "calibrated on PilotNet LIF (lava-dl benchmark), residual")
    assert hw["energy_pj_total"] == pytest.approx(hw["energy_pj_dynamic"] + hw["energy_pj_static"])
    assert {layer["kind"] for layer in report["layers"]} == {"lif", "sum", "and", "kv", "gate"}
    assert all(f["source"] for f in report["hardware"]["neurons"]["constants"].values())
    # the schema is not vacuous: damaged copies fail
    broken = dict(report, run=dict(report["run"], backend="fpga"))
    del broken["layers"]
    assert {e.split(":")[0] for e in validate(broken, schema)} == {"$", "$.run.backend"}


def test_report_html_is_self_contained_with_every_plot(report_dir):
    out, _ = report_dir
    parser = _Images()
    parser.feed((out / "report.html").read_text())
    assert len(parser.sources) == len(PLOTS) and not parser.external
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    for name in PLOTS:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_csv_has_one_row_per_layer(report_dir):
    out, text = report_dir
    report = json.loads((out / "report.json").read_text())
    rows = list(csv.DictReader((out / "layers.csv").open()))
    assert [r["name"] for r in rows] == [layer["name"] for layer in report["layers"]]
    assert rows[0]["shape"] == "8x16x16"
    assert "patch_embed1.proj_lif" in text and "wrote" in text  # the console table


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
    for needle in ("accuracy", "synaptic ops", "45 nm", "coincidence neurons", "embedded cores", "samples/s",
                   "steps/s"):
        assert needle in text
    report = json.loads((tmp_path / "s.json").read_text())
    from snn_deploy.sims.report import schema

    assert validate(report, schema()) == []


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

    from snn_deploy.exporters.bundle import load_bundle
    from snn_deploy.sims.driver import bundle_tensors
    from snn_deploy.sims.simulator import simulate

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
