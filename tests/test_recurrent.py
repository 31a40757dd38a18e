"""Recurrent networks (issue 22): a neuron's loop back to itself through a Linear, as snnTorch 1.0 writes ``RLeaky``
in NIR and lava-dl builds a ``dense_rec`` layer, imported, simulated, and compared with the framework's own run,
ONNX Runtime, Lava (a ``Dense`` back into its ``LIFReset``) and lava-dl's own netx loader.

Framework coverage (their own words, with the installed versions): snnTorch 1.0.0 exports ``RLeaky`` as a flat cycle
``lif -> w_rec -> lif``. Norse 1.1.0's ``norse.to_nir`` has no mapping for ``LIFRecurrentCell`` (it writes a
``None`` node), and SpikingJelly 2.0.0's ``export_to_nir`` fails on its recurrent containers
(``LinearRecurrentContainer``: torch.fx "TraceError: Proxy object cannot be iterated";
``ElementWiseRecurrentContainer``: nirtorch "The only supported function is addition"); the tests pin both.
"""

from __future__ import annotations

import importlib.util
import warnings

import h5py
import nir
import numpy as np
import pytest
import torch

from export_testing import error_line, run_cli
from snn_deploy.exporters.nir import importer as nir_import
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.sims.backends.simulator import simulate

INSTALLED = {name: importlib.util.find_spec(name) is not None for name in ("snntorch", "norse", "spikingjelly")}
STEPS = 8
"""With ``beta = 1/2`` and even weights every v is a multiple of 2^7 for 7 halvings: Loihi's truncated decay is then
exact over 8 steps, so the float network and Loihi's integers agree bit for bit."""


def needs(package: str):
    return pytest.mark.skipif(not INSTALLED[package],
                              reason=f"{package} is not installed (requirements/frameworks.txt)")


