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
    """Executes the python block of docs/api.md in a fresh directory: 3 epochs of spikformer-tiny-8x8 on the digits
    (about a minute), eval, export, verify, simulate on the data set and on numpy arrays of 6 steps, report."""
    block = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "docs/api.md", "exec"), namespace)
    results, deployed, check = namespace["results"], namespace["deployed"], namespace["check"]
    assert deployed.accuracy > 0.5 and deployed.record["neuron_mode"] == "integer"
    assert check.exact and check.report["backends"] == ["sim", "onnx"] and check.report["samples"] == 16
    assert 0.5 < results.accuracy <= 1 and results.report["run"]["samples"] == 64
    on_arrays = namespace["on_arrays"]
    assert on_arrays.report["run"]["samples"] == 8 and on_arrays.report["bundle"]["T"] == 6
    assert on_arrays.latency_ns > results.latency_ns  # inferences of 6 steps, not 4
    for shown in (results, deployed, check, on_arrays, namespace["trained"], namespace["bundle"]):
        assert len(repr(shown)) < 400 and "\n" not in repr(shown)
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


def test_arrays_and_steps_as_the_command_line(tmp_path):
    """An array of 6 steps on a T = 4 bundle: the API (array or .npy path, chw or whc) and `simulate --input`
    give the same report; `verify` too."""
    import numpy as np
    from click.testing import CliRunner

    import snn_deploy as sd
    from snn_deploy.cli import cli

    bundle = sd.export(sd.create("spikformer-tiny-8x8"), tmp_path / "m.loihi")
    assert bundle.graph.T == 4 and "m.loihi" in repr(bundle) and len(repr(bundle)) < 200
    frames = np.random.default_rng(0).random((6, 1, 8, 8))  # one sample, one map per step: [T, C, H, W]
    np.save(tmp_path / "x.npy", frames)
    result = CliRunner().invoke(cli, ["simulate", str(tmp_path / "m.loihi"), "--input", str(tmp_path / "x.npy"),
                                      "--json", str(tmp_path / "run.json"), "--allow-violations"])
    assert result.exit_code == 0, result.output  # an untrained model's input layer may exceed its 16-bit register
    cli_report = json.loads((tmp_path / "run.json").read_text())
    batch = frames[:, None]  # [T, N, C, H, W]
    runs = [sd.simulate(bundle, inputs=batch), sd.simulate(bundle, inputs=torch.from_numpy(batch)),
            sd.simulate(bundle, inputs=tmp_path / "x.npy"),
            sd.simulate(bundle, inputs=batch.transpose(1, 4, 3, 2, 0), layout="whc")]  # [N, W, H, C, T]
    for run in runs:
        assert run.report["bundle"]["T"] == 6 == cli_report["bundle"]["T"]
        assert run.energy_pj["total"] == pytest.approx(cli_report["hardware"]["neurons"]["energy_pj_total"])
        assert run.synaptic_ops == {la["name"]: la["synaptic_ops"] for la in cli_report["layers"]}
        assert run.report.get("registers") == cli_report.get("registers")
    held = sd.simulate(bundle, inputs=frames[0][None], time_steps=6)  # [N, C, H, W] held for 6 steps
    assert held.report["bundle"]["T"] == 6
    check = sd.verify(bundle, inputs=batch, backends=["sim", "onnx"])
    assert check.exact and check.report["T"] == 6
    from snn_deploy.errors import UserError

    with pytest.raises(UserError, match="fits neither"):
        sd.simulate(bundle, inputs=np.zeros((2, 3, 8, 8)))
    with pytest.raises(UserError, match="fewer than --time-steps"):
        sd.simulate(bundle, inputs=batch, time_steps=7)
    with pytest.raises(UserError, match="2 labels for 1 input samples"):
        sd.simulate(bundle, inputs=batch, labels=[1, 2])
    # the command line's refusals of hostile arrays and steps hold for the API's arrays too (one shared layer)
    with pytest.raises(UserError, match="holds 0 samples"):
        sd.simulate(bundle, inputs=np.zeros((0, 1, 8, 8)))
    with pytest.raises(UserError, match="holds 0 steps"):
        sd.simulate(bundle, inputs=np.zeros((0, 1, 1, 8, 8)))
    with pytest.raises(UserError, match="more than 268,435,456"):
        sd.simulate(bundle, inputs=np.broadcast_to(np.float64(0), (140_000, 1, 8, 8)))  # 4 steps: 287 MB
    with pytest.raises(UserError, match=r"--time-steps 100001 must be an integer in 1\.\.100000"):
        sd.simulate(bundle, inputs=frames[0][None], time_steps=100001)
    with pytest.raises(UserError, match="--time-steps 100001"):
        sd.simulate(bundle, dataset="digits", time_steps=100001)


def test_import_stays_light():
    """``import snn_deploy`` and the API's module load no torch (the CLI starts fast)."""
    code = "import sys, snn_deploy, snn_deploy.api; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
