"""Numeric option types: the allowed range is checked by click before anything runs and shown in ``--help``.

Floats must also be finite: click's own ranges let ``nan`` through (every comparison with NaN is false) and
``inf`` through an open upper end.
"""

from __future__ import annotations

import math
from typing import Any

import click

POSITIVE = click.IntRange(min=1)
"""Counts that must be at least one (threads, batch sizes, samples, epochs, T, ...)."""
NON_NEGATIVE = click.IntRange(min=0)
"""Counts where 0 means "none" (warm-up epochs, --eval-samples 0 skips the comparison)."""


class FiniteFloat(click.FloatRange):
    """A float within ``[min, max]`` (either end optional) that is neither NaN nor infinite."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FloatRange.convert(self, value, param, ctx) if not _nan(value) else math.nan
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


NON_NEGATIVE_FLOAT = FiniteFloat(min=0.0)
POSITIVE_FLOAT = FiniteFloat(min=0.0, min_open=True)
FRACTION = FiniteFloat(min=0.0, max=1.0)
OPEN_FRACTION = FiniteFloat(min=0.0, max=1.0, min_open=True, max_open=True)
