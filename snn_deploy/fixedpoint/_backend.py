"""Array plumbing shared by the fixed-point kernels: numpy in -> numpy out, torch in -> torch out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Array = Any  # numpy.ndarray or torch.Tensor


def as_tensor(x: Array, dtype: torch.dtype | None = torch.int64) -> torch.Tensor:
    """Tensor of ``x`` in ``dtype`` (``None`` keeps its own); numpy integers never pass through float."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    return t if dtype is None else t.to(dtype)


def like_input(reference: Array, x: torch.Tensor) -> Array:
    """Return ``x`` as the kind of array ``reference`` is (numpy arrays come back as int64 numpy)."""
    return x if isinstance(reference, torch.Tensor) else x.numpy()


def require_integers(name: str, x: torch.Tensor) -> None:
    """Raise if a float tensor holds non-integer values (integer tensors always pass)."""
    if x.is_floating_point() and not bool(torch.all(x == torch.round(x))):
        raise ValueError(f"{name} must hold integer values; got non-integers (e.g. {x[x != torch.round(x)][0].item()})")


def require_range(name: str, x: torch.Tensor | int, lo: int, hi: int) -> None:
    """Raise ValueError naming the parameter if any value of ``x`` is outside [lo, hi]."""
    t = torch.as_tensor(x)
    if t.numel() == 0:
        return
    mn, mx = t.min().item(), t.max().item()
    if mn < lo or mx > hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}]; got values in [{mn}, {mx}]")
