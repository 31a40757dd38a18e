"""Model file -> deployable integer model -> graph -> bundle: the steps ``snn-deploy export`` runs, in order.

Before anything is written, every problem is collected and reported at once: the model's deployability issues
that no requested rewrite fixes, and the target's limits (binary-spike targets cannot carry graded streams).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snn_deploy.errors import UserError
from snn_deploy.exporters.formats.bundle import write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import Graph, HardwareProfile, Problem, analog_input_layer, summarize, target_problems
from snn_deploy.graph.hardware import attention_problems
from snn_deploy.modelfile import ModelFile
from snn_deploy.models import SpikingNetwork, build
from snn_deploy.neurons import neuron_mode
from snn_deploy.quant import QuantReport, quantize

Attention = str | Callable[[Graph, HardwareProfile], str] | None
"""``--attention``: a lowering's name (or per-product ``name=lowering`` pairs), a function choosing one from the
graph (``--attention auto``), or None for the graph's own."""

REWRITES = {
    "maxpool-after-lif": "move every max-pool of analog BatchNorm output after its LIF (pool spikes, as Spikformer "
                         "does); changes the network, so its accuracy change is measured and reported",
}


def rewrite_maxpool_after_lif(model: SpikingNetwork) -> tuple[SpikingNetwork, list[str]]:
    """The ``maxpool-after-lif`` rewrite: the same parameters in the ``pool_spikes`` placement (config flag, so
    the change survives saving). Returns the new model and the pools that moved."""
    moved = [issue.module for issue in model.deploy_issues() if issue.kind == "analog-maxpool"]
    if not moved:
        return model, []
    rewritten = build(dataclasses.replace(model.config, pool_spikes=True), mode=neuron_mode(model), arch=model.arch)
    rewritten.load_state_dict(model.state_dict(), strict=True)
    return rewritten.eval(), moved


Evaluate = Callable[[SpikingNetwork], float]
"""Accuracy of a model on the user's evaluation data (used to report what a rewrite changes)."""


def apply_rewrites(model: SpikingNetwork, rewrites: list[str], evaluate: Evaluate | None = None
                   ) -> tuple[SpikingNetwork, dict[str, dict[str, Any]]]:
    """Apply the named rewrites; record what moved and, with ``evaluate``, the accuracy before and after."""
    unknown = [r for r in rewrites if r not in REWRITES]
    if unknown:
        raise UserError(f"unknown rewrite(s) {', '.join(unknown)}; available: {', '.join(REWRITES)}")
    done: dict[str, dict[str, Any]] = {}
    if "maxpool-after-lif" in rewrites:
        before = evaluate(model) if evaluate else None
        model, moved = rewrite_maxpool_after_lif(model)
        done["maxpool-after-lif"] = {"moved": moved, "accuracy_before": before,
                                     "accuracy_after": evaluate(model) if evaluate and moved else before}
    return model, done


def blocking_problems(model: SpikingNetwork) -> list[Problem]:
    """The model's deployability issues that need a change to the model (after any rewrites were applied)."""
    return [Problem(i.module, i.kind, i.fix) for i in model.deploy_issues() if i.blocking]


@dataclass
class Prepared:
    """An integer-mode model ready to lower, with the record of how it got there."""

    model: SpikingNetwork
    quantization: dict[str, Any]
    rewrites: dict[str, dict[str, Any]]


def prepare(model_file: ModelFile, *, calibration: torch.Tensor | None, rewrites: list[str],
            evaluate: Evaluate | None = None) -> Prepared:
    """Apply rewrites (measuring their accuracy change with ``evaluate``) and quantize, unless the file already
    holds an integer model."""
    model = model_file.model
    if model_file.neuron_mode == "integer":
        if rewrites:
            raise UserError("rewrites apply before quantization; this file already holds a quantized model")
        return Prepared(model, model_file.quantization or {}, {})
    model, done = apply_rewrites(model, rewrites, evaluate)
    problems = blocking_problems(model)
    if problems:
        raise UserError(f"{len(problems)} construct(s) cannot be deployed: {summarize(problems)}")
    if model_file.neuron_mode == "float" and calibration is None:
        raise UserError("this is a float-neuron model: quantizing it needs calibration data; pass --calibrate "
                        "DATASET (e.g. the data set it was trained on)")
    report: QuantReport = quantize(model, calibration)
    return Prepared(model, report.to_dict(), done)


def lower_for_target(prepared: Prepared, target: HardwareProfile, *, input_on_host: bool = False,
                     attention: str | None = None) -> Graph:
    """Lower, place the analog input layer on the host if asked (a binary-spike chip then receives spikes only),
    and check the target's limits; all problems at once."""
    return place_and_check(lower(prepared.model), target, input_on_host=input_on_host, attention=attention)


def place_and_check(graph: Graph, target: HardwareProfile, *, input_on_host: bool = False,
                    attention: Attention = None) -> Graph:
    """Place the analog input layer on the host if asked, choose the spike products' lowering (``attention``,
    refused by name where it cannot be exact on ``target``; a callable chooses it from the graph: ``--attention
    auto``) and check the target's limits (any frontend's graph)."""
    if input_on_host:
        graph = dataclasses.replace(graph, host=analog_input_layer(graph))
    if callable(attention):  # --attention auto: a search over the lowerings, priced on this graph (it records
        attention = attention(graph, target)  # what it chose; snn_deploy.sims.hardware.auto.AutoAttention)
    if attention is not None:
        graph = dataclasses.replace(graph, attention=attention)
        problems = attention_problems(graph, target)
        if problems:
            raise UserError(f"--attention {attention} cannot be exact on {target.name}: {summarize(problems)}")
    problems = target_problems(graph, target)
    if problems:
        raise UserError(f"{len(problems)} layer(s) cannot run on {target.name}: {summarize(problems)}")
    return graph


def export_bundle(model_file: ModelFile, out: Path, *, target: HardwareProfile, calibration: torch.Tensor | None,
                  rewrites: list[str], force: bool, source: dict[str, Any], evaluate: Evaluate | None = None,
                  input_on_host: bool = False, attention: Attention = None) -> tuple[Path, Graph]:
    """The whole ``export --target loihi`` pipeline; returns the bundle path and its graph."""
    prepared = prepare(model_file, calibration=calibration, rewrites=rewrites, evaluate=evaluate)
    graph = lower_for_target(prepared, target, input_on_host=input_on_host, attention=attention)
    extra = {"arch": model_file.arch, "source_model": source, "rewrites": prepared.rewrites}
    if getattr(attention, "record", None):  # --attention auto: its objective and per-product choice
        extra["attention_auto"] = attention.record
    quantization = prepared.quantization
    del prepared, model_file  # the graph holds everything the bundle needs; free the float64 model first
    return write_bundle(graph, out, target=target, quantization=quantization, extra=extra, force=force), graph
