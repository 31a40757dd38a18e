"""Ctrl-C and SIGTERM: stop at once, write nothing, say so in one line (exit 130 / 143), no traceback.

While a command runs, SIGINT and SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``, so every
``finally`` and ``except BaseException`` cleanup runs) and set a flag. Some libraries swallow an exception raised
inside their callbacks (h5py printed a traceback and the export went on); the atomic writers in
:mod:`snn_deploy.io` therefore check the flag again before they rename anything into place.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``exit_code`` is 128 + the signal number (130 for Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


def _handler(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal arrived during this command, even if the first raise was lost."""
    if _received:
        raise Interrupted(_received[0])


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM raise :class:`Interrupted`; handlers are restored after (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    _received.clear()
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received.clear()
