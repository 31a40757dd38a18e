"""Every node kind against every consumer of the graph: each backend, the value bounds, the core mapper, the
bundle check and the file writers either handle a kind or refuse it by name.

The test walks :data:`snn_deploy.graph.NODE_TYPES`, so a new node kind fails here until it has an example graph
below, and then until every consumer has decided about it. "Handles" means the consumer runs to the end
(whether it computes the right thing is what the spike-for-spike tests check); "refuses by name" means a
:class:`~snn_deploy.errors.UserError` (or, for the bounds' programming error, a ``TypeError``) whose message
names the node kind (``sigma_delta``, or in words: sigma-delta) or class. A ``KeyError``, an ``AttributeError``
or a numpy error from inside a consumer is the failure this test exists for: a kind nobody thought of.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from graph_testing import lif, random_conv, readout
from snn_deploy.errors import UserError
from snn_deploy.graph import (
    LOIHI2, NODE_TYPES, Graph, InputNode, Node, SigmaDeltaNode, SpikeProductNode, SumNode, current_bounds,
    value_bounds,
)

SHAPE = (4, 3, 2)


def _base(rng: np.random.Generator) -> list[Node]:
    """Input -> graded conv -> LIF: what every example starts from."""
    return [InputNode("input", (), (2, 3, 2), scale=15.0, payload_bits=4),
            random_conv(rng, "c1", "input", SHAPE, 2, padding=(1, 1), graded=True),
            lif("l1", ("c1",), SHAPE, vth=40)]


def _chain(steps: int = 3) -> Graph:
    """input, conv, lif, readout."""
    return Graph([*_base(np.random.default_rng(0)), readout("l1", SHAPE)], steps)


def _sum(steps: int = 3) -> Graph:
    rng = np.random.default_rng(1)
    nodes = [*_base(rng), random_conv(rng, "c2", "l1", SHAPE, 4, padding=(1, 1)), lif("l2", ("c2",), SHAPE, vth=5),
             SumNode("add", ("l1", "l2"), SHAPE), random_conv(rng, "c3", "add", SHAPE, 4, (1, 1), graded=True),
             lif("l3", ("c3",), SHAPE, vth=5)]
    return Graph([*nodes, readout("l3", SHAPE)], steps)


def _spike_product(steps: int = 3) -> Graph:
    rng = np.random.default_rng(2)
    nodes = [*_base(rng)] + [node for name in "kv" for node in (
        random_conv(rng, f"{name}_conv", "input", SHAPE, 2, padding=(1, 1), graded=True),
        lif(f"{name}_lif", (f"{name}_conv",), SHAPE, vth=40))]
    nodes += [SpikeProductNode("product", ("l1", "k_lif", "v_lif"), SHAPE, heads=2, multiplier=3),
              lif("attn", ("product",), SHAPE, vth=5)]
    return Graph([*nodes, readout("attn", SHAPE)], steps)


def _sigma_delta(steps: int = 3) -> Graph:
    """A sigma-delta population between graded convs (lava-dl's SDNN layers), then a LIF."""
    rng = np.random.default_rng(3)
    nodes = [*_base(rng)[:2], SigmaDeltaNode("sd", ("c1",), SHAPE, vth=8, bias_mant=np.zeros(SHAPE[0], np.int64)),
             random_conv(rng, "c2", "sd", SHAPE, 4, padding=(1, 1), graded=True), lif("l2", ("c2",), SHAPE, vth=40)]
    return Graph([*nodes, readout("l2", SHAPE)], steps)


EXAMPLES: dict[str, Callable[[], Graph]] = {
    "input": _chain, "conv": _chain, "lif": _chain, "readout": _chain, "sum": _sum, "spike_product": _spike_product,
    "sigma_delta": _sigma_delta,
}
"""A small graph holding each node kind (the key)."""


def _bounds(graph: Graph, tmp_path: Path) -> None:
    value_bounds(graph)
    current_bounds(graph)


def _mapper(graph: Graph, tmp_path: Path) -> None:
    from snn_deploy.sims.hardware.mapper import map_graph

    map_graph(graph, LOIHI2)


def _bundle_check(graph: Graph, tmp_path: Path) -> None:
    from snn_deploy.exporters.formats.bundle_check import check_graph

    check_graph(graph, "example")


def _nir_file(graph: Graph, tmp_path: Path) -> None:
    from snn_deploy.exporters.nir import io as nir_io

    nir_io.write(graph, tmp_path / "g.nir")
    back = nir_io.read(tmp_path / "g.nir")
    assert [n.kind for n in back.nodes] == [n.kind for n in graph.nodes]


def _netx_file(graph: Graph, tmp_path: Path) -> None:
    from snn_deploy.exporters.formats.netx import to_netx

    to_netx(graph, tmp_path / "g.net")


def _backend(name: str) -> Callable[[Graph, Path], None]:
    def run(graph: Graph, tmp_path: Path) -> None:
        from snn_deploy.sims.backends import registry

        x = torch.rand(2, *graph.input.shape, generator=torch.Generator().manual_seed(0))
        spikes, _ = registry.get(name, graph_only=True).run(graph, x, None)
        assert set(spikes) >= {n.name for n in graph.nodes if n.kind == "lif"}
    return run


CONSUMERS: dict[str, Callable[[Graph, Path], None]] = {
    "bounds": _bounds, "mapper": _mapper, "bundle check": _bundle_check, "NIR file": _nir_file,
    "netx file": _netx_file, "backend sim": _backend("sim"), "backend onnx": _backend("onnx"),
}
LAVA = {"backend lava": _backend("lava")}


def test_every_node_kind_has_an_example():
    missing = sorted(set(NODE_TYPES) - set(EXAMPLES))
    assert not missing, f"node kinds without an example graph here: {missing}; add one to EXAMPLES"
    for kind, example in EXAMPLES.items():
        assert kind in {n.kind for n in example().nodes}, kind


def test_every_graph_only_backend_is_checked():
    from snn_deploy.sims.backends import registry

    assert {f"backend {n}" for n in registry.names(graph_only=True)} == {
        c for c in {**CONSUMERS, **LAVA} if c.startswith("backend ")}


def _handles_or_refuses(consumer: Callable[[Graph, Path], None], kind: str, tmp_path: Path) -> None:
    graph = EXAMPLES[kind]()
    try:
        consumer(graph, tmp_path)
    except (UserError, TypeError, NotImplementedError) as exc:
        names = {kind, kind.replace("_", "-"), kind.replace("_", " "), NODE_TYPES[kind].__name__}
        assert any(name in str(exc) for name in names), f"refused {kind} without naming it: {exc}"


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
@pytest.mark.parametrize("kind", sorted(NODE_TYPES))
def test_each_consumer_handles_or_refuses_each_kind(consumer, kind, tmp_path):
    _handles_or_refuses(CONSUMERS[consumer], kind, tmp_path)


@pytest.mark.lava
@pytest.mark.parametrize("kind", sorted(NODE_TYPES))
def test_lava_handles_or_refuses_each_kind(kind, tmp_path):
    _handles_or_refuses(LAVA["backend lava"], kind, tmp_path)
