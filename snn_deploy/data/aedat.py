"""Readers for the two AEDAT versions the DVS data sets were published in. Every size is checked before the
bytes are used, so a truncated or foreign file is one clear error, never a garbage sample.

* AEDAT 3.1 (DVS128 Gesture): ASCII header lines ``#...`` ending with ``#!END-HEADER\\r\\n``, then packets of a
  28-byte little-endian header (type int16, source int16, eventSize, eventTSOffset, eventTSOverflow,
  eventCapacity, eventNumber, eventValid: int32) and ``eventCapacity * eventSize`` bytes. Polarity events (type 1)
  are (uint32 data, int32 timestamp): valid = bit 0, polarity = bit 1, y = bits 2-16, x = bits 17-31; the full
  timestamp is ``timestamp | eventTSOverflow << 31``. Invalid events are skipped.
* AEDAT 2.0 (jAER; CIFAR10-DVS): ``#`` header lines, then big-endian (uint32 address, uint32 timestamp) pairs.
  DVS128 addresses: x = bits 1-7, y = bits 8-14, polarity = bit 0 (1 = OFF in jAER).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from snn_deploy.data.events import Events
from snn_deploy.errors import UserError

MAX_FILE_BYTES = 4 * 2**30
PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
END_HEADER_31 = b"#!END-HEADER\r\n"


def read_file(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise UserError(f"{what} {path} is missing: restore the data set's files")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(f"{what} {path} has {size} bytes, more than any recording ({MAX_FILE_BYTES}); check the file")
    return path.read_bytes()


def split_header(data: bytes, path: Path) -> tuple[str, int]:
    """(version, offset of the first binary byte): header lines start with ``#``; the first names the version."""
    if not data.startswith(b"#!AER-DAT"):
        raise UserError(f"{path} is not an AEDAT file (no '#!AER-DAT' header line); check that this is the data set's "
                        f"original recording")
    version = data[len(b"#!AER-DAT"):data.find(b"\n")].decode("ascii", "replace").strip()
    end = data.find(END_HEADER_31)
    if version.startswith("3"):
        if end < 0:
            raise UserError(f"{path} is an AEDAT {version} file without '#!END-HEADER': it is truncated; restore it")
        return version, end + len(END_HEADER_31)
    offset = 0
    while offset < len(data) and data[offset:offset + 1] == b"#":
        nl = data.find(b"\n", offset)
        if nl < 0:
            raise UserError(f"{path}: the AEDAT header never ends: the file is truncated; restore it")
        offset = nl + 1
    return version, offset


def read_aedat3(path: Path) -> Events:
    """Polarity events of an AEDAT 3.1 file, in file order (time order for a camera recording)."""
    data = read_file(path, "AEDAT file")
    version, offset = split_header(data, path)
    if not version.startswith("3"):
        raise UserError(f"{path} is AEDAT {version}, expected 3.1 (DVS128 Gesture's format); check the file")
    xs, ys, ps, ts = [], [], [], []
    while offset < len(data):
        if len(data) - offset < PACKET_HEADER.size:
            raise UserError(f"{path}: truncated packet header at byte {offset}; the file is incomplete, restore it")
        kind, _, size, _, overflow, capacity, number, _ = PACKET_HEADER.unpack_from(data, offset)
        offset += PACKET_HEADER.size
        body = capacity * size
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or body > len(data) - offset:
            raise UserError(f"{path}: packet at byte {offset - PACKET_HEADER.size} declares {capacity} events of "
                            f"{size} bytes but {len(data) - offset} bytes remain; the file is truncated or damaged")
        if kind == POLARITY_EVENT:
            if size < 8 or size % 4:
                raise UserError(f"{path}: polarity packet with {size}-byte events (expected 8); the file is damaged")
            words = np.frombuffer(data, dtype="<u4", count=body // 4, offset=offset).reshape(capacity, size // 4)
            addr, stamp = words[:, 0], words[:, 1].astype(np.int64)
            valid = (addr & 1) == 1
            xs.append(((addr >> 17) & 0x7FFF)[valid])
            ys.append(((addr >> 2) & 0x7FFF)[valid])
            ps.append(((addr >> 1) & 1)[valid])
            ts.append((stamp | (np.int64(overflow) << 31))[valid])
        offset += body
    if not xs:
        return Events(*(np.zeros(0, np.int64) for _ in range(4)))
    return Events(*(np.concatenate(parts).astype(np.int64) for parts in (xs, ys, ps, ts)))


def read_aedat2_dvs128(path: Path) -> Events:
    """Events of an AEDAT 2.0 DVS128 recording (raw sensor coordinates, jAER polarity bit)."""
    data = read_file(path, "AEDAT file")
    version, offset = split_header(data, path)
    if not version.startswith("2"):
        raise UserError(f"{path} is AEDAT {version}, expected 2.0 (CIFAR10-DVS's format); check the file")
    body = len(data) - offset
    if body % 8:
        raise UserError(f"{path}: {body} event bytes is not a whole number of 8-byte events; the file is truncated")
    words = np.frombuffer(data, dtype=">u4", offset=offset).reshape(-1, 2)
    addr, stamp = words[:, 0].astype(np.int64), words[:, 1].astype(np.int64)
    return Events(x=(addr & 0xFE) >> 1, y=(addr & 0x7F00) >> 8, p=addr & 1, t=stamp)
