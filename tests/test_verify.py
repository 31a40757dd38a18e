"""The fidelity report: exact agreement is recognised, and a single wrong spike is found and located."""

from __future__ import annotations

import pytest

from export_testing import images, quantized
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.sims.runs.verify import compare, report_json, run_backends
from snn_deploy.graph import LIFNode
from snn_deploy.sims.backends.simulator import simulate


@pytest.fixture(scope="module")
def setup():
    model = quantized("qkformer-tiny")
    graph = lower(model)
    return model, graph, images(3)


def test_torch_sim_and_onnx_agree(setup):
    model, graph, x = setup
    report = run_backends(model, graph, x, [0, 1, 2], ["torch", "sim", "onnx"])
    assert report.exact and report.first_divergence() is None
    data = report_json(report)
    assert data["schema_version"] == 1 and data["exact"] and data["first_divergence"] is None
    assert len(data["layers"]) == len(graph.of_kind(LIFNode))


def test_one_flipped_spike_is_named_with_its_step_and_sample(setup):
    _, graph, x = setup
    result = simulate(graph, x)
    tampered = {k: v.clone() for k, v in result.spikes.items()}
    late, early = "stage3.0.ssa.proj_lif", "stage2.0.tssa.q_lif"
    tampered[late][2, 1].view(-1)[5] ^= 1
    report = compare(graph, {"sim": (result.spikes, result.logits), "other": (tampered, result.logits)}, None)
    assert not report.exact and report.first_divergence() == (late, "other", (2, 1))
    tampered[early][3, 0].view(-1)[0] ^= 1
    report = compare(graph, {"sim": (result.spikes, result.logits), "other": (tampered, result.logits)}, None)
    assert report.first_divergence() == (early, "other", (3, 0))
    mismatches = {layer.node: layer.mismatches["other"] for layer in report.layers}
    assert mismatches[late] == 1 and mismatches[early] == 1 and sum(mismatches.values()) == 2
