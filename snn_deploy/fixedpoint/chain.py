"""A feed-forward chain of Dense -> LIF layers: the smallest complete Loihi network.

It is what ``snn-deploy doctor`` self-checks and the foundation demo runs in both Lava
(:func:`snn_deploy.lavaref.run_dense_lif_chain`) and here, so the two can be compared spike for spike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_deploy.fixedpoint.lif import LIFParams, lif_run
from snn_deploy.fixedpoint.synapse import dense_run


@dataclass(frozen=True)
class DenseLIFLayer:
    """Integer weights [n_out, n_in] with their exponent, whether inputs are graded, and the LIF population."""

    weights: np.ndarray
    weight_exp: int
    graded: bool
    lif: LIFParams

    @property
    def size(self) -> int:
        return int(self.weights.shape[0])


def run_dense_lif_chain(x: np.ndarray, layers: list[DenseLIFLayer]) -> list[np.ndarray]:
    """Run inputs [T, n_in] through the chain; returns every layer's spikes [T, n_out] (each Dense adds a step)."""
    outputs, s = [], np.asarray(x)
    for layer in layers:
        a = dense_run(s, layer.weights, weight_exp=layer.weight_exp, graded=layer.graded)
        p = layer.lif
        s, _, _ = lif_run(a, du=p.du, dv=p.dv, vth=p.vth, bias_mant=p.bias_mant, bias_exp=p.bias_exp)
        outputs.append(s)
    return outputs


def random_chain(sizes: list[int], seed: int, graded_input: bool = True) -> list[DenseLIFLayer]:
    """A reproducible random chain with mixed-sign 8-bit weights and varied LIF parameters (for self-checks)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lif = LIFParams(du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)), vth=int(rng.integers(10, 200)),
                        bias_mant=rng.integers(-200, 200, n_out), bias_exp=int(rng.integers(0, 4)))
        layers.append(DenseLIFLayer(weights=rng.integers(-256, 256, (n_out, n_in)), weight_exp=int(rng.integers(-1, 3)),
                                    graded=graded_input and i == 0, lif=lif))
    return layers
