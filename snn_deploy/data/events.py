"""Event streams to frames: the integration every DVS pipeline of the three papers uses (spikingjelly's
``integrate_events_by_fixed_frames_number`` with ``split_by='number'``).

Events in time order are cut into T slices of ``N // T`` events (the last slice takes the remainder); each frame
counts, per polarity and pixel, the events of its slice. Channel 0 holds polarity 0 (OFF), channel 1 polarity 1
(ON).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_deploy.errors import UserError


@dataclass(frozen=True)
class Events:
    """One recording: pixel coordinates, polarity (0 = OFF, 1 = ON) and time in microseconds, in time order."""

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)

    def select(self, mask: np.ndarray) -> "Events":
        return Events(self.x[mask], self.y[mask], self.p[mask], self.t[mask])


def frames_by_number(events: Events, frames: int, height: int, width: int, where: str) -> np.ndarray:
    """Integrate ``events`` into ``[frames, 2, height, width]`` float32 counts (split by event number).

    Coordinates outside the sensor mean the file is not what its name says: :class:`UserError` naming ``where``.
    """
    n = len(events)
    if n and (events.x.max() >= width or events.y.max() >= height or events.x.min() < 0 or events.y.min() < 0):
        raise UserError(f"{where}: event coordinates up to x={int(events.x.max())}, y={int(events.y.max())} do not "
                        f"fit the {width}x{height} sensor of this data set; the file is damaged or of another sensor")
    per_frame = n // frames
    order = np.arange(n)
    slot = np.minimum(order // per_frame, frames - 1) if per_frame else np.full(n, frames - 1)
    x, y, p = (a.astype(np.int64) for a in (events.x, events.y, events.p))
    flat = ((slot * 2 + p) * height + y) * width + x
    counts = np.bincount(flat, minlength=frames * 2 * height * width)
    return counts.reshape(frames, 2, height, width).astype(np.float32)
