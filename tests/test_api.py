"""The Python API: docs/api.md's example runs as written, and its pieces agree with the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_docs_example_runs(tmp_path, monkeypatch):
    """Executes the python block of docs/api.md in a fresh directory (1 epoch on 20 digits per class)."""
    block = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "docs/api.md", "exec"), namespace)
    results = namespace["results"]
    assert 0 <= results.accuracy <= 1 and results.report["run"]["samples"] == 64
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "model.loihi" / "manifest.json").is_file()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["layers"] == results.layers
    assert set(results.synaptic_ops) == {layer["name"] for layer in results.layers}
    assert results.energy_pj["total"] == pytest.approx(report["hardware"]["neurons"]["energy_pj_total"])


def test_splits_are_torch_datasets_with_defaults():
    import snn_deploy as sd

    splits = sd.open_splits("n-digits", model="qkformer-tiny-8x8")
    assert isinstance(splits.train, torch.utils.data.Dataset) and splits.T == 4 and splits.size == 8
    frames, label = splits.test[0]
    assert frames.shape == (4, 2, 8, 8) and isinstance(label, int)
    batch = next(iter(torch.utils.data.DataLoader(splits.test, batch_size=5)))
    assert batch[0].shape == (5, 4, 2, 8, 8) and batch[1].tolist() == [splits.test[i][1] for i in range(5)]
    assert sd.open_splits("n-digits").T == 16 and sd.open_splits("digits").T is None


def test_simulate_on_inputs_and_bad_calls(tmp_path):
    import snn_deploy as sd
    from snn_deploy.errors import UserError

    bundle = sd.export(sd.create("spikformer-tiny-8x8"), tmp_path / "m.loihi")
    x = torch.rand(3, 1, 8, 8)
    results = sd.simulate(bundle, inputs=x, labels=torch.tensor([0, 1, 2]))
    assert results.report["run"]["samples"] == 3 and len(results.cores) == results.report["mapping"]["cores"]
    assert sd.simulate(bundle, inputs=x).accuracy is None  # no labels: no accuracy, the rest as usual
    with pytest.raises(UserError, match="not both"):
        sd.simulate(bundle, "digits", inputs=x, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(UserError, match="already exists"):
        sd.export(sd.create("spikformer-tiny-8x8"), tmp_path / "m.loihi")
    with pytest.raises(UserError, match="snn-deploy export"):
        sd.export(sd.create("spikformer-tiny-8x8"), tmp_path / "m.onnx", target="onnx")


def test_import_stays_light():
    """``import snn_deploy`` and the API's module load no torch (the CLI starts fast)."""
    code = "import sys, snn_deploy, snn_deploy.api; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
