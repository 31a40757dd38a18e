"""snn-deploy: deploy spiking transformers (Spikformer, Spikformer V2, QKFormer) to Loihi-class hardware."""

from snn_deploy import lava_compat as _lava_compat

__version__ = "0.1.0"

_lava_compat.install()

API = ("create", "open_splits", "train", "quantize", "export", "load_bundle", "simulate", "verify", "eval", "report",
       "model_names", "dataset_names")
"""The Python API (:mod:`snn_deploy.api`), importable from the package root; loaded on first use so that
``import snn_deploy`` (and the CLI's start-up) stays light."""


def __getattr__(name: str):
    if name in API:
        from snn_deploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'snn_deploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
