"""Post-training quantization: per-layer spike agreement and accuracy before/after (``snn-deploy quantize``)."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner
from torch import nn

from snn_deploy.cli import cli
from snn_deploy.modelfile import load_model
from snn_deploy.neurons import FloatLIF
from snn_deploy.quant_check import compare_quantized
from snn_deploy.training.runtime import World
from snn_deploy.training.settings import TrainSettings, resolve
from snn_deploy.training.trainer import train

PTQ_ACCURACY_BOUND = 0.02
"""Stated bound (docs/training.md): PTQ of a float model trained on digits changes test accuracy by <= 2 points."""


class TwoLayers(nn.Module):
    """x [T, B, 2] -> Linear -> LIF -> Linear -> LIF -> mean over time: logits [B, 2]."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(2, 2, bias=False), FloatLIF(threshold=threshold)
        self.fc2, self.lif2 = nn.Linear(2, 2, bias=False), FloatLIF(threshold=1.2)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(2))
            self.fc2.weight.copy_(torch.tensor([[0.0, 2.0], [2.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.fc2(self.lif1(self.fc1(x)))).mean(0)


def test_agreement_and_accuracy_are_counted_by_hand():
    # FloatLIF: h = v + (x - v) / 2, spike where h >= threshold, then v = 0. Input 1.5 on channel 0, 0.5 on
    # channel 1, two steps, one sample. Threshold 1: lif1 sees h = 0.75, then 0.75 + 0.375 = 1.125 on channel 0
    # -> spikes [0, 1]; channel 1 (0.25, 0.375) never. Threshold 0.7 spikes at step 0 too (h 0.75), then h = 0.75
    # again -> [1, 1]. So lif1 differs in 1 of its 4 outputs.
    x = torch.tensor([[[1.5, 0.5]], [[1.5, 0.5]]])
    y = torch.tensor([1])
    original, changed = TwoLayers(1.0), TwoLayers(0.7).to(torch.float64)
    check = compare_quantized(original, changed, x, y, time_axis=True)
    rows = {row.layer: row for row in check.layers}
    assert [row.layer for row in check.layers] == ["lif1", "lif2"]  # execution order
    assert (rows["lif1"].outputs, rows["lif1"].spikes_before, rows["lif1"].spikes_after) == (4, 1, 2)
    assert rows["lif1"].mismatches == 1 and rows["lif1"].agreement == 0.75
    # lif2 (threshold 1.2) channel 1 gets 2 * lif1 channel 0: [0, 2] -> h 0, 1.0: none; [2, 2] -> h 1.0, 1.5: [0, 1]
    assert (rows["lif2"].spikes_before, rows["lif2"].spikes_after, rows["lif2"].mismatches) == (0, 1, 1)
    # logits before [0, 0] (argmax 0, wrong), after [0, 0.5] (argmax 1, right)
    assert (check.correct_before, check.correct_after, check.prediction_mismatches) == (0, 1, 1)
    same = compare_quantized(original, TwoLayers(1.0).to(torch.float64), x, y, time_axis=True)
    assert all(row.mismatches == 0 and row.agreement == 1.0 for row in same.layers)


def test_ptq_of_a_float_model_keeps_accuracy_within_the_stated_bound_on_digits(tmp_path):
    settings = resolve(TrainSettings, "spikformer-tiny-8x8", "digits", neuron="float", epochs=6, batch_size=32,
                       lr=5e-3, weight_decay=0.01, warmup_epochs=0, label_smoothing=0.0, seed=0, augment=True,
                       micro_batches=1, labels_per_class=None, init=None)
    train(settings, output=tmp_path / "float.pt", data_dir=None, resume=False, threads=1, world=World())
    result = CliRunner().invoke(cli, ["quantize", str(tmp_path / "float.pt"), "--calibrate", "digits",
                                      "--eval-samples", "355", "-o", str(tmp_path / "int.pt"),
                                      "--json", str(tmp_path / "ptq.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ptq.json").read_text())
    check = report["check"]
    assert report["schema_version"] == 1 and check["samples"] == 355
    assert check["accuracy_before"] > 0.85, check  # a real model, not chance
    assert abs(check["accuracy_after"] - check["accuracy_before"]) <= PTQ_ACCURACY_BOUND, check
    assert {row["layer"] for row in check["layers"]} >= {u["neuron"] for u in report["quantization"]["units"]}
    # measured: 99.2 % in the first layer, falling to 94.1 % in the last (differences compound with depth)
    assert check["layers"][0]["agreement"] > 0.99 and min(r["agreement"] for r in check["layers"]) > 0.9, check
    assert "accuracy on 355 test samples" in result.output and "agreement" in result.output
    quantized = load_model(tmp_path / "int.pt")
    assert quantized.neuron_mode == "integer" and quantized.provenance["check"] == check
    # the float attention neuron (h >= theta on integer counts) deploys vth - 1 on its trained current scale
    (attention,) = report["quantization"]["attention"]
    assert attention["current_vth"] == attention["vth"] + 1
    rates = {row["layer"]: row for row in check["layers"]}[attention["neuron"]]
    assert abs(rates["spikes_after"] - rates["spikes_before"]) < 0.1 * rates["spikes_before"], rates
    verify = CliRunner().invoke(cli, ["verify", str(tmp_path / "int.pt"), "--backends", "torch,sim,onnx",
                                      "--dataset", "digits", "--samples", "8"], catch_exceptions=False)
    assert verify.exit_code == 0, verify.output
