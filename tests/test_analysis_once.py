"""A report's analysis computes each mapping's rates and loads once (the cost, the timing and the report read
them), and an activity describes exactly one run length: the graph's T."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from export_testing import quantized
from snn_deploy.cli import cli
from snn_deploy.exporters.formats.bundle import write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2
from snn_deploy.graph.hardware import PRODUCT_MODELS
from snn_deploy.sims.hardware import cost
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.hardware.report import REPORT_MODELS
from snn_deploy.sims.hardware.stated_activity import stated_activity


@pytest.fixture(scope="module")
def graph():
    return lower(quantized("spikformer-tiny"))


def test_a_report_computes_rates_and_loads_once_per_mapping(graph, tmp_path, monkeypatch):
    bundle = tmp_path / "b.loihi"
    write_bundle(graph, bundle, target=LOIHI2, quantization={}, extra={"arch": "spikformer-tiny"})
    calls = {"rates": 0, "loads": 0}

    def counted(name):
        original = getattr(cost, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        return wrapper

    for name in calls:
        monkeypatch.setattr(cost, name, counted(name))
    result = CliRunner().invoke(cli, ["report", str(bundle), "--dataset", "digits", "--samples", "2", "-o",
                                      str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # once per mapping: the report's two models, and each other lowering of the "spike-product lowerings" section
    mappings = len({graph.attention, *filter(None, REPORT_MODELS.values()), *PRODUCT_MODELS})
    assert calls == {"rates": mappings, "loads": mappings}


def test_an_activity_of_another_run_length_is_refused(graph):
    from snn_deploy.exporters.formats.bundle_check import with_steps

    longer = with_steps(graph, graph.T + 2)
    activity = stated_activity(longer, 0.1)
    assert activity.T == graph.T + 2
    cost.hardware_cost(longer, map_graph(longer, LOIHI2), activity)  # the graph the run used
    with pytest.raises(ValueError, match=f"over {graph.T + 2} steps cannot describe a graph of T = {graph.T}"):
        cost.hardware_cost(graph, map_graph(graph, LOIHI2), activity)
