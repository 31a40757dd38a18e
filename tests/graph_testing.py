"""Deployed graphs built by hand for tests: one LIF, conv and readout helper for every test file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_deploy.graph import ConvNode, LIFNode, ReadoutNode


@dataclass(frozen=True)
class Draw:
    """Per-channel integers drawn from ``rng.integers(lo, hi, channels)``."""

    lo: int
    hi: int


def _per_channel(value, channels: int, rng: np.random.Generator | None) -> np.ndarray:
    if isinstance(value, Draw):
        if rng is None:
            raise ValueError("drawing biases needs an rng")
        return rng.integers(value.lo, value.hi, channels)
    return np.broadcast_to(np.asarray(value, dtype=np.int64), (channels,)).copy()


def lif(name: str, inputs: str | tuple[str, ...], shape: tuple[int, int, int], *, du: int = 4095, dv: int = 4095,
        vth: int = 0, bias_mant: int | np.ndarray | Draw = 0, bias_exp: int | np.ndarray | Draw = 0,
        rng: np.random.Generator | None = None) -> LIFNode:
    """A LIF population reading ``inputs`` (one name or several); biases are one value, one per channel, or
    :class:`Draw` ranges drawn from ``rng`` (mantissas first). Defaults: no memory, threshold 0, no bias."""
    channels = shape[0]
    mant = _per_channel(bias_mant, channels, rng)
    return LIFNode(name, (inputs,) if isinstance(inputs, str) else tuple(inputs), tuple(shape), du=du, dv=dv,
                   vth=vth, bias_mant=mant, bias_exp=_per_channel(bias_exp, channels, rng))


def random_conv(rng: np.random.Generator, name: str, source: str, shape: tuple[int, int, int], c_in: int,
                kernel: tuple[int, int] = (3, 3), *, low: int = -6, high: int = 10, **geometry) -> ConvNode:
    """A conv of ``c_in`` input channels with weights drawn from [low, high)."""
    groups = geometry.get("groups", 1)
    weight = rng.integers(low, high, (shape[0], c_in // groups, *kernel))
    return ConvNode(name, (source,), shape, weight=weight, **geometry)


def readout(source: str, shape: tuple[int, int, int], classes: int = 2, *, weight: np.ndarray | None = None,
            bias: np.ndarray | None = None) -> ReadoutNode:
    """The classifier on ``source`` (zero weights and bias unless given)."""
    return ReadoutNode("head", (source,), tuple(shape),
                       weight=np.zeros((classes, shape[0])) if weight is None else weight,
                       bias=np.zeros(classes) if bias is None else bias)
