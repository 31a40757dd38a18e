"""Sigma-delta (SDNN) networks end to end: lava-dl's PilotNet SDNN golden arrays exact, its Loihi 2 compiler's core
table against the mapper (second silicon check, no retuning), and a small SDNN netx file against lava-dl's own
loader in Lava, payload for payload. lava-dl's files are found through benchmarks/loihi2_pilotnet.py
(``$SNN_DEPLOY_LAVA_DL`` or ../shared/reference/pilotnet_sdnn/); tests that need them skip, naming both places."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_deploy.errors import UserError
from snn_deploy.exporters.frontends.netx import read_netx
from snn_deploy.graph import LIFNode, SigmaDeltaNode, profile, target_problems
from snn_deploy.sims.backends.simulator import simulate
from snn_deploy.watchdog import stop_runtime
from test_netx_import import _write

_SPEC = importlib.util.spec_from_file_location(
    "loihi2_pilotnet", Path(__file__).resolve().parents[1] / "benchmarks" / "loihi2_pilotnet.py")
bench = sys.modules.setdefault("loihi2_pilotnet", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(bench)
GTS, TUTORIAL, WHERE = bench.sdnn_files()
needs_gts = pytest.mark.skipif(GTS is None, reason=f"lava-dl's gts/pilotnet_sdnn files are in neither {WHERE}")
needs_tutorial = pytest.mark.skipif(
    TUTORIAL is None or not (bench.SDNN_REFERENCE / "README.md").is_file(),
    reason=f"the tutorial's PilotNet SDNN network.net is in neither {WHERE} (or the compiler table's README is absent)")


@needs_gts
def test_pilotnet_sdnn_golden_arrays_exact():
    """act0 (input layer payloads), sigma1 / sigma2 (20 steps), output (9 steps) and the square network's sigma1-4
    (20 steps): every value at every step, index j = Lava's time step j + 1, no lag."""
    found = bench.sdnn_traces(GTS)
    assert found["layers_compared"] == 8 and found["layers_exact"] == 8, found["arrays"]


@needs_gts
def test_pilotnet_sdnn_imports_as_lava_dl_builds_it():
    graph = read_netx(GTS / "network.net")
    sdnn = graph.of_kind(SigmaDeltaNode)
    assert [n.mode for n in sdnn] == ["delta"] + ["sigma_delta"] * 7 + ["sigma"]
    assert graph.host == {"input"} and graph.pipeline_fill and graph.reset_interval == 0
    assert [n.vth for n in sdnn] == [0, 13, 0, 0, 0, 23, 1, 6, 6] and {n.message_bits for n in sdnn} == {16}
    assert all(graph[f"{n.name}.synapse"].graded for n in sdnn[1:])
    assert [p.what for p in target_problems(graph, profile("loihi1"))][0].startswith("sigma-delta payloads")
    with pytest.raises(UserError, match="ignores resets of sigma-delta"):
        read_netx(GTS / "network.net", reset_interval=16)
    from snn_deploy.exporters.formats.onnx import to_onnx
    with pytest.raises(UserError, match=r"sigma-delta payloads exactly: through conv-1.synapse.*>= 2\^24"):
        to_onnx(graph)


@needs_tutorial
def test_mapper_against_the_compilers_pilotnet_sdnn_table():
    """Second silicon check, the mapper unchanged since PilotNet LIF (72 cores against 74): every layer within one
    core of the Loihi 2 compiler's allocation and the total within 10 % of its 61."""
    from snn_deploy.graph.profiles import LOIHI2_CALIBRATION, PILOTNET_SDNN

    ours, theirs = bench.sdnn_cores(TUTORIAL), bench.sdnn_compiler_cores()
    assert sum(theirs) == 61
    assert abs(sum(ours) - 61) <= 0.10 * 61 and all(abs(a - b) <= 1 for a, b in zip(ours, theirs)), (ours, theirs)
    assert LOIHI2_CALIBRATION.uncertainty.core_checks[PILOTNET_SDNN] == (sum(ours), sum(theirs))  # the range's data


