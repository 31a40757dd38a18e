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


PIPED_WIDTH = 160
"""Width of tables written to a pipe or a file while ``$COLUMNS`` is unset (rich would assume 80)."""


def table_console():
    """A rich Console for tables: the terminal's width (``$COLUMNS`` wins); output to a pipe or a file without
    ``$COLUMNS`` gets :data:`PIPED_WIDTH`. Tables made by :func:`table` stay whole at 80 columns (names wrap,
    numbers never break; tests render them at 80)."""
    import os

    from rich.console import Console

    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(width=PIPED_WIDTH)


def table(title: str | None = None, *, caption: str | None = None, columns: dict[str, str] = {}):  # noqa: B006
    """A table for narrow terminals (no vertical rules, one space between columns). ``columns``: header ->
    ``name`` (left-aligned, wraps when the width runs short: never cut), ``text`` (left, kept on one line) or
    ``number`` (right-aligned, kept on one line)."""
    from rich import box
    from rich.table import Table

    out = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True,
                caption_justify="left", title_justify="left")
    for header, kind in columns.items():
        if kind == "name":
            out.add_column(header, overflow="fold")
        else:
            out.add_column(header, justify="right" if kind == "number" else "left", no_wrap=True)
    return out
