"""Loading pickles that hold only data (CIFAR's python batches) without ever running code from them.

A pickle names callables that the loader invokes; the standard unpickler imports and calls whatever the file
names (``os.system`` included). :class:`DataUnpickler` resolves only the handful of globals that rebuild numpy
arrays and Python 2 byte strings, and refuses everything else before anything is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from snn_deploy.errors import UserError

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): lambda text, encoding="utf-8": text.encode(encoding),  # Python 3 protocol-2 bytes
}
"""(module, name) -> the object it resolves to. ``_codecs.encode`` only turns a str into bytes."""


class DataUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` knows only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def load_data_pickle(path: Path, what: str, max_bytes: int) -> Any:
    """Unpickle ``path`` (a Python 2 or 3 pickle of dicts, lists, numbers, bytes and numpy arrays).

    Byte strings stay bytes (``encoding='bytes'``), as CIFAR's Python 2 files need. Any forbidden global, a
    truncated stream or a file larger than ``max_bytes`` is a :class:`UserError`.
    """
    size = path.stat().st_size
    if size == 0 or size > max_bytes:
        raise UserError(f"{what} {path} has {size} bytes, expected 1..{max_bytes}: it is not the published file; "
                        f"replace it with the original")
    data = path.read_bytes()
    try:
        return DataUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if "forbidden global" in str(exc):
            raise UserError(f"refusing to load {what} {path}: it references {str(exc).split()[-1]}, which a data "
                            f"file never needs (it could run code); replace it with the original file") from None
        raise UserError(f"{what} {path} is corrupt ({exc}); replace it with the original file") from None
    except (EOFError, ValueError, TypeError, IndexError, AttributeError, MemoryError) as exc:
        raise UserError(f"{what} {path} is truncated or corrupt ({type(exc).__name__}: {exc}); replace it with the "
                        f"original file") from None
