"""Whether a deployed graph can run on a hardware target: every problem at once, each with where, what and the fix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.graph.nodes import ConvNode, Graph, InputNode, LIFNode, SigmaDeltaNode, SpikeProductNode
from snn_deploy.graph.profiles import HardwareProfile


@dataclass(frozen=True)
class Problem:
    """A reason the graph cannot run on the target as it is: where, what, and the fix."""

    node: str
    what: str
    fix: str


def summarize(problems: list[Problem]) -> str:
    """All problems on one line, grouped by what is wrong: ``what at a, b, c (fix); ...``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        groups.setdefault((p.what, p.fix), []).append(p.node)
    return "; ".join(f"{what} at {', '.join(nodes)} ({fix})" for (what, fix), nodes in groups.items())


def target_problems(graph: Graph, target: HardwareProfile) -> list[Problem]:
    """Every construct of ``graph`` the target cannot carry, all at once."""
    problems = []
    if not target.graded_spikes:
        for node in graph.nodes:
            if isinstance(node, ConvNode) and node.graded and node.name not in graph.host:
                if isinstance(graph[node.inputs[0]], InputNode):
                    what, fix = "analog input", "export for loihi2, or pass --input-on-host to compute it on the host"
                elif isinstance(graph[node.inputs[0]], SigmaDeltaNode):
                    what, fix = "sigma-delta payloads", "export for loihi2"
                else:
                    what, fix = "integer residual stream", "export for loihi2"
                problems.append(Problem(node.name, f"{what} as graded spikes, but {target.name} has binary "
                                        "spikes only", fix))
            if isinstance(node, SpikeProductNode):
                problems.append(Problem(node.name, "spike product needs graded messages",
                                        "export for loihi2 (embedded cores)"))
    if target.name == "loihi2":
        problems += reset_problems(graph)
    return problems


def reset_problems(graph: Graph) -> list[Problem]:
    """Loihi 2 resets a ``LIFReset`` population's state on a period that must be a power of 2 (Lava's CPU model
    takes any period; the chip's does not). The Lava network resets every LIF once per sample of ``T`` steps
    (``sims/backends/lava_build.py``), and a netx network may reset every ``reset_interval`` steps instead (then
    that is the period, and T only the length of a run). A pipeline-fill graph (lava-dl's netx without a reset) runs
    plain ``LIF`` populations: no period to check."""
    problems = []
    per_sample = 0 if graph.pipeline_fill or graph.reset_interval else graph.T
    for what, period in (("steps per sample (T, the per-sample LIFReset period)", per_sample),
                         ("periodic state reset interval", graph.reset_interval)):
        if period and period & (period - 1):
            problems.append(Problem("every LIF", f"{what} {period} is not a power of 2, which a Loihi 2 chip's "
                                    "LIFReset requires", "export with a power-of-2 number of steps (or pad each "
                                    "sample with idle steps up to one)"))
    return problems


SIGMA_DELTA = "sigma-delta neurons"
PIPELINE_FILL = "pipeline fill (no reset: layers run on their biases before a sample reaches them)"


def netx_features(graph: Graph) -> dict[str, list[str]]:
    """The constructs lava-dl netx imports (and recurrent NIR networks) bring that not every backend models, with
    the nodes using each: a backend that cannot compute one refuses the graph with :func:`refuse_features` instead
    of computing another network."""
    found = {"bias-driven input": [n.name for n in graph.of_kind(InputNode) if n.drive == "bias"],
             "refractory period": [n.name for n in graph.of_kind(LIFNode) if n.refractory],
             "synaptic delays": [n.name for n in graph.of_kind(ConvNode) if n.delay.size],
             "recurrent synapses": [n.name for n in graph.of_kind(ConvNode) if n.recurrent],
             "periodic state reset": ["every LIF"] if graph.reset_steps(graph.T) else [],
             SIGMA_DELTA: [n.name for n in graph.of_kind(SigmaDeltaNode)],
             PIPELINE_FILL: pipeline_fill_nodes(graph)}
    return {what: nodes for what, nodes in found.items() if nodes}


def pipeline_fill_nodes(graph: Graph) -> list[str]:
    """The populations a :attr:`Graph.pipeline_fill` changes: those behind the input (depth > 0) with a bias
    (without one, a population idles at zero state until something arrives, as in the functional model)."""
    if not graph.pipeline_fill:
        return []
    depths = graph.depths()
    return [n.name for n in graph.of_kind(LIFNode) if depths[n.name] and np.any(np.asarray(n.bias_mant))]


def refuse_features(graph: Graph, backend: str, supported: tuple[str, ...] = ()) -> None:
    """Raise a :class:`UserError` naming every :func:`netx_features` construct ``backend`` does not model."""
    missing = {what: nodes for what, nodes in netx_features(graph).items() if what not in supported}
    if missing:
        listed = "; ".join(f"{what} ({', '.join(nodes)})" for what, nodes in missing.items())
        raise UserError(f"{backend} does not model {listed}; use the simulator (sim), or the netx backend on the "
                        "netx file (lava-dl's own loader)")