def _grid(shape, generator, limit: int) -> torch.Tensor:
    """Even integers in [-limit, limit] with one entry 252: the quantizer then picks vth = floor(254 / (252 / 64)) =
    64 and keeps them (254 itself would land a hair under 64: snnTorch writes tau in float32, so the gain
    dt/tau r is 1 + 3e-8)."""
    m = 2 * torch.randint(-limit // 2, limit // 2 + 1, shape, generator=generator).float()
    m.view(-1)[0] = 252
    return m


def snntorch_recurrent(seed: int = 0, one_to_one: bool = False, loop_bias: float = 0.0):
    """``Linear(16, 24) -> Leaky -> Linear(24, 20) -> RLeaky(20, all-to-all Linear) -> Output`` on the Loihi grid
    (``one_to_one``: ``all_to_all=False``, each neuron feeding back to itself with weight ``V``, which snnTorch
    exports as a diagonal ``Linear``; ``loop_bias``: the all-to-all loop's ``Affine`` bias, which snnTorch adds every
    step):
    weights ``m 255/64`` on the binary input (payload 255) and ``m/64`` on spikes with even ``m``, beta 1/2,
    reset to zero without snnTorch's one-step reset delay (``reset_delay=False``: v = 0 right after the spike, as on
    Loihi; with the delay snnTorch also drops the next step's input). Returns (net, run, NIR graph)."""
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    g = torch.Generator().manual_seed(seed)
    common = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    first = torch.nn.Linear(16, 24, bias=False)
    second = torch.nn.Linear(24, 20, bias=False)
    if one_to_one:
        v = _grid((20,), g, 60) / 64
        v[0] = -40 / 64  # the 252 stays in the feed-forward part
        recurrent = snn.RLeaky(beta=torch.full((20,), 0.5), threshold=torch.ones(20), all_to_all=False, V=v,
                               **common)
    else:
        recurrent = snn.RLeaky(beta=torch.full((20,), 0.5), threshold=torch.ones(20), linear_features=20, **common)
    with torch.no_grad():
        first.weight[:] = _grid((24, 16), g, 16) * 255 / 64
        second.weight[:] = _grid((20, 24), g, 60) / 64
        if not one_to_one:
            recurrent.recurrent.weight[:] = _grid((20, 20), g, 60) / 64
            recurrent.recurrent.weight.view(-1)[0] = -40 / 64  # the 252 stays in the feed-forward part
            recurrent.recurrent.bias.fill_(loop_bias)
    net = torch.nn.Sequential(first, snn.Leaky(beta=torch.full((24,), 0.5), threshold=torch.ones(24), **common),
                              second, recurrent)

    def run(x: torch.Tensor, steps: int) -> list[torch.Tensor]:
        snn_utils.reset(net)
        out: list[list[torch.Tensor]] = [[], []]
        with torch.no_grad():
            for _ in range(steps):
                h = net[1](net[0](x))
                out[0].append(h)
                out[1].append(net[3](net[2](h)))
        return [torch.stack(o) for o in out]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir = export_to_nir(net, torch.zeros(1, 16), ignore_dims=[0])
    return net, run, ir


def binary_inputs(count: int, seed: int = 1) -> torch.Tensor:
    return (torch.rand(count, 16, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


@needs("snntorch")
def test_snntorch_rleaky_is_a_flat_cycle_and_imports_as_a_recurrent_synapse():
    _, _, ir = snntorch_recurrent()
    assert ("3.lif", "3.w_rec") in ir.edges and ("3.w_rec", "3.lif") in ir.edges
    graph, record = nir_import.to_graph(ir, steps=STEPS)
    recurrent = [n for n in graph.of_kind(ConvNode) if n.recurrent]
    assert [(n.name, n.inputs, n.shape) for n in recurrent] == [("3.lif.recurrent", ("3.lif",), (20, 1, 1))]
    assert graph["3.lif"].inputs == ("3.lif.from.1",) and graph.recurrent_synapses("3.lif") == recurrent
    assert record["nir_import"]["reset"] == "zero"
    assert [u["vth"] for u in record["units"]] == [64, 64]


@needs("snntorch")
@pytest.mark.parametrize("one_to_one", [False, True])
def test_snntorch_recurrent_network_runs_spike_for_spike_like_snntorch(one_to_one):
    _, run, ir = snntorch_recurrent(one_to_one=one_to_one)
    graph, record = nir_import.to_graph(ir, steps=STEPS)
    x = binary_inputs(256)
    source = run(x, STEPS)
    result = simulate(graph, x[:, :, None, None])
    for name, ref in zip(("1", "3.lif"), source):
        ours = result.spikes[name].reshape(STEPS, len(x), -1).bool()
        assert 0.05 < ref.mean() < 0.6, "too few or too many spikes for the comparison to mean anything"
        assert torch.equal(ours, ref.bool()), name
    # the recurrent synapses matter: without them the same graph gives other spikes
    rec = graph["3.lif.recurrent"]
    cut = Graph([n if n is not rec else ConvNode(rec.name, rec.inputs, rec.shape, weight=np.zeros_like(rec.weight),
                                                 weight_exp=rec.weight_exp, recurrent=True) for n in graph.nodes],
                T=graph.T)
    assert not torch.equal(simulate(cut, x[:, :, None, None]).spikes["3.lif"], result.spikes["3.lif"])


@needs("snntorch")
def test_recurrent_network_in_onnx_equals_the_simulator():
    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    _, _, ir = snntorch_recurrent(seed=3)
    graph, _ = nir_import.to_graph(ir, steps=STEPS)
    x = binary_inputs(64, seed=4)[:, :, None, None]
    expected = simulate(graph, x)
    spikes, logits = run_onnx(to_onnx(graph), graph, x)
    assert expected.spikes["3.lif"].float().mean() > 0.05
    for name, value in expected.spikes.items():
        assert torch.equal(spikes[name], value), name
    torch.testing.assert_close(logits, expected.logits)


@needs("snntorch")
def test_recurrent_edge_survives_the_bundle_and_is_mapped_and_costed(tmp_path):
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.graph import LOIHI2
    from snn_deploy.sims.hardware.mapper import map_graph

    _, _, ir = snntorch_recurrent()
    nir.write(str(tmp_path / "net.nir"), ir)
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "loihi", "--steps", str(STEPS),
                           "-o", tmp_path / "b")
    assert code == 0, output
    graph = load_bundle(tmp_path / "b").graph
    rec = graph["3.lif.recurrent"]
    assert rec.recurrent and rec.inputs == ("3.lif",)
    mapping = map_graph(graph, LOIHI2)
    projections = {p.synapse: p.source for pop in mapping.populations for p in pop.projections}
    assert projections["3.lif.recurrent"] == "3.lif"
    assert mapping.layers["3.lif"].synapses == 20 * 24 + 20 * 20  # feed-forward and recurrent synapses
    assert mapping.layers["3.lif"].depth == 2 and max(graph.depths().values()) == 2
    x = binary_inputs(32)[:, :, None, None]
    counted = simulate(graph, x, counts=True)
    spikes = counted.spikes["3.lif"].to(torch.int64).sum((1, 2, 3, 4)).numpy()
    assert np.array_equal(counted.events.conv_events[("3.lif.recurrent", "3.lif")], spikes * 20)
    np.save(tmp_path / "x.npy", x[0].numpy())
    code, output = run_cli("simulate", tmp_path / "b", "--input", tmp_path / "x.npy", "--json", "-")
    assert code == 0, output
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "netx", "--steps", str(STEPS),
                           "-o", tmp_path / "net.net")
    assert code == 2 and "the netx writer does not model recurrent synapses (3.lif.recurrent)" in error_line(output)


def test_a_bundle_whose_recurrent_conv_reads_no_lif_is_refused(tmp_path):
    graph = Graph([InputNode("in", (), (4, 1, 1)),
                   ConvNode("ff", ("in",), (4, 1, 1), weight=np.eye(4, dtype=np.int64)[:, :, None, None] * 10,
                            graded=True),
                   LIFNode("lif", ("ff",), (4, 1, 1)),
                   ConvNode("rec", ("lif",), (4, 1, 1), weight=np.ones((4, 4, 1, 1), dtype=np.int64), recurrent=True),
                   ReadoutNode("ro", ("lif",), (4, 1, 1), weight=np.eye(4), bias=np.zeros(4))], T=4)
    nir_io.write(graph, tmp_path / "n.nir")
    with h5py.File(tmp_path / "n.nir", "r+") as f:
        del f["node/nodes/rec/metadata/snn_deploy/inputs"]
        f["node/nodes/rec/metadata/snn_deploy/inputs"] = np.array([b"ff"])
    from snn_deploy.errors import UserError

    with pytest.raises(UserError, match="recurrent conv 'rec' must read one LIF node"):
        nir_io.read(tmp_path / "n.nir")


@pytest.mark.lava
@needs("snntorch")
def test_recurrent_network_in_lava_equals_the_simulator():
    """Lava's LIFReset with a Dense from the population back to itself: spike for spike, two samples (one runtime
    each: the Dense would carry a sample's last spikes into the next), with biases strong enough to fire the
    recurrent layer while the pipeline fills (Lava gives each LIF its bias when step 0 reaches it)."""
    import dataclasses

    from snn_deploy.sims.backends.lava_build import run as lava_run
    from snn_deploy.graph import input_sequence

    _, _, ir = snntorch_recurrent()
    graph, _ = nir_import.to_graph(ir, steps=STEPS)
    graph = Graph([dataclasses.replace(n, bias_mant=np.arange(n.shape[0]) * 150 - 1500,
                                       bias_exp=np.full(n.shape[0], 2))
                   if isinstance(n, LIFNode) else n for n in graph.nodes], T=graph.T)
    x = binary_inputs(2)[:, :, None, None]
    assert simulate(graph, torch.zeros_like(x)).spikes["3.lif"][:2].any()  # the bias alone fires it at once
    expected = simulate(graph, x)
    got = lava_run(graph, input_sequence(graph, x).numpy())
    assert expected.spikes["3.lif"].sum() > 0
    for name, value in expected.spikes.items():
        assert torch.equal(got.spikes[name], value), name


def test_reset_by_subtraction_is_refused_by_name(tmp_path):
    from test_nir_import import _chain

    nir.write(str(tmp_path / "net.nir"), _chain())
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "loihi", "--reset", "subtract",
                           "-o", tmp_path / "b")
    line = error_line(output)
    assert code == 2 and "reset by subtraction (--reset subtract)" in line and " at lif " in line, output
    assert not (tmp_path / "b").exists()
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "loihi", "--reset", "zero", "-o", tmp_path / "b")
    assert code == 0, output


