"""User-facing errors: one clear line saying what is wrong, where, and what to do.

Library code raises :class:`UserError` for problems the user can fix (bad file, unknown name, wrong option);
command-line code turns it into ``error: ...`` on stderr and exit status 2 with :func:`exit_on_user_error`, which
also turns Ctrl-C and SIGTERM into one line and exit 130 / 143 (see :mod:`snn_deploy.interrupts`).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V")

CHECK_FAILED_EXIT_CODE = 1
"""A check the user asked for failed (verify: spikes differ; simulate / report: the mapping breaks the profile's
limits; doctor: a problem): every output is written, the exit status says the result is not acceptable."""
USAGE_EXIT_CODE = 2
"""Bad usage or input: an unknown option or name, a missing or damaged file, a value out of range; nothing written."""


class UserError(Exception):
    """A problem with the user's input; the message is complete (what, where, what to do) and fits one line."""


def exit_on_user_error(command: F) -> F:
    """Decorate a click command so a :class:`UserError` prints ``error: <message>`` to stderr and exits 2, and an
    interrupt prints one line and exits 128 + the signal number (outputs are atomic: nothing was written).

    A file-system error that escaped the checks (a path in a directory the user may not read) and running out of
    memory are one line too.
    Applied to every command of the command line (``snn_deploy.cli``); wrapping twice adds nothing.
    """
    from snn_deploy.interrupts import Interrupted, signals_as_interrupts

    if getattr(command, "one_line_errors", False):
        return command

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with signals_as_interrupts():
                return command(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc))
        except (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            _fail(f"cannot access {exc.filename or 'a file'}: {exc.strerror or exc}; check the path and its "
                  "permissions")
        except MemoryError as exc:  # an allocation past what the machine (or a ulimit) allows: nothing was written
            _fail(f"not enough memory for this run ({' '.join(str(exc).split())[:120]}); lower --batch-size, "
                  "--samples or --time-steps, or run it on a machine with more memory")
        except KeyboardInterrupt as exc:
            stop = exc if isinstance(exc, Interrupted) else Interrupted(2)
            click.echo(f"error: interrupted ({stop.name}); no partial output was left (outputs are replaced only "
                       "when complete); run the command again (training continues with --resume)", err=True)
            raise click.exceptions.Exit(stop.exit_code) from None

    wrapper.one_line_errors = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _fail(message: str) -> None:
    """Print ``error: message`` (with -v first the traceback: where it was raised, and its cause); exit 2."""
    from snn_deploy import console

    if console.verbosity() > 0:
        import traceback

        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(USAGE_EXIT_CODE) from None


def lookup(table: Mapping[str, V], name: str, *, what: str, listing: str) -> V:
    """``table[name]``; an unknown name is a :class:`UserError` suggesting close matches and the command
    (``listing``) that lists every name."""
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown {what} {name!r}: {hint}run `{listing}` to list the names")
