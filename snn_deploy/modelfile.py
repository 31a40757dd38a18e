"""The ``model.pt`` file: one trained model with everything needed to rebuild it, and nothing executable.

Contents (a dict saved by ``torch.save``)::

    format          "snn-deploy-model"
    format_version  1
    arch            registered architecture name (e.g. "spikformer-8-512")
    family          "spikformer" | "spikformer-v2" | "qkformer"
    config          every config field (plain values), so overrides such as T or num_classes survive
    neuron_mode     "float" | "loihi" | "integer" (quantized: rebuilt from the quantization record)
    state_dict      parameters and BatchNorm buffers
    state_sha256    sha256 of the state dict's tensors (snn_deploy.models.tensors.state_digest): a flipped bit in
                    a tensor is detected on reading, as bundles detect it with their file hashes
    quantization    None, or for integer-mode models the quantization record (snn_deploy.quant.QuantReport)
    provenance      {"tool", "tool_version", "source", "created_from", ...caller extras}

Files are written atomically (a temporary file in the same directory, then ``os.replace``), so a crash never
leaves a partial model; the same model saves to the same bytes (no timestamps unless the caller passes one).
Reading uses ``torch.load(..., weights_only=True)`` only, and every problem is a one-line
:class:`~snn_deploy.errors.UserError`: the configuration's size is checked on the meta device before the model is
allocated, then every tensor's shape and dtype, then its values (finite, BatchNorm variances >= 0), then the digest
(files written before the digest existed carry none and are read without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snn_deploy import __version__
from snn_deploy.errors import UserError
from snn_deploy.io import atomic_file
from snn_deploy.models import SpikingNetwork, build, config_from_dict, config_to_dict, names, spec
from snn_deploy.models.tensors import check_model_size, check_state, state_digest
from snn_deploy.models.torchfile import read_torch_file
from snn_deploy.neurons import neuron_mode
from snn_deploy.quant import QuantReport, restructure

FORMAT = "snn-deploy-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelFile:
    """A loaded model file: the rebuilt model plus the metadata stored next to it."""

    model: SpikingNetwork
    arch: str
    neuron_mode: str
    quantization: dict[str, Any] | None
    provenance: dict[str, Any]


def model_record(model: SpikingNetwork, *, source: str, created_from: str,
                 quantization: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None) -> dict:
    """The dict a model file stores for ``model`` (see the module docstring)."""
    if model.arch is None:
        raise ValueError("model has no registered architecture name; build it with snn_deploy.models.create")
    if quantization is not None and not isinstance(quantization, dict):
        raise TypeError(f"quantization must be a dict or None; got {type(quantization).__name__}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "family": model.config.family,
        "config": config_to_dict(model.config),
        "neuron_mode": neuron_mode(model),
        "state_dict": state,
        "state_sha256": state_digest(state),
        "quantization": quantization,
        "provenance": {"tool": "snn-deploy", "tool_version": __version__, "source": source,
                       "created_from": created_from, **(provenance or {})},
    }


def save_model(model: SpikingNetwork, path: str | Path, *, source: str, created_from: str,
               quantization: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path. ``provenance`` adds caller fields (e.g. a date)."""
    path = Path(path)
    record = model_record(model, source=source, created_from=created_from, quantization=quantization,
                          provenance=provenance)
    with atomic_file(path) as f:
        torch.save(record, f)  # a file object, not a path: the archive's inner name stays "archive"
    return path


def _field(record: dict, key: str, kind: type, path: Path) -> Any:
    value = record.get(key)
    if not isinstance(value, kind):
        raise UserError(f"model file {path} is damaged: field {key!r} is {type(value).__name__}, expected "
                        f"{kind.__name__}; create it again")
    return value


def load_model(path: str | Path, *, arch: str | None = None) -> ModelFile:
    """Read and rebuild a model file; ``arch``, if given, must equal the stored architecture."""
    path = Path(path)
    record = read_torch_file(path, "model file")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserError(f"{path} is not a snn-deploy model file (no format marker {FORMAT!r}); for a training "
                        f"checkpoint run `snn-deploy import {path} --model NAME -o model.pt`")
    version = record.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(f"model file {path} has format version {version!r}, this snn-deploy {__version__} reads "
                        f"version {FORMAT_VERSION}; use the snn-deploy version that wrote it or re-create it")
    stored = _field(record, "arch", str, path)
    if stored not in names():
        raise UserError(f"model file {path} holds unknown architecture {stored!r} (written by a newer snn-deploy?); "
                        f"run `snn-deploy models` for the known names")
    if arch is not None and arch != stored:
        raise UserError(f"model file {path} holds architecture {stored!r}, not {arch!r}; pass --model {stored} or "
                        f"use the right file")
    family = _field(record, "family", str, path)
    if family != spec(stored).family:
        raise UserError(f"model file {path} is inconsistent: architecture {stored!r} is a {spec(stored).family} "
                        f"model, the file says {family!r}; create it again")
    mode = _field(record, "neuron_mode", str, path)
    quantization = record.get("quantization")
    if quantization is not None and not isinstance(quantization, dict):
        raise UserError(f"model file {path} is damaged: quantization is {type(quantization).__name__}; create it again")
    def rebuild() -> SpikingNetwork:
        if mode == "integer":  # a quantized model: rebuild its structure from the quantization record
            if quantization is None:
                raise ValueError("an integer-mode model needs its quantization record")
            model = build(config, mode="loihi", arch=stored)
            restructure(model, QuantReport.from_dict(quantization))
            return model
        return build(config, mode=mode, arch=stored)

    try:
        config = config_from_dict(family, _field(record, "config", dict, path))
        check_model_size(lambda: build(config, mode="float", arch=stored), f"model file {path}")
        model = rebuild()
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        raise UserError(f"model file {path} has an invalid configuration ({exc}); create it again") from None
    state = _field(record, "state_dict", dict, path)
    fix = "the file is damaged or was not written by snn-deploy: create it again"
    check_state(model, state, f"model file {path}", fix=fix)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise UserError(f"model file {path} does not match its own configuration ({detail}); create it again") from None
    stored_digest = record.get("state_sha256")
    if stored_digest is not None and stored_digest != state_digest(state):
        raise UserError(f"model file {path} is damaged: its tensors do not match their recorded sha256 (a flipped "
                        "bit or an edit); create or download it again")
    return ModelFile(model.eval(), stored, mode, quantization, _field(record, "provenance", dict, path))
