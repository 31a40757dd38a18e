"""Spike nonlinearity with a surrogate gradient, shared by the float and the integer neurons."""

from __future__ import annotations

import torch


class _Spike(torch.autograd.Function):
    """Forward: Heaviside (``x > 0`` if strict, else ``x >= 0``). Backward: d/dx sigmoid(alpha * x / width)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float, width: float, strict: bool) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.alpha, ctx.width = alpha, width
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * x / ctx.width)
        return grad * sig * (1 - sig) * (ctx.alpha / ctx.width), None, None, None


def spike(x: torch.Tensor, *, alpha: float = 4.0, width: float = 1.0, strict: bool = True) -> torch.Tensor:
    """Spike where ``x`` crosses 0; integer tensors, and float tensors outside autograd, get the plain comparison.

    ``strict=True`` is the hardware's ``v > threshold``; ``strict=False`` is spikingjelly's ``h >= threshold``.
    ``width`` scales the surrogate to the units of ``x`` (the integer neuron passes its shifted threshold).
    """
    if not x.is_floating_point() or not (x.requires_grad and torch.is_grad_enabled()):
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)
    return _Spike.apply(x, float(alpha), float(width), strict)
