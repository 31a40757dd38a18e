"""Model zoo: Spikformer, Spikformer V2 and QKFormer built from deployable spiking parts.

``create(name, mode=..., **overrides)`` builds a registered architecture; ``names()`` lists them and
``spec(name)`` describes one. ``import_checkpoint`` reads official training checkpoints.
"""

from snn_deploy.models.configs import QKFormerConfig, SpikformerConfig, config_from_dict, config_to_dict
from snn_deploy.models.deploy import DeployIssue, SynapticUnit, deploy_issues, deployable_as_is, synaptic_units
from snn_deploy.models.networks import QKFormer, Spikformer, SpikingNetwork, build
from snn_deploy.models.registry import ModelSpec, configure, create, names, spec
from snn_deploy.models.checkpoint import ImportReport, import_checkpoint

__all__ = [
    "DeployIssue", "ImportReport", "ModelSpec", "QKFormer", "QKFormerConfig", "Spikformer", "SpikformerConfig",
    "SpikingNetwork", "SynapticUnit", "build", "config_from_dict", "config_to_dict", "configure", "create",
    "deploy_issues", "deployable_as_is", "import_checkpoint", "names", "spec", "synaptic_units",
]
