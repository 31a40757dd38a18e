"""Where on-disk data sets live: ``--data-dir``, else ``$SNN_DEPLOY_DATA``, else ``./data``.

The root may be the data set's own folder or a parent holding it under its usual name (``cifar-10-batches-py``,
``DvsGesture``, ...), so both ``--data-dir ~/data`` and ``--data-dir ~/data/cifar-10-batches-py`` work. Nothing is
ever downloaded: a missing data set is one :class:`UserError` line saying what to place where.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from snn_deploy.errors import UserError

ENV_VAR = "SNN_DEPLOY_DATA"
DEFAULT_ROOT = Path("data")


def data_root(data_dir: str | Path | None) -> Path:
    """The root to search: the explicit option, then the environment variable, then ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_ROOT


def locate(root: Path, folder: str, looks_right: Callable[[Path], bool]) -> Path | None:
    """``root`` itself if it holds the data set, else ``root/folder`` if that does; None if neither."""
    for candidate in (root, root / folder):
        if candidate.is_dir() and looks_right(candidate):
            return candidate
    return None


def require(root: Path, folder: str, looks_right: Callable[[Path], bool], title: str, layout: str) -> Path:
    """:func:`locate` or a one-line error naming the expected layout, the place searched and the two options."""
    found = locate(root, folder, looks_right)
    if found is None:
        raise UserError(f"{title} not found in {root} (nor in {root / folder}): place {layout} in {root / folder}, "
                        f"or pass --data-dir / set {ENV_VAR} to the folder that holds it (nothing is downloaded)")
    return found
