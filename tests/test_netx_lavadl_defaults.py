"""netx import with lava-dl's own semantics: a dense first layer (no input layer) sizes the input port from its
weight, no state reset unless asked (lava-dl never reads ``tSample``), and refusals that name the real reason.
Checked against lava-dl's ``netx.hdf5.Network`` built with its defaults, in Lava (``lava`` marker)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snn_deploy.cli import cli
from snn_deploy.errors import UserError
from snn_deploy.exporters.frontends.netx import read_netx
from snn_deploy.graph import InputNode, LIFNode
from snn_deploy.sims.backends.simulator import simulate
from snn_deploy.watchdog import stop_runtime
from test_netx_import import _cuba, _small_net, _write

STEPS = 40  # well past the 16-step reset the importer used to add


def _dense_first(rng: np.random.Generator) -> list[dict]:
    """Two dense layers and no input layer, as lava-dl's tutorials ship some networks; a tSample of 16."""
    return [{"type": np.bytes_(b"dense"), "shape": np.array([6]), "weight": rng.integers(-30, 60, (6, 10)),
             "neuron": _cuba(vThMant=40, vDecay=256, iDecay=1024)},
            {"type": np.bytes_(b"dense"), "shape": np.array([3]), "weight": rng.integers(-20, 50, (3, 6)),
             "neuron": _cuba(vThMant=30, vDecay=128)}]


def _dense_rec_first(rng: np.random.Generator) -> list[dict]:
    """:func:`_dense_first` with a recurrent first layer (lava-dl's ``RecurrentDense``) whose bias fires it while the
    pipeline fills."""
    layers = _dense_first(rng)
    layers[0].update(type=np.bytes_(b"dense_rec"), weight_rec=rng.integers(-50, 40, (6, 6)), bias=np.full(6, 90))
    return layers


def _with_tsample(path, steps: int = 16):
    import h5py

    with h5py.File(path, "a") as f:
        f["simulation/tSample"] = steps
    return path


def test_dense_first_file_imports_with_the_input_port_from_its_weight(tmp_path):
    path = _with_tsample(_write(tmp_path / "dense.net", _dense_first(np.random.default_rng(0))))
    graph = read_netx(path)
    assert isinstance(graph.nodes[0], InputNode) and graph.input.shape == (10, 1, 1) and graph.input.payload_bits == 1
    assert [n.name for n in graph.of_kind(LIFNode)] == ["fc-0", "fc-1"]
    assert graph.T == 16 and graph.reset_interval == 0 and graph.reset_text() == "none"
    assert read_netx(path, reset_interval=5).reset_interval == 5


def test_no_reset_unless_asked(tmp_path):
    """A tSample-free file: no reset at all (it used to get one every 16 steps); --reset-interval asks for one."""
    path = _write(tmp_path / "net.net", _small_net())
    graph = read_netx(path, steps=STEPS)
    assert graph.reset_interval == 0
    x = torch.ones(STEPS, 1, 2, 4, 4)
    plain = simulate(graph, x, traces={"fc-0"}).traces["fc-0"].v
    reset = simulate(read_netx(path, steps=STEPS, reset_interval=16), x, traces={"fc-0"}).traces["fc-0"].v
    assert torch.equal(plain[:16], reset[:16]) and not torch.equal(plain[16:], reset[16:])


def test_export_records_the_reset_and_simulate_prints_it(tmp_path):
    path = _write(tmp_path / "net.net", _small_net())
    runner = CliRunner()
    for extra, words, recorded in (([], "none", 0), (["--reset-interval", "8"], "every 8 steps", 8)):
        out = tmp_path / f"b{recorded}.loihi"
        result = runner.invoke(cli, ["export", str(path), "-o", str(out), *extra])
        assert result.exit_code == 0 and f"state reset: {words}" in result.output, result.output
        import json
        assert json.loads((out / "manifest.json").read_text())["reset_interval"] == recorded
        np.save(tmp_path / "x.npy", np.ones((2, 4, 4)))
        result = runner.invoke(cli, ["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--time-steps", "20"])
        assert result.exit_code == 0 and "state reset" in result.output and words in result.output, result.output


