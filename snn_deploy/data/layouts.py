"""Where each on-disk data set's files lie and how to recognise them, without torch: listing the data sets
(``snn-deploy datasets``, ``train --help``) checks what is present and prints what to place where, and must not
pay for importing torch. The readers (:mod:`~snn_deploy.data.cifar`, :mod:`~snn_deploy.data.dvs128`, ...) import
these names from here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def natural_key(path: Path) -> list:
    """Sort ``sample_2`` before ``sample_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def class_folders(folder: Path) -> list[Path]:
    """Sub-folders in natural order (spikingjelly names them 0, 1, ..., 10)."""
    return sorted((d for d in folder.iterdir() if d.is_dir()), key=natural_key)


def npz_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"), key=natural_key)


def has_npz_tree(folder: Path) -> bool:
    """``train/`` and ``test/`` folders of class folders of .npz files."""
    return all((folder / s).is_dir() for s in ("train", "test")) and \
        any(npz_files(c) for c in class_folders(folder / "train"))


# --- CIFAR-10 / CIFAR-100 (python batches) ---------------------------------------------------------------------

@dataclass(frozen=True)
class CifarLayout:
    """File names and keys of one CIFAR variant, and its normalisation constants (per channel)."""

    title: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def looks_right(self, folder: Path) -> bool:
        return (folder / self.train[0]).is_file()

    @property
    def layout(self) -> str:
        return f"the python version's files ({', '.join(self.train + self.test + (self.meta,))})"


CIFAR10 = CifarLayout("CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                      ("test_batch",), "batches.meta", "labels", "label_names", 10,
                      (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100 = CifarLayout("CIFAR-100", "cifar-100-python", ("train",), ("test",), "meta", "fine_labels",
                       "fine_label_names", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


# --- ImageFolder trees -------------------------------------------------------------------------------------------

IMAGEFOLDER_TEST_SPLITS = ("val", "test")


def imagefolder_looks_right(folder: Path) -> bool:
    return (folder / "train").is_dir() and any((folder / s).is_dir() for s in IMAGEFOLDER_TEST_SPLITS)


# --- DVS128 Gesture ----------------------------------------------------------------------------------------------

DVS128_TRIALS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
DVS128_LAYOUT = ("the original DvsGesture files (userNN_*.aedat, userNN_*_labels.csv, trials_to_train.txt, "
                 "trials_to_test.txt) or a pre-processed tree train|test/<class>/*.npz")


def dvs128_looks_right(folder: Path) -> bool:
    return (folder / DVS128_TRIALS["train"]).is_file() or has_npz_tree(folder)


# --- CIFAR10-DVS -------------------------------------------------------------------------------------------------

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10DVS_LAYOUT = "the class folders (airplane/ ... truck/) of .aedat files, or a pre-processed tree of .npz files"


def cifar10dvs_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.aedat"), *folder.glob("*.npz")], key=natural_key)


def cifar10dvs_looks_right(folder: Path) -> bool:
    return has_npz_tree(folder) or any((folder / c).is_dir() and cifar10dvs_files(folder / c)
                                       for c in CIFAR10DVS_CLASSES)
