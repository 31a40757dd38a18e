"""Model zoo: Spikformer, Spikformer V2 and QKFormer built from deployable spiking parts.

``create(name, mode=..., **overrides)`` builds a registered architecture; ``names()`` lists them and
``spec(name)`` describes one. ``import_checkpoint`` reads official training checkpoints.
"""

from importlib import import_module

_EXPORTS = {
    "QKFormerConfig": "configs", "SpikformerConfig": "configs", "config_from_dict": "configs",
    "config_to_dict": "configs", "DeployIssue": "deploy", "SynapticUnit": "deploy", "deploy_issues": "deploy",
    "deployable_as_is": "deploy", "synaptic_units": "deploy", "QKFormer": "networks", "Spikformer": "networks",
    "SpikingNetwork": "networks", "build": "networks", "ModelSpec": "registry", "configure": "registry",
    "create": "registry", "names": "registry", "spec": "registry", "ImportReport": "checkpoint",
    "import_checkpoint": "checkpoint",
}
"""Public name -> submodule. Loaded on first use: listing the zoo (names, specs, facts) needs no torch."""


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"snn_deploy.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'snn_deploy.models' has no attribute {name!r}")


__all__ = [
    "DeployIssue", "ImportReport", "ModelSpec", "QKFormer", "QKFormerConfig", "Spikformer", "SpikformerConfig",
    "SpikingNetwork", "SynapticUnit", "build", "config_from_dict", "config_to_dict", "configure", "create",
    "deploy_issues", "deployable_as_is", "import_checkpoint", "names", "spec", "synaptic_units",
]
