"""What the command line shows: progress of long work (a rich bar on a terminal, on stderr; nothing when output is
redirected or under ``--quiet``) and the verbosity (``-q`` / ``-v``) commands and errors read."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_VERBOSITY = 0
_REAL_STDOUT: list = []


def set_verbosity(level: int) -> None:
    """-1 quiet (no progress, no text output), 0 normal, 1+ verbose (``-q`` / ``-v`` of the command line)."""
    global _VERBOSITY
    _VERBOSITY = level


def verbosity() -> int:
    return _VERBOSITY


@contextmanager
def silenced_stdout() -> Iterator[None]:
    """Text output off (``--quiet``, or ``--json -`` owns stdout); :func:`stdout` still reaches the real one."""
    import os
    from contextlib import redirect_stdout

    _REAL_STDOUT.append(sys.stdout)
    try:
        with open(os.devnull, "w") as null, redirect_stdout(null):
            yield
    finally:
        _REAL_STDOUT.pop()


def stdout():
    """The stdout to write requested output to, even while text output is silenced."""
    return _REAL_STDOUT[-1] if _REAL_STDOUT else sys.stdout


@contextmanager
def progress(label: str, total: int, show: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a transient bar only when ``show``, stderr is a terminal and not quiet."""
    if not (show and sys.stderr.isatty() and _VERBOSITY >= 0):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
