"""Progress of long command-line work: a rich bar on a terminal (stderr), nothing when output is redirected."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress(label: str, total: int, show: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a transient bar only when ``show`` and stderr is a terminal."""
    if not (show and sys.stderr.isatty()):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
