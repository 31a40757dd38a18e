"""Writers of small files in the published formats of the on-disk data sets (test fixtures only)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def write_cifar10(folder: Path, per_batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``cifar-10-batches-py`` with 5 training batches and a test batch of ``per_batch`` images each."""
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        record = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                  b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
        written[name] = data
    meta = {b"label_names": CIFAR10_NAMES, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def write_image_tree(root: Path, classes: list[str], per_class: int, rng: np.random.Generator) -> None:
    """``root/train/<class>/`` and ``root/val/<class>/`` with JPEG and PNG images of assorted sizes."""
    from PIL import Image

    for split in ("train", "val"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                h, w = (int(v) for v in rng.integers(20, 60, size=2))
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")


AEDAT3_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def aedat3_bytes(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray, packet: int = 50) -> bytes:
    """AEDAT 3.1 polarity packets (type 1, 8-byte events, valid bit set) of ``packet`` events each."""
    out = [AEDAT3_HEADER]
    for start in range(0, x.size, packet):
        sl = slice(start, start + packet)
        n = x[sl].size
        overflow = int(t[sl][0] >> 31)
        out.append(struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, n))
        data = (x[sl].astype(np.uint32) << 17) | (y[sl].astype(np.uint32) << 2) | (p[sl].astype(np.uint32) << 1) | 1
        words = np.stack([data, (t[sl] & 0x7FFFFFFF).astype(np.uint32)], axis=1).astype("<u4")
        out.append(words.tobytes())
    return b"".join(out)


def write_dvs_gesture(folder: Path, rng: np.random.Generator) -> dict[str, list[tuple[int, np.ndarray]]]:
    """``DvsGesture/`` with two recordings (one per split), three labelled gestures each."""
    folder.mkdir(parents=True)
    segments: dict[str, list[tuple[int, np.ndarray]]] = {}
    for split, user in (("train", "user01_fluorescent"), ("test", "user24_led")):
        n = 600
        t = np.sort(rng.integers(0, 3_000_000, size=n)).astype(np.int64)
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        (folder / f"{user}.aedat").write_bytes(aedat3_bytes(x, y, p, t))
        rows = [(1, 100_000, 900_000), (5, 1_000_000, 1_800_000), (11, 2_000_000, 2_900_000)]
        (folder / f"{user}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{a},{b}\n" for c, a, b in rows))
        (folder / f"trials_to_{split}.txt").write_text(f"{user}.aedat\n")
        segments[split] = [(c - 1, np.flatnonzero((t >= a) & (t < b))) for c, a, b in rows]
        segments[split + "_events"] = [x, y, p, t]  # type: ignore[list-item]
    return segments


def aedat2_bytes(x_raw: np.ndarray, y_raw: np.ndarray, p_raw: np.ndarray, t: np.ndarray) -> bytes:
    """AEDAT 2.0 (jAER) DVS128 events: big-endian (address, timestamp) pairs after '#' header lines."""
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address\r\n"
    addr = (y_raw.astype(np.uint32) << 8) | (x_raw.astype(np.uint32) << 1) | p_raw.astype(np.uint32)
    return header + np.stack([addr, t.astype(np.uint32)], axis=1).astype(">u4").tobytes()


def write_npz_tree(root: Path, classes: list[str], per_class: int, T: int, size: int,
                   rng: np.random.Generator) -> None:
    """``root/{train,test}/<class>/<i>.npz`` holding ``frames`` [T, 2, size, size]."""
    for split in ("train", "test"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                np.savez(folder / f"{i}.npz", frames=rng.integers(0, 5, size=(T, 2, size, size)).astype(np.float32))
