"""NIR's linear node meanings are stated once (exporters/nir/ops.py) and both the importer and the reference
executor use that statement."""

from __future__ import annotations

import nir
import numpy as np
import torch

from snn_deploy.exporters.nir import executor, importer, ops


def test_one_list_of_linear_nodes():
    assert executor.LINEAR is ops.LINEAR
    assert set(importer.LINEAR) == {*ops.LINEAR, nir.Delay}


def _run(node, x):
    return ops.apply(node, ops.prepare(node, lambda v: torch.as_tensor(np.asarray(v), dtype=torch.float64)), x)


def test_meanings_against_hand_computed_values():
    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    pooled = _run(nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])), x)
    assert pooled.flatten().tolist() == [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]
    averaged = _run(nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])), x)
    assert torch.equal(averaged, pooled / 4)
    affine = nir.Affine(np.array([[1.0, 2.0]]), np.array([0.5]))
    v = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert _run(affine, v).item() == 11.5
    p = ops.prepare(affine, lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64))
    assert ops.apply(affine, p, v, bias=False).item() == 11.0
    assert _run(nir.Flatten(np.array([1, 4, 4]), 0, -1), x).shape == (1, 16)
    conv = nir.Conv1d(None, np.ones((1, 1, 3)), 1, "same", 1, 1, np.zeros(1))
    assert _run(conv, torch.ones(1, 1, 5, dtype=torch.float64)).flatten().tolist() == [2, 3, 3, 3, 2]