def test_recurrent_dense_first_file_imports_with_lava_dls_defaults(tmp_path):
    """A ``dense_rec`` first layer: the input port from its weight, no reset, the pipeline fill; its recurrent
    synapse feeds the fill's spikes into step 0, in the simulator and in ONNX alike."""
    import dataclasses

    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    path = _with_tsample(_write(tmp_path / "rec.net", _dense_rec_first(np.random.default_rng(0))))
    graph = read_netx(path, steps=12)
    assert graph.input.shape == (10, 1, 1) and graph.pipeline_fill and graph.reset_interval == 0
    assert graph["fc-0.recurrent"].recurrent and graph.recurrent_synapses("fc-0")
    x = torch.from_numpy((np.random.default_rng(1).uniform(0, 1, (12, 3, 10, 1, 1)) < 0.5).astype(np.float64))
    ours = simulate(graph, x).spikes
    onnx_spikes, _ = run_onnx(to_onnx(graph), graph, x)
    assert int(ours["fc-0"].sum()) > 0 and all(torch.equal(ours[k], onnx_spikes[k]) for k in ours)
    functional = simulate(dataclasses.replace(graph, pipeline_fill=False), x).spikes
    assert not torch.equal(functional["fc-0"][0], ours["fc-0"][0])  # the fill's spikes reached step 0


def _biased(path):
    layers = _small_net()
    layers[1]["bias"], layers[3]["bias"] = np.array([300, -50, 200]), np.arange(5) * 40
    return _write(path, layers)


def test_pipeline_fill_in_the_simulator_and_onnx(tmp_path):
    """Without a reset, biased layers run before the sample reaches them: the simulator's Lava time axis and the
    ONNX graph agree, and both differ from the functional model (each layer from zero at the first step)."""
    import dataclasses

    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    graph = read_netx(_biased(tmp_path / "net.net"), steps=12)
    assert graph.pipeline_fill
    x = torch.from_numpy((np.random.default_rng(0).uniform(0, 1, (12, 3, 2, 4, 4)) < 0.4).astype(np.float64))
    filled = simulate(graph, x, traces={"fc-0"})
    functional = simulate(dataclasses.replace(graph, pipeline_fill=False), x, traces={"fc-0"})
    ours = filled.spikes
    onnx_spikes, _ = run_onnx(to_onnx(graph), graph, x)
    assert all(torch.equal(ours[k], onnx_spikes[k]) for k in ours)
    assert not torch.equal(filled.traces["fc-0"].v, functional.traces["fc-0"].v)
    lava = simulate(graph, x[:, :1], lava_time=True).spikes["fc-0"]  # the whole axis: T + depth steps
    assert lava.shape[0] == 12 + graph.depths()["fc-0"] and torch.equal(lava[2:14], ours["fc-0"][:, :1])


@pytest.mark.lava
def test_lava_builder_runs_a_pipeline_fill(tmp_path):
    """The Lava builder with plain LIFs, one runtime per sample, equals the simulator's pipeline fill."""
    from snn_deploy.sims.backends.lava_build import run

    graph = read_netx(_biased(tmp_path / "net.net"), steps=10)
    x = torch.from_numpy((np.random.default_rng(1).uniform(0, 1, (10, 2, 2, 4, 4)) < 0.4).astype(np.float64))
    expected, got = simulate(graph, x).spikes, run(graph, x.numpy().astype(np.int64)).spikes
    assert all(torch.equal(got[k], expected[k]) for k in expected) and int(expected["fc-0"].sum()) > 0


