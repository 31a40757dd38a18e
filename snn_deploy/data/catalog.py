"""Every data set snn-deploy knows, registered in one place, and :func:`open_splits`.

Registering imports no torch (the facts, presence tests and layouts come from :mod:`~snn_deploy.data.layouts`;
each reader is imported when its data set is opened), so listing the data sets starts fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from snn_deploy.data import layouts
from snn_deploy.data.layouts import CIFAR10, CIFAR100, CifarLayout
from snn_deploy.data.paths import data_root, locate, require
from snn_deploy.data.registry import DatasetInfo, info, register
from snn_deploy.optimisation import Optimisation

if TYPE_CHECKING:
    from snn_deploy.data.base import Splits

DIGITS_DEFAULTS = Optimisation(epochs=20, batch_size=16, lr=3e-3, weight_decay=0.01, warmup_epochs=1)
NDIGITS_DEFAULTS = Optimisation(epochs=25, batch_size=16, lr=5e-3, weight_decay=0.01, warmup_epochs=1)
CIFAR_DEFAULTS = Optimisation(epochs=300, batch_size=128, lr=5e-4, weight_decay=0.06, warmup_epochs=20)
IMAGENET_DEFAULTS = Optimisation(epochs=300, batch_size=128, lr=5e-4, weight_decay=0.05, warmup_epochs=20,
                                 label_smoothing=0.1)
DVS_DEFAULTS = Optimisation(epochs=200, batch_size=16, lr=1e-3, weight_decay=0.06, warmup_epochs=10)


def _reader(module: str):
    """The reader module of a data set, imported when the data set is opened (readers import torch)."""
    return importlib.import_module(f"snn_deploy.data.{module}")


def _finder(folder: str, looks_right: Callable[[Path], bool]) -> Callable[[Path], Path | None]:
    return lambda root: locate(root, folder, looks_right)


def _on_disk(title: str, folder: str, looks_right: Callable[[Path], bool], layout: str,
             open_found: Callable[[Path, int, int | None], Splits]) -> Callable[..., Splits]:
    """An opener that finds the data under the root (or fails with the layout) and opens it."""
    def opener(root: Path, size: int, frames: int | None) -> Splits:
        return open_found(require(root, folder, looks_right, title, layout), size, frames)
    return opener


def _cifar(name: str, layout: CifarLayout, source: str) -> DatasetInfo:
    return DatasetInfo(
        name, f"{layout.title} (python batches)", "image", channels=3, classes=layout.classes, native_size=32,
        sizes=(50000, 10000), source=source, defaults=CIFAR_DEFAULTS,
        opener=_on_disk(layout.title, layout.folder, layout.looks_right, layout.layout,
                        lambda folder, size, frames: _reader("cifar").open_cifar(folder, layout)),
        present=_finder(layout.folder, layout.looks_right), layout=f"{layout.folder}/: {layout.layout}")


def _imagefolder(name: str, title: str, folder: str, classes: int | None, sizes: tuple[int | None, int | None],
                 defaults: Optimisation) -> DatasetInfo:
    layout = "train/<class>/*.jpg|png and val/<class>/*.jpg|png"
    return DatasetInfo(
        name, title, "image", channels=3, classes=classes, native_size=None, sizes=sizes,
        source="your ImageFolder tree", defaults=defaults,
        opener=_on_disk(title, folder, layouts.imagefolder_looks_right, layout,
                        lambda found, size, frames: _reader("imagefolder").open_imagefolder(found, size)),
        present=_finder(folder, layouts.imagefolder_looks_right), layout=f"{folder}/: {layout}")


register(DatasetInfo(
    "digits", "handwritten digits (scikit-learn)", "image", channels=1, classes=10, native_size=None,
    sizes=(1442, 355), source="scikit-learn load_digits (UCI optdigits), bundled", defaults=DIGITS_DEFAULTS,
    opener=lambda root, size, frames: _reader("digits").open_digits(size)))
register(DatasetInfo(
    "n-digits", "digits seen by a simulated event camera", "events", channels=2, classes=10, native_size=None,
    sizes=(1442, 355), source="generated: digits + saccades + DVS pixel model (docs/datasets.md)",
    defaults=NDIGITS_DEFAULTS, opener=lambda root, size, frames: _reader("ndigits").open_ndigits(size, frames)))
register(_cifar("cifar10", CIFAR10, "cs.toronto.edu/~kriz/cifar-10-python.tar.gz"))
register(_cifar("cifar100", CIFAR100, "cs.toronto.edu/~kriz/cifar-100-python.tar.gz"))
register(_imagefolder("imagenet", "ImageNet-1k (ImageFolder tree)", "imagenet", 1000, (1281167, 50000),
                      IMAGENET_DEFAULTS))
register(_imagefolder("imagefolder", "any ImageFolder tree", "imagefolder", None, (None, None), IMAGENET_DEFAULTS))
register(DatasetInfo(
    "dvs128-gesture", "DVS128 Gesture (IBM)", "events", channels=2, classes=11, native_size=128, sizes=(1176, 288),
    source="research.ibm.com/dvsgesture (DvsGesture.tar.gz)", defaults=DVS_DEFAULTS,
    opener=_on_disk("DVS128 Gesture", "DvsGesture", layouts.dvs128_looks_right, layouts.DVS128_LAYOUT,
                    lambda found, size, frames: _reader("dvs128").open_dvs128(found, T=frames)),
    present=_finder("DvsGesture", layouts.dvs128_looks_right), layout=f"DvsGesture/: {layouts.DVS128_LAYOUT}"))
register(DatasetInfo(
    "cifar10-dvs", "CIFAR10-DVS", "events", channels=2, classes=10, native_size=128, sizes=(9000, 1000),
    source="figshare CIFAR10-DVS (Li et al. 2017)", defaults=DVS_DEFAULTS,
    opener=_on_disk("CIFAR10-DVS", "CIFAR10-DVS", layouts.cifar10dvs_looks_right, layouts.CIFAR10DVS_LAYOUT,
                    lambda found, size, frames: _reader("cifar10dvs").open_cifar10dvs(found, T=frames)),
    present=_finder("CIFAR10-DVS", layouts.cifar10dvs_looks_right),
    layout=f"CIFAR10-DVS/: {layouts.CIFAR10DVS_LAYOUT}"))


def open_splits(name: str, *, size: int, T: int, data_dir: str | Path | None = None) -> Splits:
    """Train and test samples of ``name`` at ``size`` pixels (event data: ``T`` frames per sample)."""
    entry: DatasetInfo = info(name)
    root = None if entry.builtin else data_root(data_dir)
    return entry.opener(root, size=entry.native_size or size, frames=entry.frames(T))
