"""Deployability metadata: the synaptic units an exporter folds and quantizes, and the constructs it must rewrite.

An issue is ``blocking`` when no exact rewrite exists, so the model itself has to change (retrain or rebuild)
before it can run on neuromorphic cores; non-blocking issues have a lossless mechanical rewrite the exporter can
apply. A model is "deployable as is" when it has no blocking issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from snn_deploy.models.attention import QKTokenAttention, SpikingSelfAttention
from snn_deploy.models.units import UnitHost


@dataclass(frozen=True)
class SynapticUnit:
    """One conv/linear layer with its BatchNorm and neuron (full module names), in forward order.

    ``input`` is ``analog``, ``spikes`` or ``integer`` (the residual stream). The head has no BN and no neuron.
    """

    layer: str
    bn: str | None
    neuron: str | None
    input: str
    pool: str | None = None
    pool_before_neuron: bool = False


@dataclass(frozen=True)
class DeployIssue:
    """A construct that does not map to neuromorphic cores as is, where it is, and what to do about it."""

    module: str
    kind: str
    detail: str
    fix: str
    blocking: bool


FIXES: dict[str, tuple[bool, str]] = {
    "analog-input": (False, "compute this layer and its BatchNorm on the host and send the result to the neurons "
                            "as integer currents (graded spikes); every later layer then sees spikes"),
    "integer-residual": (False, "the value is a sum of binary spike tensors: connect each summed spike population "
                                "to this layer with the same weights (exact: W(a+b) = Wa + Wb), or carry the count "
                                "as graded spikes"),
    "spike-product": (False, "both operands are spikes, so the product is an integer count: evaluate it exactly in "
                             "integer arithmetic (custom process or embedded core) or with coincidence (AND) "
                             "neurons, and fold the scale into the attention neuron's threshold"),
    "spike-maxpool": (False, "a max of binary spikes is an OR: map it to relay neurons with unit weights, zero "
                             "threshold and full current and voltage decay (exact)"),
    "analog-maxpool": (True, "the pool acts on BatchNorm outputs before the LIF and has no exact spiking "
                             "equivalent (the LIF keeps state between steps): move the pool after the LIF, as "
                             "Spikformer does (export --rewrite maxpool-after-lif, or build with pool_spikes=True), "
                             "and fine-tune, or run this layer on the host"),
    "legacy-ssa": (True, "rebuild without legacy_ssa: the flag reproduces the published QKFormer defect for "
                         "accuracy comparisons only"),
}


def _join(prefix: str, name: str | None) -> str | None:
    return None if name is None else (f"{prefix}.{name}" if prefix else name)


def synaptic_units(model: nn.Module) -> list[SynapticUnit]:
    """Every (layer, BN, neuron, input kind) of ``model`` in forward order, ending with the head."""
    units = []
    for prefix, module in model.named_modules():
        if isinstance(module, UnitHost):
            for spec in module.unit_specs.values():
                units.append(SynapticUnit(_join(prefix, spec.layer), _join(prefix, spec.bn),
                                          _join(prefix, spec.neuron), spec.input, _join(prefix, spec.pool),
                                          spec.pool_before_neuron))
    units.append(SynapticUnit("head", None, None, "integer"))
    return units


def _issue(module: str, kind: str, detail: str) -> DeployIssue:
    blocking, fix = FIXES[kind]
    return DeployIssue(module, kind, detail, fix, blocking)


def _attention_issues(name: str, module: nn.Module) -> list[DeployIssue]:
    if isinstance(module, SpikingSelfAttention):
        issues = [_issue(name, "spike-product",
                         f"q @ (k^T @ v) between spike tensors per head, scaled by {module.scale}, into attn_lif")]
        if module.legacy:
            issues.append(_issue(_join(name, module.unit_specs["proj"].neuron), "legacy-ssa",
                                 "proj_lif integrates over T*B steps, mixing the samples of a batch"))
        return issues
    if isinstance(module, QKTokenAttention):
        return [_issue(name, "spike-product", "attn_lif spikes of summed q multiply k elementwise (spike mask)")]
    return []


def _unit_issues(unit: SynapticUnit) -> list[DeployIssue]:
    issues = []
    if unit.input == "analog":
        issues.append(_issue(unit.layer, "analog-input", "first layer receives analog input every time step"))
    elif unit.input == "integer":
        issues.append(_issue(unit.layer, "integer-residual", "input is the integer-valued residual stream"))
    if unit.pool is not None and unit.pool_before_neuron:
        issues.append(_issue(unit.pool, "analog-maxpool", f"max-pool of analog BatchNorm output {unit.bn}"))
    elif unit.pool is not None:
        issues.append(_issue(unit.pool, "spike-maxpool", f"max-pool of the spikes of {unit.neuron}"))
    return issues


def deploy_issues(model: nn.Module) -> list[DeployIssue]:
    """All issues of ``model`` in forward order, so an exporter can report every one at once."""
    units = iter(synaptic_units(model))
    issues = []
    for name, module in model.named_modules():
        issues.extend(_attention_issues(name, module))
        if isinstance(module, UnitHost):
            for _ in module.unit_specs:
                issues.extend(_unit_issues(next(units)))
    for unit in units:  # the head
        issues.extend(_unit_issues(unit))
    return issues


def deployable_as_is(model: nn.Module) -> bool:
    """True when no issue of ``model`` is blocking."""
    return not any(issue.blocking for issue in deploy_issues(model))
