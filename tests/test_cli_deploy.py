"""``snn-deploy quantize / export / verify`` from the command line, including every bad input the issue names."""

from __future__ import annotations

import json
import pickle

import pytest

import snn_deploy.models as zoo
from export_testing import active_model
from export_testing import error_line as _error_line
from export_testing import run_cli as _run
from snn_deploy.exporters.formats.bundle import load_bundle
from snn_deploy.modelfile import load_model, save_model


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    loihi = save_model(active_model("qkformer-tiny"), root / "qk.pt", source="test", created_from="test")
    floaty = save_model(active_model("spikformer-tiny", mode="float"), root / "sf-float.pt", source="test",
                        created_from="test")
    return root, loihi, floaty


def test_export_bundle_then_verify_torch_and_simulator(model_files, tmp_path):
    _, loihi, _ = model_files
    code, out = _run("export", loihi, "-o", tmp_path / "b")
    assert code == 0, out
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest["target"] == "loihi2" and bundle.manifest["arch"] == "qkformer-tiny"
    code, out = _run("verify", loihi, "--backends", "torch,sim", "--dataset", "digits", "--samples", "8",
                     "--json", tmp_path / "v.json")
    assert code == 0, out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["exact"] and report["first_divergence"] is None and report["samples"] == 8


def test_quantize_writes_an_integer_model_that_exports(model_files, tmp_path):
    _, loihi, _ = model_files
    code, out = _run("quantize", loihi, "-o", tmp_path / "q.pt")
    assert code == 0, out
    assert load_model(tmp_path / "q.pt").neuron_mode == "integer"
    code, out = _run("export", tmp_path / "q.pt", "--target", "nir", "-o", tmp_path / "q.nir")
    assert code == 0 and (tmp_path / "q.nir").is_file(), out


@pytest.mark.parametrize("case", ["missing", "truncated", "pickled-code", "not-a-model", "float-uncalibrated",
                                  "exists", "binary-target", "unknown-rewrite"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(model_files, tmp_path, case, pickled_code):
    root, loihi, floaty = model_files
    source, extra = loihi, []
    out_path = tmp_path / "out.loihi"
    if case == "missing":
        source = tmp_path / "nope.pt"
    elif case == "truncated":
        source = tmp_path / "cut.pt"
        source.write_bytes(loihi.read_bytes()[:2000])
    elif case == "pickled-code":
        source = tmp_path / "evil.pt"
        source.write_bytes(pickle.dumps({"format": "snn-deploy-model", "x": pickled_code.payload}))
    elif case == "not-a-model":
        source = tmp_path / "text.pt"
        source.write_text("hello")
    elif case == "float-uncalibrated":
        source = floaty
    elif case == "exists":
        out_path.mkdir()
        (out_path / "keep").write_text("mine")
    elif case == "binary-target":
        extra = ["--target", "loihi1"]
    elif case == "unknown-rewrite":
        extra = ["--rewrite", "magic"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out = _run("export", source, "-o", out_path, *extra)
    assert code == 2, out
    line = _error_line(out)
    assert len(line) < 1500
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == before, f"export left files behind: {set(after) - set(before)}"
    assert not pickled_code.ran
    if case == "exists":
        assert (out_path / "keep").read_text() == "mine"
    if case == "binary-target":
        assert "patch_embed1.proj_conv" in line and "stage3.0.ssa.product" in line
    if case == "float-uncalibrated":
        assert "--calibrate" in line


def test_float_model_exports_with_calibration(model_files, tmp_path):
    _, _, floaty = model_files
    code, out = _run("export", floaty, "--calibrate", "digits", "-o", tmp_path / "f.loihi")
    assert code == 0, out
    assert load_bundle(tmp_path / "f.loihi").graph.input.scale > 0


def test_rewrite_moves_analog_pools_and_reports_accuracy(tmp_path):
    official = save_model(zoo.create("qkformer-tiny", mode="loihi", pool_spikes=False).eval(),
                          tmp_path / "official.pt", source="test", created_from="test")
    code, out = _run("export", official, "-o", tmp_path / "no.loihi")
    assert code == 2 and "--rewrite maxpool-after-lif" in _error_line(out)
    code, out = _run("export", official, "-o", tmp_path / "b.loihi", "--rewrite", "maxpool-after-lif",
                     "--rewrite-eval", "digits", "--eval-samples", "16")
    assert code == 0, out
    record = load_bundle(tmp_path / "b.loihi").manifest["rewrites"]["maxpool-after-lif"]
    assert record["moved"] == ["patch_embed2.proj4_maxpool", "patch_embed3.proj4_maxpool"]
    assert 0.0 <= record["accuracy_before"] <= 1.0 and 0.0 <= record["accuracy_after"] <= 1.0
    assert "accuracy" in out
