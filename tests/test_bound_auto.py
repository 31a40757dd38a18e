"""The resource lower bound (sims/hardware/bound.py) against the mapper, and ``--attention auto``
(sims/hardware/auto.py) against every single lowering."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import snn_deploy.models as zoo
from export_testing import quantized
from graph_testing import lif
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI, LOIHI2, ConvNode, Graph, InputNode, ReadoutNode
from snn_deploy.graph.hardware import PRODUCT_MODELS, product_choices, products_text
from snn_deploy.quant import quantize
from snn_deploy.sims.hardware.auto import OBJECTIVES, choose, price
from snn_deploy.sims.hardware.bound import RESOURCES, resource_bound
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.hardware.stated_activity import stated_activity

TINY = [n for n in zoo.names() if "tiny" in n]


@pytest.fixture(scope="module")
def tiny_graphs() -> dict:
    return {name: lower(quantized(name)) for name in TINY}


def _check(mapping) -> None:
    bound = resource_bound(mapping)
    assert 1 <= bound.global_cores <= bound.cores <= len(mapping.cores), (bound.global_cores, bound.cores)
    for p in bound.populations:
        assert p.cores <= len(mapping.layers[p.name].cores), (p.name, p.need)
        assert p.binding in RESOURCES


@pytest.mark.parametrize("profile", [LOIHI, LOIHI2, replace(LOIHI2, compiler=None)], ids=["loihi1", "loihi2",
                                                                                          "loihi2-free"])
def test_the_bound_never_exceeds_the_mappers_cores_on_every_tiny_family(tiny_graphs, profile):
    for graph in tiny_graphs.values():
        for products in PRODUCT_MODELS:
            _check(map_graph(graph, profile, products=products))


@pytest.mark.parametrize("limits", [dict(neurons_per_core=8), dict(fan_in_per_core=40),
                                    dict(neurons_per_core=64, synaptic_memory_bytes_per_core=96)])
def test_the_bound_holds_under_tight_limits_and_names_what_binds(tiny_graphs, limits):
    """Small per-core limits make every resource bind somewhere; the bound stays below the mapper's cores."""
    profile = replace(LOIHI2, compiler=None, **limits)
    graph = tiny_graphs["spikformer-tiny-8x8"]
    for products in PRODUCT_MODELS:
        mapping = map_graph(graph, profile, products=products)
        if not mapping.violations:
            _check(mapping)


def test_bound_worked_by_hand():
    """8 x 4 x 4 LIF reading a 1 x 1 conv of 8 channels (weights 127, 7 bits), unshared: 128 neurons, 1024 synapses,
    128 distinct source neurons. With 32 neurons, 20 input axons and 2048 bits per core: neurons 4 cores, memory
    1024 x 7 / 2048 = 3.5, input axons 128 / 20 = 6.4 -> 7 cores: input axons bind, per population and globally."""
    weight = np.full((8, 8, 1, 1), 127, dtype=np.int64)
    graph = Graph([InputNode("input", (), (8, 4, 4)),
                   ConvNode("conv", ("input",), (8, 4, 4), weight=weight, graded=True),
                   lif("lif", "conv", (8, 4, 4), dv=2048, vth=1),
                   ReadoutNode("head", ("lif",), (8, 4, 4), weight=np.zeros((2, 8)), bias=np.zeros(2))], T=2)
    profile = replace(LOIHI2, compiler=None, neurons_per_core=32, fan_in_per_core=20,
                      synaptic_memory_bytes_per_core=256)
    mapping = map_graph(graph, profile, kernel_sharing=False)
    bound = resource_bound(mapping)
    (pop,) = bound.populations
    assert pop.need == pytest.approx({"neurons": 4.0, "memory": 3.5, "fan_in": 6.4})
    assert (pop.cores, pop.binding) == (7, "fan_in")
    assert (bound.global_cores, bound.global_binding) == (7, "fan_in")
    assert len(mapping.cores) >= 7


