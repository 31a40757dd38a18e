"""snn-deploy: deploy spiking transformers (Spikformer, Spikformer V2, QKFormer) to Loihi-class hardware."""

from snn_deploy import lava_compat as _lava_compat

__version__ = "0.1.0"

_lava_compat.install()
