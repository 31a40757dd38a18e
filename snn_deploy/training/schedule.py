"""Learning rate as a pure function of the optimizer step: linear warm-up, then cosine decay to zero.

Being stateless, it resumes exactly from a checkpoint that records only the step count.
"""

from __future__ import annotations

import math


def learning_rate(step: int, *, base: float, warmup_steps: int, total_steps: int) -> float:
    """The rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))