def test_a_cycle_through_two_neurons_is_still_refused(tmp_path):
    from test_nir_import import _chain

    ir = _chain()
    ir.nodes["lif2"] = nir.LIF(tau=np.full(3, 2e-4), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                               v_reset=np.zeros(3))
    ir.nodes["w"] = nir.Linear(weight=np.eye(3, dtype=np.float32))
    ir.nodes["w2"] = nir.Linear(weight=np.eye(3, dtype=np.float32))
    ir.edges += [("lif", "w"), ("w", "lif2"), ("lif2", "w2"), ("w2", "lif")]
    nir.write(str(tmp_path / "net.nir"), ir)
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "loihi", "-o", tmp_path / "b")
    assert code == 2 and "cycle (recurrent edge) through these nodes" in error_line(output), output


@needs("norse")
def test_norse_cannot_export_a_recurrent_cell():
    import norse.torch as norse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir = norse.to_nir(norse.SequentialState(torch.nn.Linear(16, 6), norse.LIFRecurrentCell(6, 6)),
                          torch.zeros(1, 16))
    assert any(node is None for node in ir.nodes.values())  # no mapping for LIFRecurrentCell: a None node


@needs("spikingjelly")
def test_spikingjelly_cannot_export_a_recurrent_container():
    from spikingjelly.activation_based import layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    net = torch.nn.Sequential(layer.Linear(16, 6), layer.LinearRecurrentContainer(neuron.LIFNode(tau=2.0), 6, 6))
    with warnings.catch_warnings(), pytest.raises(Exception, match="Proxy object cannot be iterated"):
        warnings.simplefilter("ignore")
        export_to_nir(net, torch.zeros(1, 16))


