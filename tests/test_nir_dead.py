"""No silent dead networks (issue 22, item 5): an import whose quantization zeroes a whole layer's weights or its
bias is refused with one ``error:`` line that says which parameter, why (the step ``--dt``) and what to pass; a layer
that never spikes on the calibration data is named in the export's summary."""

from __future__ import annotations

import importlib.util

import nir
import numpy as np
import pytest
import torch

import framework_nets as fn
from export_testing import error_line, run_cli


@pytest.mark.skipif(importlib.util.find_spec("sinabs") is None, reason="sinabs is not installed")
def test_a_sinabs_file_at_the_default_dt_is_refused_by_name(tmp_path):
    """Sinabs integrates ``v += I`` (``IF`` with r = 1): at the default dt = 1e-4 s every weight is 1e-4 of what
    it should be and rounds to 0. That used to succeed (exit 0) and never spike."""
    net = fn.build("sinabs-iaf", fn.digits("train", 64))
    path = tmp_path / "sinabs.nir"
    nir.write(str(path), net.ir)
    code, output = run_cli("export", path, "--target", "loihi", "-o", tmp_path / "b")
    line = error_line(output)
    assert code == 2 and not (tmp_path / "b").exists()
    assert "rounds all 72 weights to 0" in line and "dt = 0.0001" in line and "--dt 1" in line, line
    code, output = run_cli("export", path, "--target", "loihi", "--dt", "1", "-o", tmp_path / "b")
    assert code == 0, output


def _lif_net(weight: float, dt: float = 1e-4) -> nir.NIRGraph:
    """8x8 digits -> Flatten -> Affine 64 -> 4 (all weights ``weight``) -> LIF (tau = 8 dt) -> Output."""
    shape = (4,)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=np.full((4, 64), weight), bias=np.zeros(4)),
             "lif": nir.LIF(tau=np.full(shape, 8 * dt), r=np.ones(shape), v_leak=np.zeros(shape),
                            v_threshold=np.ones(shape), v_reset=np.zeros(shape)),
             "output": nir.Output(output_type={"output": np.array(shape)})}
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])))


def test_a_layer_silent_on_the_calibration_data_is_named(tmp_path):
    path = tmp_path / "silent.nir"
    nir.write(str(path), _lif_net(-0.5))  # inhibitory weights on non-negative pixels: never a spike
    code, output = run_cli("export", path, "--target", "loihi", "--calibrate", "digits", "-o", tmp_path / "b")
    assert code == 0, output
    assert "never spikes on the 256 calibration samples: lif" in output
    nir.write(str(path), _lif_net(0.5))
    code, output = run_cli("export", path, "--target", "loihi", "--calibrate", "digits", "-o", tmp_path / "c")
    assert code == 0 and "never spikes" not in output, output


def test_a_zoo_layer_whose_weights_all_round_to_zero_is_refused():
    """The zoo's quantizer names the layer too (here the first conv, its weights scaled to nothing)."""
    import snn_deploy.models as zoo
    from snn_deploy.errors import UserError
    from snn_deploy.quant import quantize

    model = zoo.create("spikformer-tiny", mode="loihi").eval()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.mul_(1e-12)
    with pytest.raises(UserError, match="rounds all .* weights to 0"):
        quantize(model)
