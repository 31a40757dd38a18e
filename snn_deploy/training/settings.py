"""Everything that determines a run's result, resolved from the command line and per-data-set defaults.

Two runs with equal settings (and thread count, and software) produce byte-identical model files; a checkpoint
stores the settings so ``--resume`` can refuse to continue a different run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from snn_deploy.data import info
from snn_deploy.errors import UserError
from snn_deploy.optimisation import Optimisation

S = TypeVar("S", "TrainSettings", "PretrainSettings")


@dataclass(frozen=True, kw_only=True)
class RunSettings(Optimisation):
    """What every training command runs: the model, its data, its neurons, steps, seed and augmentation."""

    model: str
    dataset: str
    neuron: str
    T: int
    seed: int
    augment: bool


@dataclass(frozen=True, kw_only=True)
class TrainSettings(RunSettings):
    """One training run. ``init`` is the file name of a pre-trained model whose encoder starts the run."""

    labels_per_class: int | None
    init: str | None


@dataclass(frozen=True, kw_only=True)
class PretrainSettings(RunSettings):
    """One masked-image-modelling run (see :mod:`snn_deploy.training.pretrain`); label smoothing is unused."""

    mask_ratio: float
    decoder_width: int
    decoder_depth: int


def resolve(cls: type[S], model: str, dataset: str, *, T: int | None = None, **given: Any) -> S:
    """Fill unset (None) schedule values from the data set's defaults and T from the model, then validate."""
    from snn_deploy.models import spec

    fields = {f.name for f in dataclasses.fields(cls)}
    defaults = {k: v for k, v in dataclasses.asdict(info(dataset).defaults).items() if k in fields}
    values = {**defaults, **{k: v for k, v in given.items() if v is not None or k not in defaults}}
    settings = cls(model=model, dataset=dataset, T=T or spec(model).default_T, **values)
    validate(settings)
    return settings


def validate(s: RunSettings) -> None:
    """Each bad value is a :class:`UserError` naming the option."""
    checks = [
        (s.epochs >= 1, "--epochs must be at least 1"),
        (s.batch_size >= 1, "--batch-size must be at least 1"),
        (s.lr > 0, "--lr must be positive"),
        (s.weight_decay >= 0, "--weight-decay must be >= 0"),
        (0 <= s.warmup_epochs < s.epochs, f"warm-up epochs ({s.warmup_epochs}) must be fewer than --epochs "
                                          f"({s.epochs}); pass --warmup-epochs"),
        (s.T >= 1, "--T must be at least 1"),
        (s.micro_batches >= 1, "--micro-batches must be at least 1"),
    ]
    if isinstance(s, TrainSettings):
        checks += [(0 <= s.label_smoothing < 1, "--label-smoothing must lie in [0, 1)"),
                   (s.labels_per_class is None or s.labels_per_class >= 1, "--labels-per-class must be at least 1")]
    else:
        checks += [(0 < s.mask_ratio < 1, "--mask-ratio must lie strictly between 0 and 1"),
                   (s.decoder_width >= 8 and s.decoder_depth >= 1, "--decoder-width must be >= 8 and "
                                                                   "--decoder-depth >= 1")]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
