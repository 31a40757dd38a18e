"""CIFAR10-DVS (Li et al., 2017): 10000 CIFAR-10 images (1000 per class) recorded by a moving DVS128 camera.

Published layout: one folder per class (``airplane`` ... ``truck``) of AEDAT 2.0 files. Coordinates follow
spikingjelly, which the papers' training code uses: x = 127 - y_raw, y = x_raw, polarity = 1 - raw bit
(1 = ON). There is no official split: per class, the first 90 % of the files in natural name order train, the rest
test (900 / 100 per class). Alternatively a pre-processed tree of ``.npz`` files: ``train|test/<class>/`` or
``<class>/`` (split the same way).
"""

from __future__ import annotations

from pathlib import Path

import torch

from snn_deploy.data.aedat import read_aedat2_dvs128
from snn_deploy.data.base import LazySamples, Splits
from snn_deploy.data.events import Events, frames_by_number
from snn_deploy.data.layouts import CIFAR10DVS_CLASSES as CLASSES, CIFAR10DVS_LAYOUT as LAYOUT
from snn_deploy.data.layouts import cifar10dvs_files as files_in, cifar10dvs_looks_right as looks_right
from snn_deploy.data.npzframes import has_npz_tree, load_sample, open_npz_tree
from snn_deploy.errors import UserError

SIZE = 128
TRAIN_FRACTION = 0.9


def read_recording(path: Path) -> Events:
    raw = read_aedat2_dvs128(path)
    return Events(x=(SIZE - 1) - raw.y, y=raw.x, p=1 - raw.p, t=raw.t)


def load(path: Path, T: int) -> torch.Tensor:
    if path.suffix == ".npz":
        return load_sample(path, T=T, size=SIZE)
    return torch.from_numpy(frames_by_number(read_recording(path), T, SIZE, SIZE, str(path)))


def open_cifar10dvs(folder: Path, *, T: int) -> Splits:
    """Lazy splits: each access reads and integrates one file."""
    if has_npz_tree(folder):
        return open_npz_tree(folder, T=T, size=SIZE)
    missing = [c for c in CLASSES if not (folder / c).is_dir() or not files_in(folder / c)]
    if missing:
        raise UserError(f"CIFAR10-DVS in {folder} lacks class folder(s) {', '.join(missing)}: place {LAYOUT} there")
    split: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(CLASSES):
        files = files_in(folder / name)
        cut = int(round(TRAIN_FRACTION * len(files)))
        for name, chosen in (("train", files[:cut]), ("test", files[cut:])):
            split[name][0].extend(chosen)
            split[name][1].extend([label] * len(chosen))

    def samples(files: list[Path], labels: list[int]) -> LazySamples:
        return LazySamples(lambda i, rng: load(files[i], T), torch.tensor(labels, dtype=torch.int64), CLASSES)

    return Splits(samples(*split["train"]), samples(*split["test"]))
