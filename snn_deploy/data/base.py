"""What every data set hands to training: a :class:`Samples` per split, indexable, with an optional random view.

``sample(i, rng)`` returns one input tensor: ``[C, H, W]`` for images, ``[T, 2, H, W]`` for event frames.
``rng`` is None for the evaluation view and a numpy Generator for a training view (augmentation). The training
loop derives that generator from (seed, epoch, index) only, so the augmentation a sample gets does not depend on
batch composition, process count or resumption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Augment = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


class Samples:
    """A split: ``labels`` (int64 [N]), ``classes`` (names), and ``sample(i, rng)``."""

    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.numel())

    def sample(self, i: int, rng: np.random.Generator | None) -> torch.Tensor:
        raise NotImplementedError


class TensorSamples(Samples):
    """Samples held in memory as one tensor ``[N, ...]``.

    ``decode`` (if any) turns a stored sample into the model's input (e.g. uint8 pixels -> normalised floats,
    keeping memory at one byte per pixel); ``augment`` (if any) then applies to training views.
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...],
                 augment: Augment | None = None, decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if inputs.shape[0] != labels.shape[0]:
            raise ValueError(f"{inputs.shape[0]} inputs but {labels.shape[0]} labels")
        self.inputs, self.labels, self.classes = inputs, labels.to(torch.int64), classes
        self.augment, self.decode = augment, decode

    def sample(self, i: int, rng: np.random.Generator | None) -> torch.Tensor:
        x = self.inputs[i] if self.decode is None else self.decode(self.inputs[i])
        return x if rng is None or self.augment is None else self.augment(x, rng)


class LazySamples(Samples):
    """Samples read on demand by ``load(i, rng)`` (large on-disk data sets)."""

    def __init__(self, load: Callable[[int, np.random.Generator | None], torch.Tensor], labels: torch.Tensor,
                 classes: tuple[str, ...]) -> None:
        self.load, self.labels, self.classes = load, labels.to(torch.int64), classes

    def sample(self, i: int, rng: np.random.Generator | None) -> torch.Tensor:
        return self.load(i, rng)


class Subset(Samples):
    """The samples of ``base`` at ``indices``, in that order (a split of a larger set, or a label budget)."""

    def __init__(self, base: Samples, indices: np.ndarray) -> None:
        self.base, self.indices = base, np.asarray(indices, dtype=np.int64)
        self.labels, self.classes = base.labels[torch.from_numpy(self.indices)], base.classes

    def sample(self, i: int, rng: np.random.Generator | None) -> torch.Tensor:
        return self.base.sample(int(self.indices[i]), rng)


def first_per_class(samples: Samples, count: int) -> Subset:
    """The first ``count`` samples of every class, in split order (a fixed few-label subset, no randomness)."""
    labels = samples.labels.numpy()
    keep = np.concatenate([np.flatnonzero(labels == c)[:count] for c in np.unique(labels)])
    return Subset(samples, np.sort(keep))


@dataclass(frozen=True)
class Splits:
    """Train and test samples of one data set at one input geometry."""

    train: Samples
    test: Samples


def shift_image(x: torch.Tensor, rng: np.random.Generator, max_shift: int) -> torch.Tensor:
    """Translate the last two axes by a random integer offset in [-max_shift, max_shift], filling with zeros."""
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def flip_image(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mirror the last axis with probability 1/2."""
    return x.flip(-1) if rng.random() < 0.5 else x


def pad_crop_flip(pad: int) -> Augment:
    """CIFAR's standard training augmentation: random crop after zero padding by ``pad``, random mirror."""
    def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return flip_image(shift_image(x, rng, pad), rng)
    return augment


def shifts(max_shift: int) -> Augment:
    """Random translation only (digits: a mirrored digit is a different or no digit)."""
    def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return shift_image(x, rng, max_shift)
    return augment
