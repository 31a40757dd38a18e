"""DVS128 Gesture (IBM, 2017): 11 gestures by 29 people under 5 lighting conditions, 128x128 DVS.

Published layout (``DvsGesture/``): ``userNN_<lighting>.aedat`` (AEDAT 3.1), ``userNN_<lighting>_labels.csv``
(``class,startTime_usec,endTime_usec``; classes 1..11) and ``trials_to_train.txt`` / ``trials_to_test.txt``
(the official split by person: 1176 train / 288 test labelled segments). A sample is the
events of one labelled segment (``start <= t < end``), integrated into T frames by event number.
Alternatively a pre-processed tree ``train|test/<class>/*.npz`` (see :mod:`.npzframes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snn_deploy.data.aedat import read_aedat3
from snn_deploy.data.base import LazySamples, Splits
from snn_deploy.data.events import Events, frames_by_number
from snn_deploy.data.layouts import DVS128_LAYOUT as LAYOUT, DVS128_TRIALS as TRIALS
from snn_deploy.data.layouts import dvs128_looks_right as looks_right
from snn_deploy.data.npzframes import open_npz_tree
from snn_deploy.errors import UserError

SIZE = 128
CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
           "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll",
           "air_drums", "air_guitar", "other_gestures")


def read_labels(path: Path) -> np.ndarray:
    """[K, 3] int64 rows (class 0..10, start us, end us) of a labels csv, validated."""
    if not path.is_file():
        raise UserError(f"label file {path} is missing: every .aedat recording needs its _labels.csv beside it")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        cells = [c.strip() for c in line.split(",")]
        if number == 1 and not cells[0].isdigit():
            continue  # header
        if not line.strip():
            continue
        if len(cells) != 3 or not all(c.isdigit() for c in cells):
            raise UserError(f"{path} line {number}: expected 'class,startTime_usec,endTime_usec' integers; "
                            f"got {line!r}")
        label, start, end = map(int, cells)
        if not 1 <= label <= len(CLASSES) or end <= start:
            raise UserError(f"{path} line {number}: class {label} (expected 1..{len(CLASSES)}) or times {start}..{end} "
                            f"are invalid")
        rows.append((label - 1, start, end))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def pack(events: Events) -> np.ndarray:
    """Events as uint16 codes x * 256 + y * 2 + p (2 bytes per event instead of 32), order kept."""
    return (events.x * 256 + events.y * 2 + events.p).astype(np.uint16)


def unpack(codes: np.ndarray) -> Events:
    c = codes.astype(np.int64)
    return Events(x=c >> 8, y=(c >> 1) & 0x7F, p=c & 1, t=np.zeros(c.size, np.int64))


def segments(folder: Path, split: str) -> tuple[list[np.ndarray], list[int]]:
    """Packed events and labels of every labelled segment of the recordings listed for ``split``."""
    listing = folder / TRIALS[split]
    if not listing.is_file():
        raise UserError(f"{listing} is missing: place {LAYOUT} in {folder}")
    codes, labels = [], []
    for name in (line.strip() for line in listing.read_text().splitlines()):
        if not name:
            continue
        recording = folder / name
        events = read_aedat3(recording)
        if len(events) and (events.x.max() >= SIZE or events.y.max() >= SIZE):
            raise UserError(f"{recording}: events outside the 128x128 sensor; this is not a DVS128 recording")
        for label, start, end in read_labels(recording.with_name(recording.stem + "_labels.csv")):
            codes.append(pack(events.select((events.t >= start) & (events.t < end))))
            labels.append(int(label))
    return codes, labels


def open_dvs128(folder: Path, *, T: int) -> Splits:
    """Splits from the original recordings (parsed once, kept packed in memory) or from an npz tree."""
    if not (folder / TRIALS["train"]).is_file():
        return open_npz_tree(folder, T=T, size=SIZE)
    parts = []
    for split in ("train", "test"):
        codes, labels = segments(folder, split)
        load = (lambda c: lambda i, rng: torch.from_numpy(
            frames_by_number(unpack(c[i]), T, SIZE, SIZE, f"DVS128 Gesture {split} sample {i}")))(codes)
        parts.append(LazySamples(load, torch.tensor(labels, dtype=torch.int64), CLASSES))
    return Splits(*parts)
