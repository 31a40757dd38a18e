"""The time interface of the reports (sims/timing.py): busy time of a core from its terms, the limiting term, and
a layer's bottleneck core, on hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from snn_deploy.sims.hardware.timing import CoreTimes


def _times(groups) -> CoreTimes:
    # 2 cores, T = 2 steps
    terms = {"synaptic_ops": np.array([[30.0, 10.0], [5.0, 5.0]]),
             "neuron_updates": np.array([[10.0, 10.0], [8.0, 8.0]]),
             "spikes_out": np.array([[25.0, 25.0], [1.0, 1.0]]),
             "spikes_in": np.array([[0.0, 0.0], [20.0, 30.0]])}
    return CoreTimes(terms, groups)


def test_additive_model_sums_every_term():
    times = _times((("synaptic_ops", "neuron_updates", "spikes_out", "spikes_in"),))
    assert times.busy.tolist() == [[65.0, 45.0], [34.0, 44.0]]
    assert times.limiter(0) == "spikes_out" and times.limiter(1) == "spikes_in"  # 50 vs 40 / 50 vs 10 and 16


def test_max_affine_model_takes_the_slowest_group():
    times = _times((("synaptic_ops", "neuron_updates"), ("spikes_out",), ("spikes_in",)))
    assert times.busy.tolist() == [[40.0, 25.0], [20.0, 30.0]]
    # core 0: compute 40 + 20 = 60 over the steps beats spikes out 50; within compute, synaptic ops (40) lead
    assert times.limiter(0) == "synaptic_ops"
    assert times.limiter(1) == "spikes_in"  # 50 against compute 26


def test_bottleneck_core_of_a_layer():
    from types import SimpleNamespace

    from snn_deploy.sims.hardware.timing import layer_times

    times = _times((("synaptic_ops", "neuron_updates"), ("spikes_out",), ("spikes_in",)))
    mapping = SimpleNamespace(layers={"a": SimpleNamespace(cores=range(0, 2)), "host": SimpleNamespace(cores=range(0))})
    a, host = layer_times(mapping, times, step_ns=50.0)
    assert (a.core, a.time_ns, a.share, a.limited_by) == (0, 32.5, pytest.approx(0.65), "synaptic_ops")
    assert (host.core, host.time_ns, host.limited_by) == (None, 0.0, None)


def test_core_times_match_the_cost_models_own_core_bound():
    """timing.core_times splits each core's time into terms; the slowest group must be exactly the bound the cost
    model itself uses for that core (cost.HardwareCost.core_time_ns), step for step up to the streamed order."""
    import torch

    from export_testing import images, quantized
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.graph import LOIHI2
    from snn_deploy.sims.hardware import timing
    from snn_deploy.sims.runs.driver import run_dataset
    from snn_deploy.sims.hardware.report import analyse

    graph = lower(quantized("qkformer-tiny"))
    activity = run_dataset(graph, images(2), torch.zeros(2, dtype=torch.int64), batch_size=2)
    analysis = analyse(graph, LOIHI2, activity)
    mapping, cost = analysis.mappings["neurons"], analysis.costs["neurons"]
    times = timing.core_times(mapping, timing.core_activity(graph, mapping, activity))
    assert np.allclose(np.sort(times.busy, 1), np.sort(cost.core_time_ns, 1))
