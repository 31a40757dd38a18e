"""Shared test configuration: deterministic hypothesis runs in CI, random ones locally."""

from __future__ import annotations

import os

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