def test_the_bound_holds_on_a_cifar_configuration():
    torch.manual_seed(0)
    model = zoo.create("spikformer-cifar10-2-384", mode="loihi").eval()
    with torch.no_grad():
        quantize(model)
        graph = lower(model)
    for products in PRODUCT_MODELS:
        mapping = map_graph(graph, LOIHI2, products=products)
        _check(mapping)
        assert len(mapping.cores) <= 1.5 * resource_bound(mapping).cores  # the packing goal


def test_per_product_lowerings_round_trip_and_bad_names_are_refused(tiny_graphs):
    graph = tiny_graphs["spikformer-tiny-8x8"]
    names = list(product_choices(graph, PRODUCT_MODELS[0]))
    mixed = {name: PRODUCT_MODELS[i % 2] for i, name in enumerate(names)}
    assert product_choices(graph, products_text(mixed)) == mixed
    assert products_text(dict.fromkeys(names, "embedded")) == "embedded"
    with pytest.raises(ValueError, match="not the graph's spike products"):
        product_choices(graph, "nope=embedded")
    with pytest.raises(ValueError, match="must be one of"):
        product_choices(graph, ";".join(f"{n}=magic" for n in names))


@pytest.mark.parametrize("name", ["spikformer-tiny-8x8", "qkformer-tiny-8x8", "spikformer-v2-tiny-8x8"])
def test_auto_is_never_worse_than_the_best_single_lowering(tiny_graphs, name):
    graph = tiny_graphs[name]
    activity = stated_activity(graph, 0.1)
    singles = {low: price(graph, LOIHI2, activity, low) for low in PRODUCT_MODELS}
    for objective in OBJECTIVES:
        choice = choose(graph, LOIHI2, activity, objective)
        assert choice.priced.key(objective) <= min(p.key(objective) for p in singles.values())
        again = price(graph, LOIHI2, activity, choice.products)  # what the manifest records prices the same
        assert again == choice.priced
        assert choice.manifest()["products"] == product_choices(graph, choice.products)