def recurrent_netx_layers(seed: int = 0) -> list[dict]:
    """A lava-dl netx file with a ``dense_rec`` layer (netx's ``RecurrentDense``): binary input spikes ->
    dense_rec 16 -> 12 (+ 12 x 12 recurrent) -> dense 12 -> 5, CUBA neurons as lava-dl writes them."""
    from test_netx_import import _cuba

    rng = np.random.default_rng(seed)
    return [{"type": np.bytes_(b"input"), "shape": np.array([16])},
            {"type": np.bytes_(b"dense_rec"), "shape": np.array([12]), "weight": rng.integers(-20, 60, (12, 16)),
             "weight_rec": rng.integers(-60, 40, (12, 12)), "neuron": _cuba(iDecay=1024, vDecay=512, vThMant=80)},
            {"type": np.bytes_(b"dense"), "shape": np.array([5]), "weight": rng.integers(-30, 60, (5, 12)),
             "bias": rng.integers(-40, 40, 5), "neuron": _cuba(vThMant=60)}]


def test_netx_dense_rec_imports_as_a_recurrent_synapse(tmp_path):
    from snn_deploy.exporters.frontends.netx import read_netx
    from test_netx_import import _write

    layers = recurrent_netx_layers()
    graph = read_netx(_write(tmp_path / "rec.net", layers), steps=12)
    rec = graph["fc-0.recurrent"]
    assert rec.recurrent and rec.inputs == ("fc-0",) and np.array_equal(rec.weight[:, :, 0, 0], layers[1]["weight_rec"])
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (12, 4, 16, 1, 1))).double()
    assert simulate(graph, x).spikes["fc-0"].float().mean() > 0.05
    layers[1]["delay"] = np.ones(12)
    from snn_deploy.errors import UserError

    with pytest.raises(UserError, match=r"layer/1 \(dense_rec\): recurrent dense with delays"):
        read_netx(_write(tmp_path / "delayed.net", layers))


