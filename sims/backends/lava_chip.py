"""Which Lava processes a Loihi 2 chip can load, and the check that a built network uses only those.

Lava's archived Loihi 2 documentation lists the processes with neurocore (or host I/O) implementations that
``Loihi2HwCfg`` compiles: LIF neurons (``LIF``, ``LIFReset``, ``LIFRefractory``), sigma-delta neurons
(``SigmaDelta``, ``Sigma``, ``Delta``, ``ActivationDelta``), the graded vector neurons (``GradedVec``,
``GradedReluVec``, ``ProdNeuron``),
the synapses ``Dense``, ``Sparse``, ``Conv`` and their delayed forms ``DelayDense`` / ``DelaySparse``, and the
host I/O of ``lava.proc.io`` that the host side of a chip run uses (``RingBuffer`` sources, ``Extractor`` /
``Injector`` adapters). A custom process with only a CPU model would run on the host under ``Loihi2HwCfg`` or fail
to compile: :func:`non_chip_types` names any such class in a built network, :func:`check_chip` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.graph import ConvNode, Graph, InputNode, LIFNode, ReadoutNode, SpikeProductNode, SumNode

NEUROCORE = ("LIF", "LIFReset", "LIFRefractory", "SigmaDelta", "Sigma", "Delta", "ActivationDelta", "GradedVec",
             "GradedReluVec", "ProdNeuron", "Dense", "Sparse", "Conv", "DelayDense", "DelaySparse")
"""Process classes (``lava.proc``) with Loihi 2 neurocore implementations."""
HOST_IO = ("RingBuffer", "Extractor", "Injector")
"""``lava.proc.io`` processes: the host side of a chip run (spikes in, spikes out)."""
CHIP_TYPES = NEUROCORE + HOST_IO


def process_types(processes: Iterable[object]) -> list[str]:
    """Sorted distinct class names of ``processes``."""
    return sorted({type(p).__name__ for p in processes})


def non_chip_types(processes: Iterable[object]) -> list[str]:
    """Class names among ``processes`` that a Loihi 2 chip cannot load (not in :data:`CHIP_TYPES`, or not Lava's
    own class of that name)."""
    return [name for name, cls in sorted({type(p).__name__: type(p) for p in processes}.items())
            if name not in CHIP_TYPES or not cls.__module__.startswith("lava.proc.")]


def check_chip(processes: Iterable[object]) -> None:
    """Raise a :class:`UserError` naming every process class a Loihi 2 chip cannot load."""
    bad = non_chip_types(processes)
    if bad:
        raise UserError(f"the Lava network uses {', '.join(bad)}, which a Loihi 2 chip cannot load (chip processes: "
                        f"{', '.join(CHIP_TYPES)})")


def probe_graph(steps: int = 4) -> Graph:
    """A small graph with every node kind the builder lowers (graded input conv, LIFs, a residual sum over paths of
    different depths, a spike product): what ``doctor`` builds to list the process classes."""
    rng = np.random.default_rng(0)
    shape = (4, 3, 3)

    def conv(name: str, source: str, graded: bool = False) -> ConvNode:
        c_in = 2 if source == "input" else 4
        return ConvNode(name, (source,), shape, weight=rng.integers(-3, 6, (4, c_in, 1, 1)), graded=graded)

    def lif(name: str, source: str) -> LIFNode:
        return LIFNode(name, (source,), shape, vth=2, bias_mant=np.zeros(4, dtype=np.int64),
                       bias_exp=np.zeros(4, dtype=np.int64))

    nodes = [InputNode("input", (), (2, 3, 3)), conv("c0", "input", True), lif("l0", "c0")]
    for name in "qkv":
        nodes += [conv(f"c{name}", "l0"), lif(name, f"c{name}")]
    nodes += [SpikeProductNode("product", ("q", "k", "v"), shape, heads=2), lif("attn", "product"),
              SumNode("add", ("l0", "attn"), shape), conv("c1", "add", True), lif("l1", "c1"),
              ReadoutNode("head", ("l1",), shape, weight=np.zeros((2, 4)), bias=np.zeros(2))]
    return Graph(nodes, steps)
