"""Safe reading of PyTorch files (model files and training checkpoints): tensors in, never code.

Everything goes through ``torch.load(path, map_location='cpu', weights_only=True)``, whose unpickler refuses any
global it does not know (``os.system`` and friends) instead of calling it. Cheap checks run first so the common
mistakes (wrong path, empty or huge file, not a zip archive) get a precise message, and so a decompression bomb is
refused before anything is inflated: ``torch.save`` stores its records uncompressed, so an archive whose entries
declare more than :data:`MAX_INFLATION` times its own size (plus :data:`INFLATION_SLACK`) is refused. Tensors are
then mapped from the file (``mmap=True``), so a storage that declares more bytes than the file holds allocates
nothing before torch refuses it.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from snn_deploy.errors import UserError

ZIP_MAGIC = b"PK\x03\x04"
"""torch.save has written zip archives since PyTorch 1.6."""
MAX_FILE_BYTES = 4 * 2**30
"""Larger than any model of the zoo in float32 with its optimizer state (the 172 M model is ~0.7 GB)."""
MAX_INFLATION = 2
INFLATION_SLACK = 16 * 2**20


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_file(path: Path, what: str) -> None:
    """Existence, size and zip signature of ``path``; raises :class:`UserError` naming the problem."""
    if not path.exists():
        raise UserError(f"{what} {path} not found: check the path")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes): it was not written completely; create it again")
    if size > MAX_FILE_BYTES:
        raise UserError(f"{what} {path} is {size} bytes, more than {MAX_FILE_BYTES} (no supported model is that "
                        f"large): check that this is the right file")
    with path.open("rb") as f:
        if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise UserError(f"{what} {path} is not a PyTorch zip archive (torch.save since PyTorch 1.6): "
                            f"check that this is the right file, or re-save it with torch.save")
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{what} {path} is truncated or corrupt ({_first_line(exc)}): create or download it "
                        f"again") from None
    if inflated > MAX_INFLATION * size + INFLATION_SLACK or inflated > MAX_FILE_BYTES:
        raise UserError(f"{what} {path} declares {inflated} bytes of content in a {size}-byte archive (torch.save "
                        f"stores tensors uncompressed; a decompression bomb?): check that this is the right file")


def read_torch_file(path: str | Path, what: str, allowed_globals: Iterable[type] = ()) -> Any:
    """Load ``path`` with ``weights_only=True``; ``allowed_globals`` are extra plain-data classes to accept.

    Errors are :class:`UserError`: missing/empty/oversized/non-zip file, pickled code (the offending global is
    named, nothing is executed), truncated or corrupt archive.
    """
    path = Path(path)
    check_file(path, what)
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise UserError(f"refusing to load {what} {path}: it contains pickled code ({found.group(1)}) that could "
                            f"run arbitrary commands; only tensors and plain data are accepted, so re-save just the "
                            f"state dict from a source you trust") from None
        raise UserError(f"{what} {path} is corrupt ({_first_line(exc)}): create or download it again") from None
    except Exception as exc:  # torch reports damaged archives as RuntimeError, EOFError, zipfile errors, ...
        raise UserError(f"{what} {path} is truncated or corrupt ({_first_line(exc)}): create or download it "
                        f"again") from None