def _sdnn_net(rng: np.random.Generator) -> list[dict]:
    """Input (Delta), conv, flatten, dense and a sigma_output dense: the layer kinds of PilotNet SDNN."""
    def sdnn(vth: int, **extra) -> dict:
        return {"type": np.bytes_(b"SDNN"), "activation": np.bytes_(b"relu"), "vThMant": vth, **extra}
    return [{"type": np.bytes_(b"input"), "shape": np.array([2, 5, 5]), "neuron": sdnn(0)},
            {"type": np.bytes_(b"conv"), "shape": np.array([3, 3, 3]), "weight": rng.integers(-9, 10, (3, 2, 3, 3)),
             "stride": np.array([1, 1]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": 1,
             "bias": rng.integers(-20, 20, 3), "neuron": sdnn(2)},
            {"type": np.bytes_(b"flatten"), "shape": np.array([27])},
            {"type": np.bytes_(b"dense"), "shape": np.array([6]), "weight": rng.integers(-12, 13, (6, 27)),
             "bias": rng.integers(-10, 30, 6), "neuron": sdnn(1)},
            {"type": np.bytes_(b"dense"), "shape": np.array([1]), "weight": rng.integers(-9, 10, (1, 6)),
             "neuron": sdnn(1, sigma_output=True)}]


def test_sdnn_bundle_round_trip_and_refusals(tmp_path):
    """A sigma-delta graph survives the bundle (network.nir's extension placeholder) exactly; ONNX computes its
    payloads exactly (its synapses' partial sums stay below 2^24); the netx writer refuses it by name."""
    from snn_deploy.exporters.nir import io as nir_io
    from snn_deploy.exporters.formats.netx import to_netx
    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    graph = read_netx(_write(tmp_path / "sdnn.net", _sdnn_net(np.random.default_rng(7))), steps=6)
    nir_io.write(graph, tmp_path / "g.nir")
    back = nir_io.read(tmp_path / "g.nir")
    assert back.pipeline_fill and back.host == graph.host
    assert [(n.kind, getattr(n, "mode", None)) for n in back.nodes] == [(n.kind, getattr(n, "mode", None))
                                                                         for n in graph.nodes]
    x = torch.from_numpy(np.random.default_rng(1).integers(-30, 31, (6, 1, 2, 5, 5)).astype(np.float64))
    a, b = simulate(graph, x), simulate(back, x)
    assert all(torch.equal(a.graded[k], b.graded[k]) for k in a.graded)
    x = torch.from_numpy(np.random.default_rng(2).integers(-40, 41, (6, 3, 2, 5, 5)).astype(np.float64))
    onnx_out, _ = run_onnx(to_onnx(graph), graph, x)
    expected = simulate(graph, x).graded
    assert all(torch.equal(onnx_out[k], expected[k]) for k in expected) and expected["fc-1"].abs().sum() > 0
    with pytest.raises(UserError, match="sigma-delta neurons"):
        to_netx(graph, tmp_path / "out.net")


def _lava_dl_payloads(path: Path, frames: np.ndarray, steps: int) -> list[np.ndarray]:
    """Every layer's output of lava-dl's ``Network(net_config=path)`` (its defaults) in Lava, fed ``frames`` [steps,
    C, H, W] through ``Network.inp``: per layer [steps, neurons in (C, H, W) order], index j = time step j + 1."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    net = Network(net_config=str(path))
    source = Source(data=np.moveaxis(frames.transpose(0, 3, 2, 1), 0, -1).astype(np.int32))  # (W, H, C, T)
    source.s_out.connect(net.in_layer.neuron.a_in)  # as lava-dl's test: an Input block leaves Network.inp unconnected
    sinks = []
    for layer in net.layers:
        sinks.append(Sink(shape=layer.out.shape, buffer=steps))
        layer.out.connect(sinks[-1].a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = [np.moveaxis(np.asarray(sink.data.get()), -1, 0) for sink in sinks]
    finally:
        stop_runtime(net)
    return [o.transpose(0, 3, 2, 1).reshape(steps, -1) if o.ndim == 4 else o.reshape(steps, -1) for o in out]


@pytest.mark.lava
def test_small_sdnn_network_equals_lava_dl_in_lava_payload_for_payload(tmp_path):
    """Graded payloads of every layer (and the sigma output) at every step, against lava-dl's own loader with its
    defaults (no reset, every layer from time step 1: biases act before the input arrives)."""
    rng = np.random.default_rng(7)
    path = _write(tmp_path / "sdnn.net", _sdnn_net(rng))
    steps = 12
    graph = read_netx(path, steps=steps)
    frames = rng.integers(-40, 41, (steps, 2, 5, 5))
    frames[4:8] = frames[3]  # a held stretch: only changes are sent
    ours = simulate(graph, torch.from_numpy(frames.astype(np.float64))[:, None], lava_time=True)
    theirs = _lava_dl_payloads(path, frames, steps)
    names = [n.name for n in graph.of_kind(LIFNode)]
    assert len(theirs) == len(names)
    for name, expected in zip(names, theirs):
        got = ours.graded[name][:steps, 0].reshape(steps, -1).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert np.abs(theirs[-1]).sum() > 0 and np.count_nonzero(theirs[2]) > 0


@pytest.mark.lava
def test_lava_builder_runs_sdnn_as_the_simulator(tmp_path):
    """The Lava builder (Lava's Delta / SigmaDelta / Sigma and Conv processes, one runtime per sample): every
    layer's graded payloads at every step equal the simulator's, two samples."""
    from snn_deploy.sims.backends.lava_build import run

    rng = np.random.default_rng(8)
    graph = read_netx(_write(tmp_path / "sdnn.net", _sdnn_net(rng)), steps=8)
    x = torch.from_numpy(rng.integers(-40, 41, (8, 2, 2, 5, 5)).astype(np.float64))
    expected = simulate(graph, x).graded
    got = run(graph, x.numpy().astype(np.int64)).spikes
    assert set(got) == set(expected)
    for name, payloads in expected.items():
        assert torch.equal(got[name], payloads), name
    assert int(got["fc-0"].abs().sum()) > 0


def test_sigma_delta_state_beyond_int32_is_counted_as_a_register_overflow(tmp_path):
    """Lava's fixed-point sigma-delta models hold sigma, act and residue in int32 (numpy wraps beyond it): the
    simulator counts every state value past int32, per layer and register, in the same pass; in range, nothing."""
    from snn_deploy.fixedpoint.sigma_delta import INT32

    layers = _sdnn_net(np.random.default_rng(7))
    layers[1]["weight"] = layers[1]["weight"] * 60  # conv-0's sums of full-scale payloads pass 2^31
    graph = read_netx(_write(tmp_path / "sdnn.net", layers), steps=6)
    small = torch.from_numpy(np.random.default_rng(2).integers(-40, 41, (6, 2, 2, 5, 5)).astype(np.float64))
    assert simulate(graph, small).registers == {}
    big = torch.full((6, 2, 2, 5, 5), float((1 << 19) - 1))
    names = [n.name for n in graph.of_kind(SigmaDeltaNode)]
    result = simulate(graph, big, traces=set(names), lava_time=True)  # counted over every step Lava runs
    lo, hi = INT32
    for register, trace in (("sigma", "u"), ("activation", "v")):
        beyond = {name: int(((getattr(t, trace) < lo) | (getattr(t, trace) > hi)).sum())
                  for name, t in result.traces.items()}
        found = {layer: f.count for (layer, r), f in result.registers.items() if r == register}
        assert found and found == {name: n for name, n in beyond.items() if n}
    assert all(found.worst > hi for found in result.registers.values())
