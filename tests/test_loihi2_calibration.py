"""Loihi 2 profile against Intel's silicon: the mapper's cores per layer against the Loihi 2 compiler's table, and
the calibrated cost model against PilotNet LIF's measured time and energy (lava-dl's benchmark notebook; data in
../shared/reference/pilotnet_lif/, read through benchmarks/loihi2_pilotnet.py so test and benchmark agree)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.graph.profiles import LOIHI2

_SPEC = importlib.util.spec_from_file_location(
    "loihi2_pilotnet", Path(__file__).resolve().parents[1] / "benchmarks" / "loihi2_pilotnet.py")
bench = sys.modules.setdefault("loihi2_pilotnet", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(bench)

pytestmark = pytest.mark.skipif(not (bench.REFERENCE / "network.net").is_file(),
                                reason=f"{bench.REFERENCE} (Intel's PilotNet LIF reference data) is absent")


@pytest.fixture(scope="module")
def pilotnet():
    graph = bench.pilotnet(bench.REFERENCE)
    return graph, bench.measured(bench.REFERENCE)


def test_cores_per_layer_are_within_one_core_or_15_percent_of_the_compiler(pilotnet):
    """A prediction, not a fit: no mapper constant was chosen from these counts (snn_deploy/graph/profiles.py CompilerModel)."""
    graph, measured = pilotnet
    mapping = map_graph(graph, LOIHI2)
    assert measured.cores == dict(zip(bench.TABLE_LAYERS, (13, 25, 13, 3, 3, 2, 12, 1, 1, 1)))
    ours = {name: len(mapping.layers[name].cores) for name in bench.TABLE_LAYERS}
    for name, cores in measured.cores.items():
        assert abs(ours[name] - cores) <= max(1, 0.15 * cores), (name, ours[name], cores)
    assert abs(sum(ours.values()) - 74) <= 0.10 * 74
    assert not mapping.violations and mapping.chips == 1


def test_synaptic_memory_of_dense_layers_matches_the_compiler_allocations(pilotnet):
    """The register units the compiler printed for the dense rows that fit one core (1300, 150, 10) and the
    12800 of a 17-neuron group of fc-0; the list layout was inferred from these figures (CompilerModel)."""
    graph, _ = pilotnet
    mapping = map_graph(graph, LOIHI2)
    units = {name: max(mapping.cores[i].synmem_units for i in mapping.layers[name].cores)
             for name in ("fc-1", "fc-2", "fc-3")}
    assert units == {"fc-1": 1300, "fc-2": 150, "fc-3": 10}
    assert int(LOIHI2.compiler.synmem_units(2560, 2560 * 17)) == 12800
    assert int(LOIHI2.compiler.synmem_units(2560, 2560 * 100)) == 61440


def test_calibrated_time_and_energy_meet_the_goals_and_the_stored_residuals(pilotnet):
    graph, measured = pilotnet
    act = bench.activity(graph, bench.REFERENCE)
    cost = bench.cost(graph, act, LOIHI2)
    err = bench.errors(bench.figures(cost), measured)
    assert abs(err["time_per_step"]) <= 25 and abs(err["dynamic_energy"]) <= 15 and abs(err["total_energy"]) <= 15
    for key, stored in LOIHI2.calibration.residual_pct.items():  # the profile's constants are not stale
        assert err[key] == pytest.approx(stored, abs=0.1), key
    assert cost.labels["time"] == ("calibrated on PilotNet LIF (lava-dl benchmark), residual +0.0 %; fitted on 1 "
                                   "network: PilotNet LIF (lava-dl benchmark); not validated on another network")
    assert cost.static_energy_pj == pytest.approx(0.232078 * cost.time_per_sample_ns * 1e3)
    assert 0 <= cost.bottleneck_core < len(cost.core_time_ns)
    assert set(cost.layer_time_ns) == set(bench.TABLE_LAYERS)
