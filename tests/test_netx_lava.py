"""The features netx networks bring, against Lava's own processes: refractory period (LIFRefractory), periodic
reset (LIFReset), and whole netx files run by lava-dl's loader (the ``netx`` backend) against the simulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy import lavaref
from snn_deploy.graph import LIFNode
from snn_deploy.exporters.formats.netx import to_netx
from snn_deploy.exporters.frontends.netx import read_netx
from snn_deploy.sims.backends.netx_lava import run_netx
from snn_deploy.fixedpoint import lif_run
from snn_deploy.sims.backends.simulator import input_sequence, simulate
from test_netx_export import conv_chain, dense_chain
from test_netx_import import PILOTNET, needs_pilotnet

pytestmark = pytest.mark.lava


@st.composite
def refractory_cases(draw):
    steps, n = draw(st.integers(2, 14)), draw(st.integers(1, 4))
    a_in = np.asarray(draw(st.lists(st.integers(-30, 120), min_size=steps * n, max_size=steps * n)))
    return dict(a_in=a_in.reshape(steps, n), du=draw(st.sampled_from([-1, 4095])), vth=draw(st.integers(0, 300)),
                bias=np.asarray(draw(st.lists(st.integers(-200, 200), min_size=n, max_size=n))),
                period=draw(st.integers(1, 5)))


@settings(max_examples=12, deadline=None)
@given(refractory_cases())
def test_refractory_period_matches_lavas_lif_refractory(case):
    """Lava's LIFRefractory has only a float model: with du in {-1, 4095} (float 0 / 1), no voltage leak and
    integer inputs it computes integers exactly, inputs and threshold aligned by 2^6 as the fixed point does."""
    ours = lif_run(case["a_in"], du=case["du"], dv=0, vth=case["vth"], bias_mant=case["bias"], bias_exp=0,
                   refractory=case["period"])
    lava = lavaref.run_lif_refractory(case["a_in"] * 64, du=0.0 if case["du"] == -1 else 1.0,
                                      vth=float(case["vth"] * 64), bias_mant=case["bias"],
                                      refractory_period=case["period"])
    for name, mine, theirs in zip(("spikes", "u", "v"), ours, lava):
        np.testing.assert_array_equal(mine, theirs, err_msg=f"{name} differs from Lava's LIFRefractory")


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 5), st.integers(0, 4095), st.integers(0, 4095), st.integers(5, 100))
def test_reset_interval_matches_lavas_lif_reset(interval, du, dv, vth):
    a_in = np.random.default_rng(interval + du).integers(-50, 400, (13, 3))
    ours = lif_run(a_in, du=du, dv=dv, vth=vth, bias_mant=np.array([0, 20, -7]), bias_exp=6,
                   reset_interval=interval)
    lava = lavaref.run_lif(a_in, du=du, dv=dv, vth=vth, bias_mant=np.array([0, 20, -7]), bias_exp=6,
                           reset_interval=interval)
    for name, mine, theirs in zip(("spikes", "u", "v"), ours, lava):
        np.testing.assert_array_equal(mine, theirs, err_msg=f"{name} differs from Lava's LIFReset")


@pytest.mark.parametrize("make", [conv_chain, dense_chain])
def test_netx_backend_equals_simulator_on_exported_networks(make, tmp_path):
    """A network written by `export --target netx`, imported back and run by lava-dl's own loader in Lava."""
    rng = np.random.default_rng(1)
    original = make(rng)
    path = tmp_path / "net.net"
    to_netx(original, path)
    graph = read_netx(path)
    x = torch.from_numpy(rng.uniform(-1, 1, (original.T, 2, *original.input.shape)))
    payload = input_sequence(original, x).numpy()
    expected = simulate(graph, torch.from_numpy(payload.astype(np.float64))).spikes
    got = run_netx(path, graph, payload)
    assert list(got) == [n.name for n in graph.of_kind(LIFNode)]
    for name, spikes in got.items():
        assert int((spikes != expected[name]).sum()) == 0, name
    assert sum(int(s.sum()) for s in got.values()) > 0


@needs_pilotnet
def test_netx_backend_equals_simulator_on_pilotnet_few_steps():
    """Lava runs 2 + 9 (pipeline) steps of Intel's network built by lava-dl itself (about a minute)."""
    graph = read_netx(PILOTNET / "network.net")
    image = np.load(PILOTNET / "image.npy").transpose(2, 1, 0).astype(np.float64)
    x = torch.from_numpy(image)[None, None].expand(2, 1, *image.shape)
    got = run_netx(PILOTNET / "network.net", graph, input_sequence(graph, x).numpy())
    expected = simulate(graph, x).spikes
    for name in ("input", "conv-0", "conv-1", "conv-4", "fc-2"):
        assert int((got[name] != expected[name]).sum()) == 0, name
    assert int(got["conv-0"].sum()) > 0


def test_verify_cli_runs_the_netx_backend_from_the_registry(tmp_path):
    """`snn-deploy verify NET.net --backends sim,netx --input x.npy`: the registry's netx backend, spike for
    spike, exit 0; the same backend on a model file's graph is refused in one line."""
    import json

    from click.testing import CliRunner

    from snn_deploy.cli import cli
    from snn_deploy.errors import UserError
    from snn_deploy.sims.backends import registry as backends

    rng = np.random.default_rng(2)
    original = conv_chain(rng)
    path = tmp_path / "net.net"
    to_netx(original, path)
    x = input_sequence(original, torch.from_numpy(rng.uniform(0, 1, (original.T, 1, *original.input.shape))))
    np.save(tmp_path / "x.npy", x[:, 0].numpy())  # [T, C, H, W]: one map per step
    result = CliRunner().invoke(cli, ["verify", str(path), "--backends", "sim,netx", "--input", str(tmp_path / "x.npy"),
                                      "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["exact"] and all(layer["mismatches"]["netx"] == 0 for layer in report["layers"])
    with pytest.raises(UserError, match="netx file"):
        backends.get("netx").run(read_netx(path), x.to(torch.float64), None)


def test_dense_delays_match_lavas_delay_dense(tmp_path):
    """A dense layer with per-synapse delays: lava-dl builds Lava's DelayDense; the simulator's delays agree."""
    from test_netx_import import _small_net, _write

    rng = np.random.default_rng(5)
    layers = _small_net()
    layers[1]["weight"] = rng.integers(-3, 8, (3, 2, 3, 3)).astype(float)
    layers[3]["delay"] = rng.integers(0, 4, (5, 12))
    path = _write(tmp_path / "delays.net", layers)
    graph = read_netx(path, steps=10)
    assert graph["fc-0.synapse"].delay.size
    x = torch.from_numpy((rng.uniform(0, 1, (10, 2, 2, 4, 4)) < 0.6).astype(np.float64))
    expected = simulate(graph, x).spikes
    got = run_netx(path, graph, input_sequence(graph, x).numpy())
    for name, spikes in got.items():
        assert int((spikes != expected[name]).sum()) == 0, name
    assert got["fc-0"].sum() > 0