def test_export_attention_auto_records_its_choice_and_optimize_needs_auto(tmp_path):
    """``export --attention auto --optimize cores``: the bundle's graph lowers each product as chosen, the manifest
    records the objective and choice, and the choice prices no worse than any single chip lowering."""
    import json

    from click.testing import CliRunner

    from export_testing import active_model
    from snn_deploy.cli import cli
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.graph.nodes import ATTENTION_LOWERINGS
    from snn_deploy.modelfile import save_model

    model = save_model(active_model("spikformer-tiny-8x8"), tmp_path / "m.pt", source="test", created_from="test")
    out = tmp_path / "m.loihi"
    result = CliRunner().invoke(cli, ["export", str(model), "--target", "loihi2", "--attention", "auto",
                                      "--optimize", "cores", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    auto = manifest["attention_auto"]
    assert auto["optimize"] == "cores" and set(auto["products"].values()) <= set(ATTENTION_LOWERINGS)
    graph = load_bundle(out).graph
    assert product_choices(graph) == auto["products"]
    activity = stated_activity(graph, 0.1)
    best = min(price(graph, LOIHI2, activity, low).key("cores") for low in ATTENTION_LOWERINGS)
    assert price(graph, LOIHI2, activity, graph.attention).key("cores") <= best
    result = CliRunner().invoke(cli, ["export", str(model), "--target", "loihi2", "--optimize", "energy", "-o",
                                      str(tmp_path / "x.loihi")])
    assert result.exit_code == 2 and "--attention auto" in result.output


def _deployment_benchmark():
    """benchmarks/loihi2_deployment.py as a module (benchmarks are scripts, not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "loihi2_deployment", Path(__file__).resolve().parents[1] / "benchmarks" / "loihi2_deployment.py")
    bench = sys.modules.setdefault("loihi2_deployment", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(bench)
    return bench


def test_tradeoff_table_json_has_the_fixed_keys_and_marks_pareto_rows(tmp_path):
    """benchmarks/loihi2_deployment.py on a tiny configuration: every row has exactly the issue's keys, the bound
    never exceeds the cores, partial or violating rows are never Pareto-optimal and some row is."""
    import json

    bench = _deployment_benchmark()
    out = tmp_path / "t.json"
    assert bench.main(["--configs", "spikformer-tiny-8x8", "--auto", "cores,energy", "--json", str(out),
                       "--plot", str(tmp_path / "t.png"), "--markdown", str(tmp_path / "t.md")]) == 0
    data = json.loads(out.read_text())
    keys = {"config", "attention", "cores", "chips", "lower_bound_cores", "latency_steps", "time_per_inference_ms",
            "energy_mJ", "violations"}
    assert len(data["rows"]) == len(PRODUCT_MODELS) + 2 == len(data["details"])
    for row, det in zip(data["rows"], data["details"]):
        assert set(row) == keys and set(row["energy_mJ"]) == {"dynamic", "static", "total"}
        assert row["lower_bound_cores"] <= row["cores"]
        assert not (det["pareto"] and (det["partial"] or row["violations"]))
    assert any(d["pareto"] for d in data["details"])
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG" and "Pareto" in (tmp_path / "t.md").read_text()


def test_a_missed_chip_goal_says_whether_any_mapper_could_meet_it():
    """The goal line of a CIFAR configuration whose fewest exact chips miss the board: out of reach exactly when
    every complete row's global lower bound is over the board's cores."""
    bench = _deployment_benchmark()

    def row(attention: str, chips: int, bound: int) -> tuple[dict, dict]:
        return ({"config": "qkformer-cifar10-4-384", "attention": attention, "cores": chips * 128, "chips": chips,
                 "lower_bound_cores": chips * 128, "energy_mJ": {"total": 1.0, "dynamic": 0.5, "static": 0.5},
                 "violations": []},
                {"partial": False, "bound": {"global_cores": bound, "global_binding": "neurons"}})

    board = bench.BOARD_CHIPS * LOIHI2.cores_per_chip
    for bounds, reachable in (((board + 35, board + 300), False), ((board - 1, board + 300), True)):
        rows, details = zip(*(row(a, 11, b) for a, b in zip(("packed", "graded"), bounds)))
        line = bench.goals(list(rows), list(details))[0]
        assert "not met" in line
        assert ("out of reach for any mapper" in line) is not reachable
        assert f"{min(bounds):,} cores" in line


def test_a_mixed_auto_choice_round_trips_through_the_bundle_simulate_and_report(tmp_path, monkeypatch):
    """``--attention auto`` may lower each product differently: the bundle records the per-product text, loads back
    with it, and simulate / report run on it (report.json keeps the choice; people read "mixed (...)")."""
    import json

    from click.testing import CliRunner

    import snn_deploy.sims.hardware.auto as auto
    from export_testing import active_model
    from snn_deploy.cli import cli
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.modelfile import save_model

    def mixed(graph, profile, activity, objective, lowerings, known=None):
        names = list(product_choices(graph, "coincidence"))
        choices = {name: ("graded" if i == 0 else "coincidence") for i, name in enumerate(names)}
        return auto.Choice(objective, choices, price(graph, profile, activity, products_text(choices)), [])

    monkeypatch.setattr(auto, "choose", mixed)
    model = save_model(active_model("spikformer-tiny"), tmp_path / "m.pt", source="test", created_from="test")
    out = tmp_path / "m.loihi"
    result = CliRunner().invoke(cli, ["export", str(model), "--target", "loihi2", "--attention", "auto", "-o",
                                      str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    graph = load_bundle(out).graph
    assert set(product_choices(graph).values()) == {"graded", "coincidence"}
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((2, *graph.input.shape)).astype(np.float32))
    result = CliRunner().invoke(cli, ["report", str(out), "--input", str(x), "-o", str(tmp_path / "r")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "mixed (1 graded, 1 coincidence)" in result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["mapping"]["spike_products"] == graph.attention
