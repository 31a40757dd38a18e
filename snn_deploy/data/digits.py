"""``digits``: the 1797 real 8x8 handwritten digits shipped with scikit-learn (UCI optdigits test set).

Split: per class, every fifth image (positions 4, 9, 14, ... of that class in file order) is a test image, the
rest train: 1442 train / 355 test, fixed forever, no random state involved. Pixels 0..16 become [0, 1]; images
are upsampled bilinearly when the model wants 16x16 or 32x32.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.data.base import Splits, Subset, TensorSamples, shifts
from snn_deploy.errors import UserError

NATIVE = 8
SIZES = (8, 16, 32)
TEST_EVERY = 5
CLASSES = tuple(str(d) for d in range(10))


@lru_cache(maxsize=1)
def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images float64 [1797, 8, 8] in 0..16, labels int64 [1797]) from scikit-learn's bundled file."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: every fifth image of each class (in file order) is a test image."""
    test = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):
        test[np.flatnonzero(labels == c)[TEST_EVERY - 1::TEST_EVERY]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def resample(images: np.ndarray, size: int) -> torch.Tensor:
    """[N, 8, 8] in 0..16 -> float32 [N, 1, size, size] in [0, 1] (bilinear, half-pixel centres)."""
    x = torch.from_numpy(images / 16.0).to(torch.float32).unsqueeze(1)
    return x if size == NATIVE else F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def check_size(size: int) -> None:
    if size not in SIZES:
        raise UserError(f"digits come at {', '.join(map(str, SIZES))} pixels, not {size}: pick a model whose input "
                        f"size is one of these (e.g. qkformer-tiny-8x8 or qkformer-tiny)")


def open_digits(size: int, **_: object) -> Splits:
    """Train/test splits at ``size`` x ``size``; training views shift by up to one native pixel."""
    check_size(size)
    images, labels = raw_digits()
    x, y = resample(images, size), torch.from_numpy(labels)
    full = TensorSamples(x, y, CLASSES, shifts(size // NATIVE))
    train, test = split_indices(labels)
    return Splits(Subset(full, train), Subset(full, test))