@pytest.mark.parametrize("layers, reason", [
    ([{"type": np.bytes_(b"dense_rec"), "shape": np.array([4]), "weight": np.ones((4, 3)), "delay": np.ones(4),
       "weight_rec": np.ones((4, 4)), "neuron": _cuba()}], "recurrent dense with delays"),
    ([{"type": np.bytes_(b"conv"), "shape": np.array([3, 2, 2]), "weight": np.ones((3, 2, 3, 3)),
       "neuron": _cuba()}], "first conv layer without an input layer"),
    ([{"type": np.bytes_(b"dense_rec"), "shape": np.array([4]), "weight": np.ones((4, 3)),
       "weight_rec": np.ones((4, 4)), "neuron": {"type": np.bytes_(b"SDNN"), "activation": np.bytes_(b"relu"),
                                                  "vThMant": 4}}], "recurrent dense with sigma-delta neurons"),
    (_small_net()[:2] + [{"type": np.bytes_(b"pool"), "shape": np.array([3, 1, 1])},
                         {"type": np.bytes_(b"conv"), "shape": np.array([3, 1, 1]), "weight": np.ones((3, 3, 1, 1)),
                          "neuron": _cuba()}], "pool layers"),
])
def test_refusals_name_the_real_reason(tmp_path, layers, reason):
    with pytest.raises(UserError) as caught:
        read_netx(_write(tmp_path / "net.net", layers))
    assert reason in str(caught.value) and "damaged" not in str(caught.value)


def _lava_dl_defaults(path, frames: np.ndarray, steps: int) -> np.ndarray:
    """The last layer's spikes of lava-dl's ``Network(net_config=path)`` with every argument at its default, fed
    ``frames`` [steps, n] through ``Network.inp``: [steps + depth, n] from Lava's time step 1."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    net = Network(net_config=str(path))
    total = steps + len(net.layers)
    data = np.concatenate([frames, np.zeros((total - steps, frames.shape[1]))]).T.astype(np.int32)
    source, sink = Source(data=data), Sink(shape=net.out.shape, buffer=total)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return np.asarray(sink.data.get()).T
    finally:
        stop_runtime(net)


@pytest.mark.lava
@pytest.mark.parametrize("layers", [_dense_first, _dense_rec_first])
def test_dense_first_without_reset_equals_lava_dls_defaults(tmp_path, layers):
    """Spike for spike over 40 steps (past tSample = 16) against lava-dl's own loader with its defaults (also with
    a biased recurrent first layer, whose pipeline-fill spikes feed back into step 0), and the registry's netx
    backend (`verify --backend sim,netx`) states the reset each side used."""
    rng = np.random.default_rng(4)
    path = _with_tsample(_write(tmp_path / "dense.net", layers(rng)))
    graph = read_netx(path, steps=STEPS)
    frames = (rng.uniform(0, 1, (STEPS, 10)) < 0.5).astype(np.float64)
    ours = simulate(graph, torch.from_numpy(frames).reshape(STEPS, 1, 10, 1, 1)).spikes
    depth = graph.depths()["fc-1"]
    theirs = _lava_dl_defaults(path, frames, STEPS)[depth: depth + STEPS]
    assert theirs.any() and np.array_equal(ours["fc-1"][:, 0, :, 0, 0].numpy(), theirs != 0)
    np.save(tmp_path / "x.npy", frames.reshape(STEPS, 10, 1, 1))
    import json
    result = CliRunner().invoke(cli, ["verify", str(path), "--backend", "sim,netx", "--input",
                                      str(tmp_path / "x.npy"), "--time-steps", str(STEPS), "--json",
                                      str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["exact"] and report["resets"] == {"sim": "none", "netx": "none (lava-dl's default, "
                                                                             "reset_interval=None)"}


def test_reset_words_say_that_samples_start_from_zero_state_without_a_fill():
    """One wording for the CLI, verify and the report: a graph without a periodic reset or a pipeline fill still
    starts every sample from zero state; lava-dl's default (the fill) is a bare "none"."""
    from snn_deploy.graph.nodes import reset_text

    assert reset_text(0) == "none within a sample (every sample starts from zero state)"
    assert reset_text(0, 0, True) == "none"
    assert reset_text(8, 1) == "every 8 steps, the first after 9"
