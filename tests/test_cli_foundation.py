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
def test_demo_runs_and_agrees(tmp_path):
    out = tmp_path / "demo.json"
    result = _run("demo", "--samples", "1", "--steps", "6", "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["exact"] is True and all(layer["mismatches"] == 0 for layer in report["layers"])
    assert sum(layer["spikes_lava"] for layer in report["layers"]) > 0
