"""Fidelity: run the same inputs through several backends and compare the spikes of every layer.

Backends (:mod:`snn_deploy.sims.backends.registry`: ``torch``, ``sim``, ``lava``, ``onnx``, ``netx``) produce, per
LIF node of the graph, spikes [T, B, C, H, W] (uint8; a sigma-delta node's graded payloads, int64, so those compare
by value) in the functional time base; the torch model, read with forward hooks
(:func:`~snn_deploy.sims.backends.torch_reference.torch_spikes`), has no module for some nodes (the AND relay of
Q-K attention). Agreement is :func:`snn_deploy.agreement.agreement`. The report names the first layer, in graph
order, where any backend disagrees with the first backend, and its first step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from snn_deploy.agreement import agreement
from snn_deploy.errors import UserError
from snn_deploy.graph import Graph, LIFNode
from snn_deploy.sims.backends import registry as backends

Spikes = dict[str, torch.Tensor]


@dataclass
class LayerAgreement:
    """Agreement of one LIF node between the reference backend and each other backend."""

    node: str
    neurons: int
    spikes: dict[str, int]
    mismatches: dict[str, int | None]
    """None where the backend does not expose this node."""
    first_mismatch: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    """(step, sample) of the first differing spike, per backend."""


@dataclass
class VerifyReport:
    backends: list[str]
    samples: int
    T: int
    layers: list[LayerAgreement]
    predictions: dict[str, list[int]]
    labels: list[int] | None = None
    resets: dict[str, str] = field(default_factory=dict)
    """The state reset each backend ran with, in words (a netx run states what lava-dl's Network was given)."""

    @property
    def exact(self) -> bool:
        return all(not m for layer in self.layers for m in layer.mismatches.values() if m is not None) and all(
            p == self.predictions[self.backends[0]] for p in self.predictions.values())

    def first_divergence(self) -> tuple[str, str, tuple[int, int]] | None:
        """(node, backend, (step, sample)) of the earliest disagreement in graph order, or None."""
        for layer in self.layers:
            hits = [(pos, b) for b, pos in layer.first_mismatch.items() if pos is not None]
            if hits:
                pos, backend = min(hits)
                return layer.node, backend, pos
        return None

    def accuracy(self, backend: str) -> float | None:
        if self.labels is None:
            return None
        preds = self.predictions[backend]
        return sum(int(p == y) for p, y in zip(preds, self.labels)) / len(self.labels)


def compare(graph: Graph, results: dict[str, tuple[Spikes, torch.Tensor]], labels: list[int] | None) -> VerifyReport:
    """Per-layer agreement of every backend with the first one in ``results`` that exposes that layer (the
    torch model has no module for some relay nodes; those are compared against the next backend)."""
    names = list(results)
    layers = []
    for node in graph.of_kind(LIFNode):
        got = {b: results[b][0].get(node.name) for b in names}
        reference = next((b for b in names if got[b] is not None), None)
        spikes = {b: (int((got[b] != 0).sum()) if got[b] is not None else None) for b in names}  # messages
        mismatches, first = {}, {}
        for backend in names[1:]:
            if got[backend] is None or reference is None or backend == reference:
                mismatches[backend], first[backend] = None, None
                continue
            found = agreement(got[reference], got[backend])
            mismatches[backend], first[backend] = found.mismatches, found.first
        layers.append(LayerAgreement(node.name, node.neurons, spikes, mismatches, first))
    predictions = {b: results[b][1].argmax(1).tolist() if results[b][1] is not None else None for b in names}
    some = next(iter(next(iter(results.values()))[0].values()))  # [T, B, ...] spikes of some layer
    return VerifyReport(names, int(some.shape[1]), int(some.shape[0]), layers, predictions,
                        labels if graph.classifier is not None else None)


def run_backends(model: nn.Module, graph: Graph, x: torch.Tensor, labels: list[int] | None,
                 names: list[str], per_layer: bool = False) -> VerifyReport:
    """Run ``x`` through every backend named (in order; the first is the reference; see
    :mod:`snn_deploy.sims.backends.registry`) and compare. Every backend is checked to be available before any runs.

    ``per_layer``: Lava runs each LIF layer alone, driven by the simulator's recorded spikes (bounded memory, for
    networks too large to run whole; :func:`snn_deploy.sims.backends.lava_build.run_layers`): needs ``sim`` before
    ``lava``."""
    chosen = [backends.get(name) for name in names]
    if per_layer and ("lava" not in names or "sim" not in names or names.index("sim") > names.index("lava")):
        raise UserError("--per-layer drives each Lava layer with the simulator's recorded spikes: list sim before "
                        "lava in --backend (e.g. --backend sim,lava)")
    results: dict[str, tuple[Spikes, torch.Tensor]] = {}
    for b in chosen:
        if per_layer and b.name == "lava":
            results[b.name] = backends.lava_per_layer(graph, x, results["sim"][0])
        else:
            results[b.name] = b.run(graph, x, model)
    report = compare(graph, results, labels)
    report.resets = {name: backend_reset(graph, name, int(x.shape[0]) if x.dim() == 5 else graph.T,
                                         int(x.shape[-4])) for name in names}
    return report


def backend_reset(graph: Graph, name: str, steps: int, batch: int) -> str:
    """The state reset backend ``name`` runs ``graph`` with: the graph's own, except lava-dl's netx, which is given
    ``reset_interval`` only where the graph resets or samples are streamed (else lava-dl's default: none)."""
    if name != backends.NETX:
        return graph.reset_text()
    from snn_deploy.sims.backends.netx_lava import netx_reset_interval

    interval = netx_reset_interval(graph, steps, batch)
    return ("none (lava-dl's default, reset_interval=None)" if interval is None
            else f"every {interval} steps (Network(reset_interval={interval}))")


def report_json(report: VerifyReport) -> dict:
    """Machine-readable report (schema_version 1)."""
    first = report.first_divergence()
    return {
        "schema_version": 1, "backends": report.backends, "samples": report.samples, "T": report.T,
        "exact": report.exact,
        "first_divergence": None if first is None else {"node": first[0], "backend": first[1], "step": first[2][0],
                                                        "sample": first[2][1]},
        "accuracy": {b: report.accuracy(b) for b in report.backends},
        "resets": report.resets,
        "layers": [{"node": la.node, "neurons": la.neurons, "spikes": la.spikes, "mismatches": la.mismatches}
                   for la in report.layers],
    }


def render(report: VerifyReport) -> None:
    """Per-layer agreement table on the console, then the verdict."""
    from snn_deploy.console import table as new_table, table_console

    console = table_console()
    reference = report.backends[0]
    table = new_table(f"spike agreement, {report.samples} samples x {report.T} steps: spikes of the reference "
                      f"({reference}) and the share of spikes and silences each backend matches",
                      columns={"layer": "name", "neurons": "number", "spikes": "number",
                               **{b: "number" for b in report.backends[1:]}})
    for layer in report.layers:
        total = layer.neurons * report.T * report.samples
        agree = [("n/a" if layer.mismatches[b] is None else f"{100 * (1 - layer.mismatches[b] / total):.2f}%")
                 for b in report.backends[1:]]
        ref_spikes = layer.spikes[reference]
        shown = ref_spikes if ref_spikes is not None else next(
            (layer.spikes[b] for b in report.backends if layer.spikes[b] is not None), None)
        table.add_row(layer.node, f"{layer.neurons:,}", "-" if shown is None else f"{shown:,}", *agree)
    console.print(table)
    for backend, reset in report.resets.items():
        console.print(f"{backend}: state reset {reset}")
    for backend in report.backends:
        acc = report.accuracy(backend)
        console.print(f"{backend}: accuracy {'n/a' if acc is None else f'{100 * acc:.2f} %'}")
    first = report.first_divergence()
    if report.exact:
        console.print("[green]all backends agree spike for spike on every layer, and on every prediction[/green]")
    elif first is not None:
        console.print(f"[red]first divergence: layer {first[0]} ({first[1]}) at step {first[2][0]}, "
                      f"sample {first[2][1]}[/red]")
    else:
        console.print("[red]spikes agree but predictions differ[/red]")
