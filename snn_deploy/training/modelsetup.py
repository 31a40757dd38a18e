"""Building a zoo model for a data set, starting it from a pre-trained encoder, and checking a model file
against a data set before evaluation."""

from __future__ import annotations

from pathlib import Path

import torch

from snn_deploy.data import DatasetInfo
from snn_deploy.errors import UserError
from snn_deploy.models import SpikingNetwork, create, spec

HEAD_PREFIX = "head."


def input_size(model: str, data: DatasetInfo) -> int:
    """The data set's own size, or the model's input size for data sets made at any size."""
    return data.native_size or spec(model).config.img_size


def build_for(model: str, data: DatasetInfo, *, size: int, T: int, classes: int, neuron: str,
              seed: int) -> SpikingNetwork:
    """``model`` re-shaped for the data (its channels, class count, input size and T), initialised from ``seed``."""
    torch.manual_seed(seed)
    return create(model, mode=neuron, in_channels=data.channels, num_classes=classes, img_size=size, T=T)


def load_encoder(model: SpikingNetwork, path: Path) -> None:
    """Copy every tensor of the model file at ``path`` except the classification head into ``model``.

    The architectures must agree (same name, same shapes); the head stays freshly initialised.
    """
    from snn_deploy.modelfile import load_model

    source = load_model(path)
    if source.arch != model.arch:
        raise UserError(f"--init {path} holds a {source.arch} model, but this run trains {model.arch}; pre-train "
                        f"the same architecture")
    ours = model.state_dict()
    theirs = {k: v for k, v in source.model.state_dict().items() if not k.startswith(HEAD_PREFIX)}
    mismatched = [k for k, v in theirs.items() if k not in ours or ours[k].shape != v.shape]
    if mismatched:
        raise UserError(f"--init {path} does not fit this run's {model.arch} configuration (first mismatch: "
                        f"{mismatched[0]}); pre-train with the same data set, input size and T")
    with torch.no_grad():
        for k, v in theirs.items():
            ours[k].copy_(v)


def check_fits(model: SpikingNetwork, data: DatasetInfo, classes: int, where: Path) -> None:
    """A model file must match the data set's channels, classes and (if fixed) size before evaluation."""
    c = model.config
    problems = []
    if c.in_channels != data.channels:
        problems.append(f"{c.in_channels} input channels vs {data.channels}")
    if c.num_classes != classes:
        problems.append(f"{c.num_classes} classes vs {classes}")
    if data.native_size is not None and c.img_size != data.native_size:
        problems.append(f"input size {c.img_size} vs {data.native_size}")
    if problems:
        raise UserError(f"model file {where} does not fit data set {data.name} ({'; '.join(problems)}); evaluate it "
                        f"on the data set it was trained for")
