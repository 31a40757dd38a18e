"""CIFAR-10 and CIFAR-100 in their published python form (``cifar-10-batches-py``, ``cifar-100-python``).

Each batch file is a Python 2 pickle of a dict: ``data`` (uint8 [N, 3072], 1024 red, 1024 green, 1024 blue values
per image, row-major 32x32) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). Pickles are read with
:mod:`.safe_pickle`, which rebuilds numpy arrays and nothing else; every field is checked before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn_deploy.data.base import Splits, TensorSamples, pad_crop_flip
from snn_deploy.data.layouts import CIFAR10, CIFAR100, CifarLayout  # noqa: F401 (CIFAR10/100: this reader's layouts)
from snn_deploy.data.safe_pickle import load_data_pickle
from snn_deploy.errors import UserError

SIZE = 32
PIXELS = 3 * SIZE * SIZE
MAX_FILE_BYTES = 256 * 2**20
"""The largest published file (CIFAR-100 ``train``, 50000 images) is about 155 MB."""


def _get(record: dict, key: str) -> Any:
    """Python 2 pickles give byte-string keys, re-saved ones text keys: accept both."""
    return record.get(key.encode(), record.get(key))


def read_batch(path: Path, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) of one batch file, validated."""
    if not path.is_file():
        raise UserError(f"{layout.title} file {path} is missing: place all of {layout.layout} in {path.parent}")
    record = load_data_pickle(path, f"{layout.title} batch file", MAX_FILE_BYTES)
    bad = f"{layout.title} batch file {path} is not a published batch"
    if not isinstance(record, dict):
        raise UserError(f"{bad} (it holds a {type(record).__name__}, not a dict); replace it with the original file")
    data, labels = _get(record, "data"), _get(record, layout.label_key)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        shape = getattr(data, "shape", None)
        raise UserError(f"{bad} ('data' is {type(data).__name__} {shape}, expected uint8 [N, {PIXELS}]); replace it "
                        f"with the original file")
    labels = np.asarray(labels if labels is not None else [], dtype=object)
    if labels.shape != (data.shape[0],) or not all(isinstance(v, (int, np.integer)) for v in labels):
        raise UserError(f"{bad} ({layout.label_key!r} must be {data.shape[0]} integers); replace it with the original "
                        f"file")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= layout.classes):
        raise UserError(f"{bad} (labels outside 0..{layout.classes - 1}); replace it with the original file")
    return data.reshape(-1, 3, SIZE, SIZE), labels


def class_names(folder: Path, layout: CifarLayout) -> tuple[str, ...]:
    """Names from the meta file if present and sane, else the class indices."""
    path = folder / layout.meta
    names = _get(load_data_pickle(path, f"{layout.title} meta file", MAX_FILE_BYTES), layout.names_key) \
        if path.is_file() else None
    if isinstance(names, list) and len(names) == layout.classes and all(isinstance(n, (bytes, str)) for n in names):
        return tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    return tuple(str(i) for i in range(layout.classes))


def _normaliser(layout: CifarLayout):
    mean = torch.tensor(layout.mean).view(3, 1, 1)
    std = torch.tensor(layout.std).view(3, 1, 1)
    return lambda x: (x.to(torch.float32) / 255.0 - mean) / std


def open_cifar(folder: Path, layout: CifarLayout) -> Splits:
    """Both splits in memory as uint8 (normalised per sample); training views: pad-4 random crop and mirror."""
    classes = class_names(folder, layout)
    parts = {}
    for split, files in (("train", layout.train), ("test", layout.test)):
        batches = [read_batch(folder / name, layout) for name in files]
        images = torch.from_numpy(np.concatenate([b[0] for b in batches]))
        labels = torch.from_numpy(np.concatenate([b[1] for b in batches]))
        parts[split] = TensorSamples(images, labels, classes, pad_crop_flip(4) if split == "train" else None,
                                     decode=_normaliser(layout))
    return Splits(parts["train"], parts["test"])
