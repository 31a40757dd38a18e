"""Ranges of the hardware figures (sims/uncertainty.py): the rule by hand, a validation network plugging in as data,
the fit network's stored shares and measured figures, the report's JSON and text, the Loihi 1 and embedded-core
cases, and the first screen of report pages in headless Chromium (where installed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from snn_deploy.graph import LOIHI2
from snn_deploy.graph.profiles import LOIHI2_CALIBRATION, MeasuredRun
from snn_deploy.sims.hardware import uncertainty
from snn_deploy.sims.hardware.schema import validate
from test_report import _run, bundle  # noqa: F401  (the qkformer-tiny bundle fixture and the CLI runner)

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("loihi2_pilotnet", ROOT / "benchmarks" / "loihi2_pilotnet.py")
bench = sys.modules.setdefault("loihi2_pilotnet", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(bench)
HAS_PILOTNET = (bench.REFERENCE / "network.net").is_file()
NO_PILOTNET = f"{bench.REFERENCE} (Intel's PilotNet LIF reference data) is absent"
RANGED = ("cores", "time_per_step_ns", "latency_ns", "time_per_sample_ns", "samples_per_s", "energy_pj_dynamic",
          "energy_pj_static", "energy_pj_total", "power_w", "edp_pj_s", "static_power_w")


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("report_screenshot", ROOT / "scripts" / "report_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rule_by_hand():
    # same mix as the fit: +- the model error; nothing in the fit's mix: the prior factor either way
    assert uncertainty.factors(0.0, 0.25, 4.573) == pytest.approx((0.75, 1.25))
    assert uncertainty.factors(1.0, 0.25, 4.573) == pytest.approx((1 / 4.573, 4.573))
    assert uncertainty.factors(0.5, 0.1, 2.0) == pytest.approx((0.5 * 0.9 + 0.25, 0.5 * 1.1 + 1.0))
    fit = {"synaptic_ops": 0.9, "neuron_updates": 0.1}
    assert uncertainty.outside({"synaptic_ops": 0.9, "neuron_updates": 0.1}, fit) == pytest.approx(0.0)
    assert uncertainty.outside({"synaptic_ops": 0.3, "neuron_updates": 0.7}, fit) == pytest.approx(0.6)
    assert uncertainty.outside({"spikes_in": 1.0}, fit) == pytest.approx(1.0)  # a term the fit never exercised
    prior = uncertainty.prior_factors(LOIHI2)
    assert prior["time"] == pytest.approx(4.573) and prior["energy"] == pytest.approx(1.193)


def test_the_label_and_the_ranges_follow_the_profile_data():
    """A second network is data: a validation run changes the label and the fitted part's error, no code."""
    unc = LOIHI2_CALIBRATION.uncertainty
    assert unc.basis() == ("fitted on 1 network: PilotNet LIF (lava-dl benchmark); not validated on another network")
    assert "fitted on 1 network" in LOIHI2_CALIBRATION.label("time_per_step")
    assert unc.static_power_w() == (0.232078, 0.281775)  # PilotNet LIF and SDNN, same board kind
    # the mapper's 72 / 74 on PilotNet LIF's table and 59 / 61 on PilotNet SDNN's (+3.4 %, the wider)
    assert unc.cores(72) == (72, 75) and unc.cores(44) == (44, 46)
    two_tables = dataclasses.replace(unc, core_checks={**unc.core_checks, "other": (100, 90)})
    assert two_tables.cores(100) == (90, 104)  # a table where the mapper over-predicts widens the low side
    assert unc.fitted_error("time")[0] == 0.25 and unc.fitted_error("energy")[0] == 0.12  # published, no validation
    validated = dataclasses.replace(unc, runs=(*unc.runs, MeasuredRun(
        "another network", "validation", 0.25, "a measured run", {"time_per_step": -40.0, "dynamic_energy": 8.0})))
    assert validated.basis().endswith("validated on 1: another network")
    assert validated.fitted_error("time") == (0.40, "largest validation error (another network)")
    assert validated.static_power_w() == (0.232078, 0.281775)
    with pytest.raises(ValueError, match="needs its time_per_step"):
        MeasuredRun("x", "validation", None, "s")


@pytest.mark.skipif(not HAS_PILOTNET, reason=NO_PILOTNET)
def test_the_fit_networks_shares_are_the_stored_ones_and_its_measurements_lie_in_its_ranges():
    from snn_deploy.sims.hardware import timing
    from snn_deploy.sims.hardware.mapper import map_graph

    graph = bench.pilotnet(bench.REFERENCE)
    act = bench.activity(graph, bench.REFERENCE)
    mapping = map_graph(graph, LOIHI2)
    cost = bench.cost(graph, act, LOIHI2)
    times = timing.core_times(mapping, timing.core_activity(graph, mapping, act))
    unc = LOIHI2_CALIBRATION.uncertainty
    shares = uncertainty.time_shares(mapping, cost, times)
    assert shares == pytest.approx(unc.time_shares, abs=1e-4)
    assert uncertainty.energy_shares(cost.energy_pj) == pytest.approx(unc.energy_shares, abs=1e-4)
    r = uncertainty.ranges(LOIHI2, mapping, cost, times)
    measured = bench.measured(bench.REFERENCE)
    assert r["basis"]["time_outside_share"] < 0.01 and r["basis"]["energy_outside_share"] < 0.01
    assert r["time_per_step_ns"]["low"] < measured.time_per_step_us * 1e3 < r["time_per_step_ns"]["high"]
    assert r["energy_pj_dynamic"]["low"] < measured.dynamic_energy_mj * 1e9 < r["energy_pj_dynamic"]["high"]
    assert r["energy_pj_total"]["low"] < measured.total_energy_mj * 1e9 < r["energy_pj_total"]["high"]
    measured_power = measured.total_energy_mj * 1e-3 / (16 * measured.time_per_step_us * 1e-6)  # 0.679 W
    assert r["power_w"]["low"] < measured_power < r["power_w"]["high"]


