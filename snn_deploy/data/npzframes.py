"""Per-sample ``.npz`` files, the form most DVS pipelines (spikingjelly) store pre-processed samples in.

A file holds either ``frames`` ([T, 2, H, W] counts, already integrated) or the events ``x``, ``y``, ``p`` (and
``t``), which are integrated here. Array headers are checked before any array is read or inflated: against the
stored byte counts, against the frame shape the model needs, and against :data:`MAX_SAMPLE_BYTES` in total (a
small, highly compressed file cannot inflate to gigabytes); object arrays are refused (``allow_pickle=False``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from snn_deploy.data.events import Events, frames_by_number
from snn_deploy.data.layouts import class_folders, has_npz_tree, natural_key, npz_files  # noqa: F401
from snn_deploy.errors import UserError

MAX_ELEMENTS = 2**31
MAX_SAMPLE_BYTES = 512 * 2**20
"""Uncompressed bytes of one sample's arrays: far above a DVS128 recording's events (~1 M events, 24 MB)."""
EVENT_KEYS = ("x", "y", "p")


def checked_arrays(path: Path, keys: tuple[str, ...], shapes: dict[str, tuple[int, ...]] | None = None,
                   hint: str = "") -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an npz file after checking each header's shape and dtype against its byte count, the
    ``shapes`` required (``hint``, formatted with the declared shape, says how to fix a mismatch) and
    :data:`MAX_SAMPLE_BYTES`."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name[:-4]: archive.getinfo(name) for name in archive.namelist() if name.endswith(".npy")}
            missing = [k for k in keys if k not in members]
            if missing:
                raise UserError(f"{path} has no array {missing[0]!r} (it has {', '.join(sorted(members)) or 'none'}); "
                                f"expected 'frames' or the events 'x', 'y', 'p'")
            declared = 0
            for key in keys:
                with archive.open(members[key]) as f:
                    fmt = np.lib.format
                    major, _ = fmt.read_magic(f)
                    shape, _, dtype = (fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0)(f)
                    stored = members[key].file_size - f.tell()
                count = int(np.prod(shape, dtype=np.int64))
                if dtype.hasobject or count > MAX_ELEMENTS or count * dtype.itemsize != stored:
                    raise UserError(f"{path}: array {key!r} declares {dtype} {tuple(shape)} but stores {stored} bytes; "
                                    f"the file is truncated or damaged")
                wanted = (shapes or {}).get(key)
                if wanted is not None and tuple(shape) != wanted:
                    raise UserError(f"{path} holds {key} of shape {tuple(shape)}, this model needs {wanted}; "
                                    f"{hint.format(*shape)}")
                declared += stored
                if declared > MAX_SAMPLE_BYTES:
                    raise UserError(f"{path} declares {declared} bytes of arrays, more than {MAX_SAMPLE_BYTES} for "
                                    f"one sample (a decompression bomb?); regenerate the file")
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}); regenerate it") from None


def load_sample(path: Path, *, T: int, size: int) -> torch.Tensor:
    """Frames [T, 2, size, size] float32 from a frames or events npz file."""
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a .npz (zip) file; regenerate it")
    with zipfile.ZipFile(path) as archive:
        has_frames = "frames.npy" in archive.namelist()
    if has_frames:
        frames = checked_arrays(path, ("frames",), {"frames": (T, 2, size, size)},
                                "pass --time-steps {0} if the sizes otherwise match, or regenerate the frames")["frames"]
        return torch.from_numpy(frames.astype(np.float32))
    arrays = checked_arrays(path, EVENT_KEYS)
    n = arrays["x"].size
    if any(arrays[k].shape != (n,) for k in EVENT_KEYS):
        raise UserError(f"{path}: event arrays x, y, p must be 1-D of equal length; regenerate the file")
    events = Events(arrays["x"].astype(np.int64), arrays["y"].astype(np.int64),
                    (arrays["p"] > 0).astype(np.int64), np.zeros(n, np.int64))
    return torch.from_numpy(frames_by_number(events, T, size, size, str(path)))



def tree_samples(folders: list[Path], classes: tuple[str, ...], files_of, *, T: int, size: int):
    """Lazy samples of per-class folders (label = position in ``folders``); ``files_of(folder)`` picks files."""
    from snn_deploy.data.base import LazySamples

    files, labels = [], []
    for label, folder in enumerate(folders):
        chosen = files_of(folder)
        files += chosen
        labels += [label] * len(chosen)
    return LazySamples(lambda i, rng: load_sample(files[i], T=T, size=size), torch.tensor(labels, dtype=torch.int64),
                       classes)


def open_npz_tree(folder: Path, *, T: int, size: int):
    """Splits from ``train/<class>/*.npz`` and ``test/<class>/*.npz`` (class names from ``train``)."""
    from snn_deploy.data.base import Splits

    train_folders = class_folders(folder / "train")
    classes = tuple(d.name for d in train_folders)
    test_folders = [folder / "test" / name for name in classes]
    missing = [d for d in test_folders if not d.is_dir()]
    if missing:
        raise UserError(f"{missing[0]} is missing: test/ must have the same class folders as train/")
    return Splits(tree_samples(train_folders, classes, npz_files, T=T, size=size),
                  tree_samples(test_folders, classes, npz_files, T=T, size=size))