@pytest.mark.lava
def test_recurrent_netx_file_equals_lava_dls_own_loader(tmp_path):
    """lava-dl's ``netx.hdf5.Network`` builds the file in Lava (its RecurrentDense block) with its defaults (no
    reset: every layer steps from Lava's first time step); the recurrent layer's bias makes it fire while the
    pipeline fills, and lava-dl feeds those spikes back into step 0, as the pipeline-fill graph does. Every layer's
    spikes equal the simulator's over 12 steps, two samples, in lava-dl's network and in the Lava builder's."""
    import dataclasses

    from snn_deploy.sims.backends import lava_build
    from snn_deploy.exporters.frontends.netx import read_netx
    from snn_deploy.sims.backends.netx_lava import run_netx
    from snn_deploy.graph import input_sequence
    from test_netx_import import _write

    layers = recurrent_netx_layers()
    layers[1]["bias"] = np.full(12, 120)  # fires on its bias alone during the fill
    path = _write(tmp_path / "rec.net", layers)
    graph = read_netx(path, steps=12)
    assert graph.pipeline_fill and not graph.reset_interval
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (12, 2, 16, 1, 1))).double()
    payload = input_sequence(graph, x).numpy()
    expected = simulate(graph, x).spikes
    assert int(expected["fc-0"].sum()) > 0 and int(expected["fc-1"].sum()) > 0
    for got in (run_netx(path, graph, payload), lava_build.run(graph, payload).spikes):
        for name, spikes in got.items():
            assert torch.equal(spikes.to(torch.uint8), expected[name].to(torch.uint8)), name
    without = dataclasses.replace(graph, nodes=[n for n in graph.nodes
                                                if not (isinstance(n, ConvNode) and n.recurrent)])
    assert not torch.equal(simulate(without, x).spikes["fc-0"], expected["fc-0"])  # the feedback mattered
    fill = dataclasses.replace(graph, nodes=[n for n in graph.nodes if n.name != "fc-0.recurrent"] + [
        dataclasses.replace(graph["fc-0.recurrent"], weight=np.zeros_like(graph["fc-0.recurrent"].weight))])
    first = simulate(fill, x).spikes["fc-0"][0]  # step 0 without feedback: the fill spikes' feedback mattered too
    assert not torch.equal(first, expected["fc-0"][0])


@needs("snntorch")
def test_reference_executor_runs_recurrent_files():
    """``nir_executor`` (NIR's floats, plain PyTorch) gives a recurrent edge the step before's value (at step 0 the
    loop's value for silent neurons: snnTorch's ``recurrent(0)`` is its bias): equal to snnTorch on its own file, and
    to the simulator on the bundle's file with PyTorch's and snnTorch's neurons."""
    from snn_deploy.exporters.nir.executor import Executor

    x = binary_inputs(64)
    _, run, ir = snntorch_recurrent(loop_bias=6 / 64)
    source, result = run(x, STEPS), Executor(ir, dt=1e-4).run(x, STEPS)
    for name, ref in zip(("1", "3.lif"), source):
        assert torch.equal(result.spikes[name].reshape(ref.shape), ref.bool()), name
    graph, _ = nir_import.to_graph(snntorch_recurrent()[2], steps=STEPS)
    expected = simulate(graph, x[:, :, None, None]).spikes
    for neurons in ("torch", "snntorch"):
        got = Executor(nir_io.to_nir(graph), neurons=neurons).run(x[:, :, None, None], STEPS).spikes
        for name, value in expected.items():
            assert torch.equal(got[name].reshape(value.shape), value.bool()), (neurons, name)


@needs("snntorch")
def test_snntorch_rsynaptic_imports_with_its_current_decay():
    """``RSynaptic`` is a ``CubaLIF`` loop: the recurrent synapse feeds the current like any input (snnTorch adds
    ``recurrent(spk)`` to ``syn``). Not compared spike for spike: snnTorch 1.0.0's ``RSynaptic(reset_delay=False)``
    raises "TypeError: unsupported operand type(s) for /: 'NoneType' and 'Tensor'" on its first step, and its
    delayed reset also drops the next step's input, which Loihi does not."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(16, 6), snn.RSynaptic(
        alpha=torch.full((6,), 0.5), beta=torch.full((6,), 0.75), threshold=torch.ones(6), linear_features=6,
        init_hidden=True, reset_mechanism="zero", output=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir = export_to_nir(net, torch.zeros(1, 16), ignore_dims=[0])
    assert isinstance(ir.nodes["1.lif"], nir.CubaLIF)
    graph, _ = nir_import.to_graph(ir, steps=STEPS)
    lif = graph["1.lif"]
    assert (lif.du, lif.dv) == (2047, 1024)
    assert [c.name for c in graph.recurrent_synapses("1.lif")] == ["1.lif.recurrent"]
