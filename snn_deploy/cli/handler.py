"""The command line's one error handler: a :class:`~snn_deploy.errors.UserError`, a file-system error, running out
of memory or an interrupt becomes one line on stderr and an exit status; library code only raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from snn_deploy.errors import USAGE_EXIT_CODE, UserError

F = TypeVar("F", bound=Callable[..., Any])


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
