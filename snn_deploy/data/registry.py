"""The data set table: one :class:`DatasetInfo` per name, with its facts, training defaults and opener.

``native_size`` None means the images are resampled (or the events simulated) at the model's input size;
otherwise the model is built at the data set's size. ``classes`` None means the class folders decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snn_deploy.errors import lookup
from snn_deploy.optimisation import Optimisation

if TYPE_CHECKING:
    from snn_deploy.data.base import Splits


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one data set and how to open it.

    ``opener(root, size=, frames=)`` returns the splits; ``root`` is None for built-in data. ``present(root)``
    returns the folder holding the data (None if absent). ``layout`` says what to place where.
    """

    name: str
    title: str
    kind: str
    channels: int
    classes: int | None
    native_size: int | None
    sizes: tuple[int | None, int | None]
    source: str
    defaults: Optimisation
    """Training settings used unless the command line overrides them."""
    opener: Callable[..., Splits]
    present: Callable[[Path], Path | None] | None = None
    layout: str = "built in"

    @property
    def builtin(self) -> bool:
        return self.present is None

    def frames(self, T: int) -> int | None:
        """Frames per sample for event data (the model's T); None for images, which the model repeats."""
        return T if self.kind == "events" else None


_TABLE: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> None:
    if info.name in _TABLE:
        raise ValueError(f"data set {info.name!r} registered twice")
    _TABLE[info.name] = info


def _registered() -> dict[str, DatasetInfo]:
    """The table, filled by :mod:`snn_deploy.data.catalog` on first use."""
    import snn_deploy.data.catalog  # noqa: F401 (registers every data set)

    return _TABLE


def names() -> list[str]:
    """Registered data set names, in registration order."""
    return list(_registered())


def info(name: str) -> DatasetInfo:
    """The data set called ``name``; an unknown name is a :class:`UserError` suggesting close matches."""
    return lookup(_registered(), name, what="data set", listing="snn-deploy datasets")
