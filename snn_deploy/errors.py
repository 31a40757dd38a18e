"""User-facing errors: one clear line saying what is wrong, where, and what to do.

Library code raises :class:`UserError` for problems the user can fix (bad file, unknown name, wrong option);
the command line turns it into ``error: ...`` on stderr and exit status 2
(:func:`snn_deploy.cli.handler.exit_on_user_error`, which also turns Ctrl-C and SIGTERM into one line and exit
130 / 143). This module imports nothing but the standard library: every layer may raise these errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")

CHECK_FAILED_EXIT_CODE = 1
"""A check the user asked for failed (verify: spikes differ; simulate / report: the mapping breaks the profile's
limits; doctor: a problem): every output is written, the exit status says the result is not acceptable."""
USAGE_EXIT_CODE = 2
"""Bad usage or input: an unknown option or name, a missing or damaged file, a value out of range; nothing written."""


class UserError(Exception):
    """A problem with the user's input; the message is complete (what, where, what to do) and fits one line."""


def lookup(table: Mapping[str, V], name: str, *, what: str, listing: str) -> V:
    """``table[name]``; an unknown name is a :class:`UserError` suggesting close matches and the command
    (``listing``) that lists every name."""
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown {what} {name!r}: {hint}run `{listing}` to list the names")
