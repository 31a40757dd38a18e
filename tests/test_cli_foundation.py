"""The foundation commands end to end: doctor and the demo, through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("snn-deploy") or str(Path(sys.executable).parent / "snn-deploy")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.lava
def test_doctor_reports_all_well_as_json():
    result = _run("doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1 and report["ok"] is True
    names = {c["name"] for c in report["checks"]}
    assert {"torch", "lava-nc", "lava-dl", "nir", "onnx", "onnxruntime", "lava-dl netx", "self-check"} <= names


@pytest.mark.lava
def test_demo_runs_end_to_end(tmp_path):
    """The README's demo, shortened (1 epoch, 2 verified digits): train, export, verify in 4 backends, simulate,
    report; every artifact is written and the fidelity check is exact."""
    out = tmp_path / "demo"
    result = _run("demo", "-o", str(out), "--epochs", "1", "--verify-samples", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    verify = json.loads((out / "verify.json").read_text())
    assert verify["exact"] is True and verify["backends"] == ["torch", "sim", "lava", "onnx"]
    simulate = json.loads((out / "simulate.json").read_text())
    assert simulate["bundle"]["arch"] == "qkformer-tiny-8x8"
    for name in ("model.pt", "model.loihi/network.nir", "report/report.html", "report/report.json",
                 "report/layers.csv"):
        assert (out / name).is_file(), name
    assert "demo finished" in result.stdout
