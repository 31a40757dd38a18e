"""The report's "spike-product lowerings" section: every lowering of the registry priced at the run's simulated
activity by the same mapper and cost model as the report's main figures, the exported one marked, Pareto rows
undominated, and no section for a network without spike products."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from export_testing import quantized, run_cli
from snn_deploy.exporters.formats.bundle import load_bundle, write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2, ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.graph.hardware import PRODUCT_MODELS
from snn_deploy.sims.hardware.plots import PLOTS
from snn_deploy.sims.hardware.report import analyse, build, lowerings_lines, schema
from snn_deploy.sims.hardware.schema import validate
from snn_deploy.sims.hardware.tradeoff import mark_pareto
from snn_deploy.sims.runs.driver import run_dataset

SAMPLES = "4"


@pytest.fixture(scope="module")
def graph() -> Graph:
    return lower(quantized("spikformer-tiny"))


@pytest.fixture(scope="module")
def report_dir(graph, tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("lowerings")
    write_bundle(graph, root / "b.loihi", target=LOIHI2, quantization={}, extra={"arch": "spikformer-tiny"})
    code, text = run_cli("report", root / "b.loihi", "--dataset", "digits", "--samples", SAMPLES, "-o", root / "r")
    assert code == 0, text
    return root / "r", text


def _dominates(a: dict, b: dict) -> bool:
    ka = (a["chips"], a["latency_ms"], a["energy_mJ"]["total"])
    kb = (b["chips"], b["latency_ms"], b["energy_mJ"]["total"])
    return all(x <= y for x, y in zip(ka, kb)) and ka != kb


def test_one_row_per_lowering_and_the_exported_row_is_the_main_figures(report_dir):
    out, text = report_dir
    report = json.loads((out / "report.json").read_text())
    assert validate(report, schema()) == []
    section = report["lowerings"]
    rows = {row["attention"]: row for row in section["rows"]}
    assert list(rows) == list(PRODUCT_MODELS) and section["exported"] == "coincidence"
    assert [row["attention"] for row in section["rows"] if row["exported"]] == ["coincidence"]
    for model, name in (("neurons", "coincidence"), ("embedded", "embedded")):  # same mapper, cost model, activity
        hw, row = report["hardware"][model], rows[name]
        assert (row["cores"], row["chips"], row["lower_bound_cores"]) == (hw["cores"], hw["chips"],
                                                                        hw["lower_bound_cores"])
        assert row["energy_mJ"]["total"] * 1e9 == pytest.approx(hw["energy_pj_total"], rel=1e-12)
        assert row["energy_mJ"]["dynamic"] * 1e9 == pytest.approx(hw["energy_pj_dynamic"], rel=1e-12)
        assert row["energy_mJ"]["static"] * 1e9 == pytest.approx(hw["energy_pj_static"], rel=1e-12)
        assert row["latency_ms"] * 1e6 == pytest.approx(hw["latency_ns"], rel=1e-12)
        assert row["latency_ticks"] == hw["ticks"]
    assert rows["coincidence"]["cores"] == report["mapping"]["cores"]
    # the lowerings differ where they should: graded packs its products denser, token-serial takes sub-steps and
    # is refused by name (the zoo's LIFs decay: they do not hold their state on the sub-step ticks), embedded is
    # partial; neither of the last two is ever Pareto-optimal
    assert rows["graded"]["cores"] < rows["coincidence"]["cores"]
    serial = rows["token-serial"]
    assert serial["ticks_per_step"] > 1 and serial["violations"] and not serial["pareto"]
    assert "token-serial" in serial["violations"][0] and "Lava's LIF has no step-gated mode" in serial["violations"][0]
    assert rows["embedded"]["partial"] and not rows["embedded"]["pareto"]
    eligible = [r for r in section["rows"] if not r["partial"] and not r["violations"]]
    pareto = [r for r in section["rows"] if r["pareto"]]
    assert pareto and all(not _dominates(o, p) for p in pareto for o in eligible)
    assert all(any(_dominates(o, r) for o in eligible) for r in eligible if not r["pareto"])
    # shown on the console, the page and as a plot
    assert "spike-product lowerings on loihi2 at the simulated activity (exported: coincidence)" in text
    assert "token-serial" in text and "violation:" in text
    html = (out / "report.html").read_text()
    assert 'id="lowerings"' in html and "6 spike-product lowerings" in html and "10 notes" in html
    assert html.count("data:image/png;base64,") == len(PLOTS) + 1
    assert (out / "lowerings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_exported_lowering_is_the_bundles_own(graph, tmp_path):
    graded = replace(graph, attention="graded")
    write_bundle(graded, tmp_path / "g.loihi", target=LOIHI2, quantization={}, extra={"arch": "spikformer-tiny"})
    bundle = load_bundle(tmp_path / "g.loihi")
    x = np.random.default_rng(0).random((2, *bundle.graph.input.shape), dtype=np.float32)
    import torch

    activity = run_dataset(bundle.graph, torch.from_numpy(x), None)
    report = build(analyse(bundle.graph, LOIHI2, activity, lowerings=True), bundle, dataset="x", split="input")
    assert validate(report, schema()) == []
    rows = report["lowerings"]["rows"]
    assert [r["attention"] for r in rows if r["exported"]] == ["graded"] == [report["mapping"]["spike_products"]]
    own = next(r for r in rows if r["exported"])
    assert own["cores"] == report["hardware"]["neurons"]["cores"]
    assert own["energy_mJ"]["total"] * 1e9 == pytest.approx(report["hardware"]["neurons"]["energy_pj_total"])
    without = build(analyse(bundle.graph, LOIHI2, activity), bundle, dataset="x", split="input")
    assert "lowerings" not in without  # simulate, report --no-lowerings
    assert lowerings_lines(without, asked=False) == ["spike-product lowerings: not priced (--no-lowerings)"]


def test_a_network_without_spike_products_has_no_section(tmp_path):
    n = 3
    graph = Graph([InputNode("in", (), (1, 1, 1), scale=1.0),
                   ConvNode("syn", ("in",), (n, 1, 1), weight=np.array([20, 5, -3]).reshape(n, 1, 1, 1),
                            weight_exp=0, graded=True),
                   LIFNode("lif", ("syn",), (n, 1, 1), du=1000, dv=200, vth=500,
                           bias_mant=np.zeros(n, dtype=np.int64), bias_exp=np.zeros(n, dtype=np.int64)),
                   ReadoutNode("out", ("lif",), (n, 1, 1), weight=np.eye(n), bias=np.zeros(n))], T=6)
    write_bundle(graph, tmp_path / "b", target=LOIHI2, quantization={}, extra={"arch": None})
    np.save(tmp_path / "x.npy", np.full((1, 1, 1), 100.0, dtype=np.float32))
    code, text = run_cli("report", tmp_path / "b", "--input", tmp_path / "x.npy", "-o", tmp_path / "r",
                         "--allow-violations")
    assert code == 0, text
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["bundle"]["spike_products"] == 0 and "lowerings" not in report
    assert "spike-product lowerings: none to compare (the network has no spike products)" in text
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'id="lowerings"' not in html and "9 notes" in html and not (tmp_path / "r" / "lowerings.png").exists()


def test_pareto_marks_exactly_the_undominated_eligible_rows():
    def row(chips, latency, energy, violations=(), partial=False):
        return ({"chips": chips, "energy_mJ": {"total": energy}, "violations": list(violations)},
                {"latency_ms": latency, "partial": partial})

    pairs = [row(2, 1.0, 5.0), row(1, 2.0, 5.0), row(2, 1.0, 6.0), row(1, 2.0, 5.0),  # a tie: both optimal
             row(1, 0.5, 1.0, violations=["x: refused"]), row(1, 0.5, 1.0, partial=True)]
    rows, details = [p[0] for p in pairs], [p[1] for p in pairs]
    mark_pareto(rows, details)
    assert [d["pareto"] for d in details] == [True, True, False, True, False, False]
