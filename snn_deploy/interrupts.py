"""Ctrl-C and SIGTERM: stop at once, write nothing, say so in one line (exit 130 / 143), no traceback.

While a command runs, SIGINT and SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``, so every
``finally`` and ``except BaseException`` cleanup runs) and set a flag. Some libraries swallow an exception raised
inside their callbacks (h5py printed a traceback and the export went on); the atomic writers in
:mod:`snn_deploy.io` therefore check the flag again before they rename anything into place. A signal that arrives
inside code run by the garbage collector (a ``__del__`` or a weakref callback, where the interpreter would print
"Exception ignored" and drop it) is delivered again 10 ms later, in code where it propagates.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

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


RETRY_S = 0.01
"""A signal that arrived where an exception would be lost is delivered again this much later."""
_active: list[bool] = []


def _lost_here(frame: FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` would be lost: code the interpreter runs from the garbage collector
    (``__del__``, weakref callbacks such as h5py's object registry) prints "Exception ignored" and goes on."""
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "__del__" or frame.f_code.co_filename.endswith(("weakref.py", "_weakrefset.py")):
            return True
        frame = frame.f_back
    return False


def _deliver_again(signum: int) -> None:
    """Send ``signum`` to the main thread again after :data:`RETRY_S` (while commands still handle signals)."""
    def send() -> None:
        if _active:
            signal.pthread_kill(threading.main_thread().ident, signum)

    timer = threading.Timer(RETRY_S, send)
    timer.daemon = True
    timer.start()


def _lost(hook):
    """An ``unraisablehook`` for :class:`Interrupted` lost in a C extension's callback: deliver it again, silently."""
    def handle(info) -> None:
        if isinstance(info.exc_value, Interrupted):
            _deliver_again(info.exc_value.signum)
            return
        hook(info)
    return handle


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if _lost_here(frame):  # raise where it propagates: a moment later, in the code that was running
        _deliver_again(signum)
        return
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
    _active.append(True)
    unraisable, sys.unraisablehook = sys.unraisablehook, _lost(sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = unraisable
        _active.pop()
        for s, h in previous.items():
            signal.signal(s, h)
        _received.clear()