def test_every_figure_carries_a_range_and_uncosted_work_is_named(bundle):
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "4", "--json", "-")
    assert code == 0, text
    report = json.loads(text)
    from snn_deploy.sims.hardware.report import schema

    assert validate(report, schema()) == [] and report["schema_version"] == 5
    hw = report["hardware"]["neurons"]
    for key in RANGED:
        r = hw["ranges"][key]
        assert 0 < r["low"] <= r["central"] <= r["high"] and r["low"] < r["high"], key
    assert hw["ranges"]["energy_pj_total"]["central"] == pytest.approx(hw["energy_pj_total"])
    assert hw["power_w"] == pytest.approx(hw["energy_pj_total"] / hw["time_per_sample_ns"] * 1e-3)
    assert hw["energy_pj_static_single"] > hw["energy_pj_static"]  # one inference alone pays the pipeline fill
    assert "host I/O" in hw["not_modelled"][0]["what"] and "16.87" in hw["not_modelled"][0]["evidence"]
    for layer in report["layers"]:
        low, high = layer["time_range_ns"]
        assert low <= layer["time_per_step_ns"] <= high
    embedded = report["hardware"]["embedded"]  # x86 work not costed: a lower bound, never labelled calibrated
    assert embedded["provenance"] == "partial" and "embedded x86" in embedded["not_modelled"][0]["what"]
    assert "not modelled" in embedded["labels"]["time"]


def test_loihi1_says_not_modelled_instead_of_static_0(bundle):
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "--profile", "loihi1",
                      "--allow-violations")
    assert code == 0, text
    assert "static not modelled" in text and "static 0" not in text and "no range" in text
    code, text = _run("simulate", bundle, "--dataset", "digits", "--samples", "2", "--profile", "loihi1",
                      "--allow-violations", "--json", "-")
    hw = json.loads(text.split("\ncheck failed")[0])["hardware"]["neurons"]
    assert hw["energy_pj_static"] is None and hw["ranges"] is None and hw["provenance"] == "estimated"


def _first_screen_checked(page: Path, tmp_path: Path, name: str) -> str:
    shot = _screenshot_module()
    text = shot.first_screen(page, 1200, 1000)
    for needle in ("fits", "latency", "throughput", "energy per inference", "how sure", "fitted on 1 network",
                   "not validated on another network", "host I/O not modelled", "bottleneck", "per-layer table"):
        assert needle in text, (name, needle)
    assert " to " in text.split("latency", 1)[1].split("\n")[1]  # the latency line carries its range
    png = shot.screenshot(page, tmp_path / f"{name}.png", 1200, 1000)
    from PIL import Image

    assert Image.open(png).convert("L").getextrema()[0] < 100
    return text


def test_report_first_screen_in_headless_chromium(bundle, tmp_path):
    """The first 1200 x 1000 pixels answer fits / how fast / energy / how sure, with ranges and the 'fitted on'
    label; the per-layer table is one link away. Spike-product sections appear only with spike products."""
    if _screenshot_module().browser() is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium): the first screen was not checked in a browser")
    out = tmp_path / "r"
    code, text = _run("report", bundle, "--dataset", "digits", "--samples", "4", "-o", out)
    assert code == 0, text
    _first_screen_checked(out / "report.html", tmp_path, "qk")
    page = (out / "report.html").read_text()
    assert 'href="#layers"' in page and 'id="layers"' in page and "embedded cores (partial)" in page


@pytest.mark.skipif(not HAS_PILOTNET, reason=NO_PILOTNET)
def test_imported_pilotnet_report_first_screen_and_no_spike_product_sections(tmp_path):
    shot = _screenshot_module()
    if shot.browser() is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium): the first screen was not checked in a browser")
    bundle = tmp_path / "pilotnet.loihi"
    code, text = _run("export", bench.REFERENCE / "network.net", "--target", "loihi2", "-o", bundle)
    assert code == 0, text
    out = tmp_path / "r"
    code, text = _run("report", bundle, "--input", bench.REFERENCE / "image.npy", "--layout", "whc", "-o", out)
    assert code == 0, text
    _first_screen_checked(out / "report.html", tmp_path, "pilotnet")
    page = (out / "report.html").read_text()
    assert "spike product" not in page and "embedded cores" not in page and "attention accumulates" not in page
