"""Whole exported files run by a standard NIR reading: the reference executor against ``snn-deploy simulate``.

The executor (``snn_deploy.exporters.nir.executor``) reads only NIR's float parameters and the documented
``snn_deploy.spike_product`` extension, never the integers that ``nir_io.read`` deploys from; the simulator is the
integer reference (itself checked against Lava's bit-accurate models elsewhere). Models: the demo-size
``qkformer-tiny-8x8`` (the demo's architecture) and ``spikformer-tiny-8x8`` with every layer active
(``export_testing.quantized``), over the whole digits test set (355 images, inputs on the 8-bit payload grid).
Their neurons are computed four ways: plain PyTorch (forward Euler, float32), and snnTorch's, Norse's and
SpikingJelly's own NIR node maps (each skipped where the framework is not installed). Trained demo models are
measured by ``benchmarks/nir_consumers.py`` (docs/nir_mapping.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io

import nir
import numpy as np
import pytest
import torch

from export_testing import quantized
from snn_deploy.errors import UserError
from snn_deploy.data.digits import raw_digits, resample, split_indices
from snn_deploy.exporters.nir import executor as nir_executor
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.graph import LIFNode, SpikeProductNode
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.sims.backends.simulator import simulate

MODELS = ("qkformer-tiny-8x8", "spikformer-tiny-8x8")
TEST_IMAGES = 355


def digits_test() -> torch.Tensor:
    images, labels = raw_digits()
    x = resample(images[split_indices(labels)[1]], 8)
    assert len(x) == TEST_IMAGES
    return x


@pytest.fixture(scope="module", params=MODELS)
def exported(request, tmp_path_factory):
    """(graph, NIR file read back with nir.read, simulator result on the digits test set)."""
    graph = lower(quantized(request.param))
    path = tmp_path_factory.mktemp("nir") / f"{request.param}.nir"
    nir_io.write(graph, path)
    x = digits_test()
    return graph, nir.read(str(path)), x, simulate(graph, x)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("neurons", [
    "torch",
    pytest.param("snntorch", marks=pytest.mark.skipif(not _available("snntorch"), reason="snnTorch not installed")),
    pytest.param("norse", marks=pytest.mark.skipif(not _available("norse"), reason="Norse not installed")),
    pytest.param("spikingjelly", marks=pytest.mark.skipif(not _available("spikingjelly"),
                                                          reason="SpikingJelly not installed")),
])
def test_whole_file_agrees_with_the_simulator_on_every_digit(exported, neurons):
    graph, ir, x, reference = exported
    assert graph.of_kind(SpikeProductNode), "the file must use the extension for the test to mean anything"
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch's node map prints warnings
        result = nir_executor.Executor(ir, neurons=neurons).run(nir_executor.payload_grid(ir, x))
    agree = int((result.predictions == reference.predictions).sum())
    flipped = {name: int((reference.spikes[name].bool() != result.spikes[name]).sum()) for name in reference.spikes}
    rates = {n.name: float(reference.spikes[n.name].float().mean()) for n in graph.of_kind(LIFNode)}
    silent = [name for name, rate in rates.items() if rate == 0]
    print(f"\n{neurons}: predictions {agree}/{len(x)}, spikes differing {sum(flipped.values())} of "
          f"{sum(s.numel() for s in reference.spikes.values())} entries")
    assert len(silent) <= len(rates) // 10 and np.mean(list(rates.values())) > 0.02, silent  # not vacuous
    assert agree == len(x)
    assert sum(flipped.values()) == 0, {k: v for k, v in flipped.items() if v}
    np.testing.assert_allclose(result.logits.double(), reference.logits, atol=1e-6)


def test_thresholds_at_the_integer_threshold_do_not_reproduce_the_spikes(exported, monkeypatch):
    """Why the margin: with v_threshold at vth 2^6 exactly, float rounding decides the many ties."""
    graph, _, x, reference = exported
    monkeypatch.setattr(nir_io, "THRESHOLD_MARGIN", 0.0)
    ir = nir_io.to_nir(graph)
    result = nir_executor.Executor(ir).run(nir_executor.payload_grid(ir, x))
    assert sum(int((reference.spikes[k].bool() != result.spikes[k]).sum()) for k in reference.spikes) > 0


def test_time_constants_and_thresholds_are_float64_with_the_margin(exported):
    graph, ir, _, _ = exported
    for node in graph.of_kind(LIFNode):
        lif = ir.nodes[node.name]
        for field in ("tau_syn", "tau_mem", "r", "v_threshold", "v_reset", "w_in"):
            assert getattr(lif, field).dtype == np.float64, field
        assert lif.tau_syn.min() >= nir_io.DT  # SpikingJelly rejects tau < dt; float32 made 1e-4 smaller
        scale = nir_io.float_scale(node.vth)
        np.testing.assert_allclose(lif.v_threshold * scale, 64 * node.vth + nir_io.THRESHOLD_MARGIN, rtol=1e-15)


@pytest.mark.skipif(not _available("spikingjelly"), reason="SpikingJelly not installed")
def test_spikingjelly_takes_the_float64_time_constants_and_refused_float32(exported):
    """SpikingJelly requires tau >= dt: 1e-4 as float32 is 9.99999974e-05."""
    from spikingjelly.activation_based.nir_exchange.from_nir import _NodeMapper

    graph, ir, _, _ = exported
    lif = ir.nodes[graph.of_kind(LIFNode)[0].name]
    _NodeMapper(dt=nir_io.DT).map_cuba_lif(lif)
    as_float32 = nir.CubaLIF(**{f: getattr(lif, f).astype(np.float32) for f in
                                ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")})
    with pytest.raises(ValueError, match="at least dt"):
        _NodeMapper(dt=nir_io.DT).map_cuba_lif(as_float32)


def test_spike_product_scale_is_the_multiplier_over_the_consumer_threshold(exported):
    graph, ir, _, _ = exported
    for node in graph.of_kind(SpikeProductNode):
        (consumer,) = [n for n in graph.of_kind(LIFNode) if node.name in n.inputs]
        meta = ir.nodes[node.name].metadata["snn_deploy"]
        assert float(meta["float_scale"]) == node.multiplier / max(consumer.vth, 1)
        assert nir_executor.is_spike_product(ir.nodes[node.name])


def _graph(nodes: dict, edges: list, **meta) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"snn_deploy": meta} if meta else {})


def _lif(n: int = 2) -> nir.CubaLIF:
    one = np.ones(n)
    return nir.CubaLIF(tau_syn=one * 1e-4, tau_mem=one * 2e-4, r=one * 2, v_leak=one * 0, v_threshold=one)


def test_unsupported_nodes_are_listed():
    ir = _graph({"input": nir.Input(np.array([2])), "li": nir.LI(np.ones(2), np.ones(2), np.zeros(2)),
                 "delay": nir.Delay(np.ones(2)), "output": nir.Output(np.array([2]))},
                [("input", "li"), ("li", "delay"), ("delay", "output")])
    with pytest.raises(UserError, match=r"li \(LI\).*delay \(Delay\)"):
        nir_executor.Executor(ir)


def test_recurrent_edges_and_unknown_extensions_are_refused():
    nodes = {"input": nir.Input(np.array([2])), "lif": _lif(), "output": nir.Output(np.array([2]))}
    with pytest.raises(UserError, match="recurrent edges through"):
        nir_executor.Executor(_graph(nodes, [("input", "lif"), ("lif", "lif"), ("lif", "output")]))
    with pytest.raises(UserError, match="requires extensions"):
        nir_executor.Executor(_graph(nodes, [("input", "lif"), ("lif", "output")], required_extensions=["x.y"]))


def test_cuba_lif_follows_the_nir_equations():
    """Forward Euler by hand: tau_syn = dt (no current memory), tau_mem = 2 dt (v halves), threshold 1, reset 0."""
    ir = _graph({"input": nir.Input(np.array([2])), "lif": _lif(), "output": nir.Output(np.array([2]))},
                [("input", "lif"), ("lif", "output")], dt=1e-4, T=3)
    x = torch.tensor([[[0.6, 1.5]], [[0.6, 0.0]], [[0.6, 0.2]]], dtype=torch.float32)  # [T, B, 2]
    spikes = nir_executor.Executor(ir, dtype=torch.float64).run(x).spikes["lif"][:, 0]
    # v: 0.6 -> 0.9 -> 1.05 (spike);  1.5 (spike) -> 0 -> 0.2
    assert spikes.tolist() == [[False, True], [False, False], [True, False]]
    ir.nodes["lif"] = nir.IF(r=np.full(2, 1e4), v_threshold=np.ones(2))  # dv/dt = r I: v += dt r x = x
    spikes = nir_executor.Executor(ir, dtype=torch.float64).run(x).spikes["lif"][:, 0]
    # v: 0.6 -> 1.2 (spike) -> 0.6;  1.5 (spike) -> 0 -> 0.2
    assert spikes.tolist() == [[False, True], [True, False], [False, False]]


def test_damaged_files_and_misshapen_inputs_are_one_error(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not an HDF5 file")
    with pytest.raises(UserError, match="not a readable NIR file"):
        nir_executor.run_file(bad, torch.zeros(1, 2))
    ir = _graph({"input": nir.Input(np.array([2])), "lif": _lif(), "output": nir.Output(np.array([2]))},
                [("input", "lif"), ("lif", "output")])
    with pytest.raises(UserError, match="do not fit the graph's 1-dimensional input"):
        nir_executor.Executor(ir).run(torch.zeros(4, 1, 1, 2))
