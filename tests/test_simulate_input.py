"""``simulate --input`` names the predicted class and the output spike counts of a network with a readout (issue
22, item 6); checked against the simulator's own logits for that sample."""

from __future__ import annotations

import nir
import numpy as np
import torch

from export_testing import run_cli
from snn_deploy.exporters.nir import importer as nir_import
from snn_deploy.sims.backends.simulator import simulate


def test_simulate_input_prints_the_class_and_the_output_spike_counts(tmp_path):
    rng = np.random.default_rng(3)
    shape = (4,)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=rng.uniform(0, 0.1, (4, 64)) * np.arange(1, 5)[:, None], bias=np.zeros(4)),
             "lif": nir.LIF(tau=np.full(shape, 8e-4), r=np.ones(shape), v_leak=np.zeros(shape),
                            v_threshold=np.ones(shape), v_reset=np.zeros(shape)),
             "output": nir.Output(output_type={"output": np.array(shape)})}
    order = list(nodes)
    ir = nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])))
    nir.write(str(tmp_path / "net.nir"), ir)
    x = rng.uniform(0, 1, (1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, output = run_cli("export", tmp_path / "net.nir", "--target", "loihi", "-o", tmp_path / "b")
    assert code == 0, output
    code, output = run_cli("simulate", tmp_path / "b", "--input", tmp_path / "x.npy", "--allow-violations")
    assert code == 0, output
    graph, _ = nir_import.to_graph(ir)
    result = simulate(graph, torch.from_numpy(x)[None])
    counts = result.spikes["lif"][:, 0].sum(0).flatten().tolist()
    assert sum(counts) > 0 and len(set(counts)) > 1
    lines = {line.split()[0] + " " + line.split()[1]: line for line in output.splitlines() if line.startswith("  ")}
    assert lines["predicted class"].split()[2] == str(int(result.logits[0].argmax()))
    assert lines["output spike"].split()[3:3 + len(counts)] == [str(c) for c in counts]
