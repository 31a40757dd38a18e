"""Shared test configuration: deterministic hypothesis runs in CI, random ones locally."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# The suite runs many small tensor operations; with several OpenMP threads on a 2-core machine shared with Lava's
# worker processes they contend (up to 100x slower per op). One thread is faster here and deterministic.
torch.set_num_threads(1)

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


class _PickledShellCommand:
    """Unpickling this runs ``touch MARKER`` (``os.system``): what a malicious checkpoint or data file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@dataclass
class PickledCode:
    """An object whose unpickling would run code, and the file that code would create."""

    payload: _PickledShellCommand
    marker: Path

    @property
    def ran(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def pickled_code(tmp_path: Path) -> PickledCode:
    """The one pickled-code exploit of the suite: put ``payload`` in a pickle; loaders must refuse it and
    ``ran`` must stay False."""
    marker = tmp_path / "pwned"
    return PickledCode(_PickledShellCommand(marker), marker)
