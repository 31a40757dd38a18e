"""Registers checked at run time (issue 22, item 4): the simulator counts every value beyond a LIF register's width
(synaptic input against the profile's 16 bits, u and v against 24 bits) in its one pass, does there what Lava's
fixed-point LIF does, and ``simulate`` lists them (exit 1, ``--allow-violations``).

The reference for "what Lava does" is Lava's own ``PyLifModelBitAcc.subthr_dynamics`` (lava/proc/lif/models.py),
called step by step on the same synaptic input: u wraps to 24-bit two's complement, v saturates at +-(2^23 - 1), a_in
is added as sent (its 16-bit declaration is not enforced)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.sims.backends.simulator import simulate

WEIGHTS = [254, -254, 100, 1, -10]
"""Per neuron: a strong excitatory (u wraps at once), a strong inhibitory (v saturates low), a medium one (over 16
bits, no wrap), one in range, a weak inhibitory one."""


def _graph(du: int, dv: int, steps: int = 12) -> Graph:
    n = len(WEIGHTS)
    return Graph([InputNode("in", (), (1, 1, 1), scale=1.0),
                  ConvNode("syn", ("in",), (n, 1, 1), weight=np.array(WEIGHTS).reshape(n, 1, 1, 1), weight_exp=3,
                           graded=True),
                  LIFNode("lif", ("syn",), (n, 1, 1), du=du, dv=dv, vth=100000, bias_mant=np.zeros(n, dtype=np.int64),
                          bias_exp=np.zeros(n, dtype=np.int64)),
                  ReadoutNode("out", ("lif",), (n, 1, 1), weight=np.eye(n), bias=np.zeros(n))], T=steps)


def _trunc_decay(x: np.ndarray, factor: int) -> np.ndarray:
    product = x.astype(np.int64) * factor
    return np.sign(product) * (np.abs(product) >> 12)


def _lava_reference(a_in: np.ndarray, du: int, dv: int, vth: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """u, v after every step from Lava's own subthreshold dynamics, and the values it wrapped or clipped."""
    from lava.proc.lif.models import PyLifModelBitAcc

    model = types.SimpleNamespace(du=du, dv=dv, ds_offset=1, dm_offset=0, decay_shift=12, decay_unity=4096,
                                  act_shift=6, max_uv_val=2 ** 23, effective_bias=np.zeros(a_in.shape[1], np.int32),
                                  u=np.zeros(a_in.shape[1], np.int32), v=np.zeros(a_in.shape[1], np.int32))
    us, vs = [], []
    wrapped = clipped = 0
    for a in a_in:
        decayed_u, decayed_v = _trunc_decay(model.u, 4096 - du - 1), _trunc_decay(model.v, 4096 - dv)
        PyLifModelBitAcc.subthr_dynamics(model, a.astype(np.int32))
        wrapped += int(np.sum(model.u != decayed_u + (a.astype(np.int64) << 6)))
        clipped += int(np.sum(model.v != decayed_v + model.u))
        model.v[model.v > vth << 6] = 0  # the spike's reset (Lava's reset_voltage)
        us.append(model.u.copy())
        vs.append(model.v.copy())
    return np.array(us), np.array(vs), {"current": wrapped, "voltage": clipped}


@pytest.mark.parametrize("du,dv", [(4095, 0), (3000, 100)])
def test_overflows_are_counted_as_lava_wraps_and_saturates_them(du, dv):
    graph = _graph(du, dv)
    x = torch.full((1, 1, 1, 1), 255.0)
    result = simulate(graph, x, traces={"lif"})
    a_in = np.tile(np.array(WEIGHTS) * 255 << 3, (graph.T, 1))
    us, vs, lava = _lava_reference(a_in, du, dv, 100000)
    trace = result.traces["lif"]
    np.testing.assert_array_equal(trace.u[:, 0].reshape(graph.T, -1).numpy(), us)
    np.testing.assert_array_equal(trace.v[:, 0].reshape(graph.T, -1).numpy(), vs)
    found = {register: o.count for (layer, register), o in result.registers.items()}
    assert found["synaptic input"] == int((np.abs(a_in) > (1 << 15) - 1).sum()) == 3 * graph.T
    assert result.registers[("lif", "synaptic input")].worst == 254 * 255 * 8
    assert found.get("current", 0) == lava["current"] > 0
    assert found.get("voltage", 0) == lava["voltage"] > 0


def test_a_network_in_range_counts_nothing():
    graph = _graph(4095, 0, steps=4)
    result = simulate(graph, torch.full((1, 1, 1, 1), 1.0))
    assert result.registers == {}


def test_simulate_lists_register_overflows_and_exits_1(tmp_path):
    import json

    from export_testing import run_cli
    from snn_deploy.exporters.formats.bundle import write_bundle
    from snn_deploy.graph import profile

    write_bundle(_graph(3000, 100), tmp_path / "b", target=profile("loihi2"), quantization={"schema_version": 1},
                 extra={"arch": None})
    np.save(tmp_path / "x.npy", np.full((1, 1, 1), 255.0, dtype=np.float32))
    code, output = run_cli("simulate", tmp_path / "b", "--input", tmp_path / "x.npy", "--json", tmp_path / "r.json")
    assert code == 1, output
    assert "register overflow(s) of loihi2: lif synaptic input: 36 value(s) beyond the 16-bit a_in" in output
    assert "worst 518,160" in output and "exit 1; --allow-violations exits 0" in output
    report = json.loads((tmp_path / "r.json").read_text())
    registers = {r["register"]: r for r in report["registers"]}
    assert set(registers) == {"synaptic input", "current", "voltage"} and registers["current"]["bits"] == 24
    code, output = run_cli("simulate", tmp_path / "b", "--input", tmp_path / "x.npy", "--allow-violations")
    assert code == 0 and "register overflows (simulated)" in output, output


def test_recurrent_currents_count_in_the_synaptic_input():
    """The neuron's one input port sums its feed-forward and recurrent currents: 20,000 + 25,600 leaves the 16-bit
    register at every step after a spike, though neither part alone does."""
    one = np.zeros(1, dtype=np.int64)
    graph = Graph([InputNode("in", (), (1, 1, 1), scale=1.0),
                   ConvNode("ff", ("in",), (1, 1, 1), weight=np.full((1, 1, 1, 1), 100), graded=True),
                   LIFNode("lif", ("ff",), (1, 1, 1), du=4095, dv=0, vth=1000, bias_mant=one, bias_exp=one),
                   ConvNode("rec", ("lif",), (1, 1, 1), weight=np.full((1, 1, 1, 1), 100), weight_exp=8,
                            recurrent=True),
                   ReadoutNode("out", ("lif",), (1, 1, 1), weight=np.eye(1), bias=np.zeros(1))], T=6)
    result = simulate(graph, torch.full((1, 1, 1, 1), 200.0), record={"lif"})
    spikes = result.spikes["lif"].flatten().numpy().astype(np.int64)
    a_in = 20000 + 25600 * np.concatenate([[0], spikes[:-1]])
    found = result.registers[("lif", "synaptic input")]
    assert found.count == int((a_in > (1 << 15) - 1).sum()) == graph.T - 1
    assert found.worst == 45600 and set(result.registers) == {("lif", "synaptic input")}
