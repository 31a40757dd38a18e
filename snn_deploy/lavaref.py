"""Small networks run in Lava's bit-accurate CPU models: the independent reference for snn_deploy.fixedpoint.

Each function builds ``RingBuffer source -> process under test -> RingBuffer sink``, runs it under
``Loihi2SimCfg(select_tag='fixed_pt')`` and returns numpy arrays in snn-deploy's time-first layout.
Used by ``snn-deploy doctor`` and the test suite. Lava starts one OS process per Lava process, so each call
costs about a second; keep networks small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import snn_deploy  # noqa: F401  (installs the Lava compatibility finder before any lava import)
from snn_deploy.fixedpoint.chain import DenseLIFLayer
from snn_deploy.fixedpoint.synapse import torch_conv_weight_to_lava, torch_image_to_lava
from snn_deploy.watchdog import stop_runtime


class LavaUnavailable(RuntimeError):
    """Lava (lava-nc) cannot be imported in this environment."""


def lava_modules() -> dict[str, Any]:
    """Import the Lava pieces used here, or raise :class:`LavaUnavailable` with the underlying reason."""
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF, LIFRefractory, LIFReset
    except Exception as exc:  # ImportError, or a failure inside lava's own import chain
        raise LavaUnavailable(f"cannot import lava-nc: {type(exc).__name__}: {exc}") from exc
    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Conv=Conv, Dense=Dense, Sink=Sink,
                Source=Source, LIF=LIF, LIFReset=LIFReset, LIFRefractory=LIFRefractory)


@contextmanager
def _running(process: Any) -> Iterator[None]:
    try:
        yield
    finally:
        stop_runtime(process)


def _source(lava: dict[str, Any], x_time_first: np.ndarray) -> Any:
    """RingBuffer sending ``x[t]`` at step t + 1 (Lava's time_step starts at 1)."""
    return lava["Source"](data=np.moveaxis(np.asarray(x_time_first, dtype=np.int32), 0, -1))


def _run_to_sink(lava: dict[str, Any], x: np.ndarray, make_process, in_port: str, out_shape: tuple[int, ...]) -> np.ndarray:
    steps = x.shape[0]
    src = _source(lava, x)
    proc = make_process()
    sink = lava["Sink"](shape=out_shape, buffer=steps)
    src.s_out.connect(getattr(proc, in_port))
    proc.a_out.connect(sink.a_in)
    with _running(sink):
        sink.run(condition=lava["RunSteps"](num_steps=steps), run_cfg=lava["Loihi2SimCfg"](select_tag="fixed_pt"))
        data = sink.data.get()
    return np.moveaxis(np.asarray(data), -1, 0).astype(np.int64)


def run_lif(a_in: np.ndarray, *, du: int, dv: int, vth: int, bias_mant: Any = 0, bias_exp: Any = 0,
            reset_interval: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lava ``LIF`` fed integer currents [T, N] directly; returns (spikes, u, v), each [T, N], read every step.
    ``reset_interval`` > 0 runs ``LIFReset`` (reset_offset 1: zeroed before steps 0, interval, 2 interval, ...)."""
    lava = lava_modules()
    a_in = np.asarray(a_in)
    steps, n = a_in.shape
    src = _source(lava, a_in)
    kind, extra = (("LIFReset", dict(reset_interval=reset_interval, reset_offset=1)) if reset_interval
                   else ("LIF", {}))
    lif = lava[kind](shape=(n,), du=du, dv=dv, vth=vth,
                     bias_mant=np.broadcast_to(np.asarray(bias_mant), (n,)).copy(),
                     bias_exp=np.broadcast_to(np.asarray(bias_exp), (n,)).copy(), **extra)
    return _run_state(lava, src, lif, steps, n, "fixed_pt")


def run_lif_refractory(a_in: np.ndarray, *, du: float, vth: float, bias_mant: Any = 0, refractory_period: int = 1
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lava ``LIFRefractory`` (no voltage leak) fed currents [T, N]; returns (spikes, u, v) read every step.

    Lava has only a floating-point model of it (``PyLifRefractoryModelFloat``), so this runs that model: with
    du in {0, 1}, dv = 0 and integer inputs it computes integers exactly, which is how the fixed-point refractory
    period is checked against it (inputs and threshold scaled by 2^6 as the fixed-point neuron aligns them)."""
    lava = lava_modules()
    a_in = np.asarray(a_in)
    steps, n = a_in.shape
    src = _source(lava, a_in)
    lif = lava["LIFRefractory"](shape=(n,), du=du, dv=0.0, vth=vth,
                                bias_mant=np.broadcast_to(np.asarray(bias_mant, dtype=float), (n,)).copy(),
                                refractory_period=refractory_period)
    return _run_state(lava, src, lif, steps, n, "floating_pt")


def _run_state(lava: dict[str, Any], src: Any, lif: Any, steps: int, n: int, tag: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``src -> lif -> sink`` one step at a time, reading u and v after each."""
    sink = lava["Sink"](shape=(n,), buffer=steps)
    src.s_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    us, vs = [], []
    with _running(lif):
        for _ in range(steps):
            lif.run(condition=lava["RunSteps"](num_steps=1), run_cfg=lava["Loihi2SimCfg"](select_tag=tag))
            us.append(lif.u.get().copy())
            vs.append(lif.v.get().copy())
        spikes = np.moveaxis(np.asarray(sink.data.get()), -1, 0)
    return spikes.astype(np.int64), np.asarray(us).astype(np.int64), np.asarray(vs).astype(np.int64)


def run_dense(s_in: np.ndarray, weights: np.ndarray, *, weight_exp: int = 0, num_weight_bits: int = 8,
              graded: bool = False) -> np.ndarray:
    """Lava ``Dense`` over inputs [T, n_in]; returns the currents [T, n_out] its output port carries each step."""
    lava = lava_modules()
    weights = np.asarray(weights)
    kwargs = dict(weights=weights, weight_exp=weight_exp, num_weight_bits=num_weight_bits,
                  num_message_bits=24 if graded else 0)
    return _run_to_sink(lava, np.asarray(s_in), lambda: lava["Dense"](**kwargs), "s_in", (weights.shape[0],))


def run_conv(x: np.ndarray, weight: np.ndarray, *, stride: int | tuple[int, int] = 1,
             padding: int | tuple[int, int] = 0, groups: int = 1, graded: bool = False) -> np.ndarray:
    """Lava ``Conv`` over inputs [T, C, H, W] with a torch-layout kernel [C_out, C_in/groups, kH, kW].

    Layouts are converted to Lava's (W, H, C) and (C_out, W, H, C_in); stride and padding are given in torch's
    (H, W) order and passed to Lava in (W, H) order. Returns currents [T, C_out, H', W'].
    """
    lava = lava_modules()
    x = np.asarray(x)
    weight = np.asarray(weight)
    stride_hw = np.broadcast_to(np.asarray(stride), (2,))
    padding_hw = np.broadcast_to(np.asarray(padding), (2,))
    lava_w = torch_conv_weight_to_lava(weight)
    lava_x = torch_image_to_lava(x)
    kwargs = dict(weight=lava_w, input_shape=lava_x.shape[1:], stride=tuple(int(s) for s in stride_hw[::-1]),
                  padding=tuple(int(p) for p in padding_hw[::-1]), groups=groups,
                  num_message_bits=24 if graded else 0)
    proc = lava["Conv"](**kwargs)
    out_shape = tuple(proc.a_out.shape)
    out = _run_to_sink(lava, lava_x, lambda: proc, "s_in", out_shape)
    return torch_image_to_lava(out)


def run_dense_lif_chain(x: np.ndarray, layers: list[DenseLIFLayer]) -> list[np.ndarray]:
    """Lava network ``Source -> (Dense -> LIF) * n``, a sink on every LIF; returns each layer's spikes [T, n]."""
    lava = lava_modules()
    x = np.asarray(x)
    steps = x.shape[0]
    previous = _source(lava, x).s_out
    sinks, lifs = [], []
    for layer in layers:
        dense = lava["Dense"](weights=np.asarray(layer.weights), weight_exp=layer.weight_exp,
                              num_message_bits=24 if layer.graded else 0)
        p = layer.lif
        n = layer.size
        lif = lava["LIF"](shape=(n,), du=p.du, dv=p.dv, vth=p.vth,
                          bias_mant=np.broadcast_to(np.asarray(p.bias_mant), (n,)).copy(),
                          bias_exp=np.broadcast_to(np.asarray(p.bias_exp), (n,)).copy())
        sink = lava["Sink"](shape=(n,), buffer=steps)
        previous.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        previous = lif.s_out
        sinks.append(sink)
        lifs.append(lif)
    with _running(lifs[0]):
        lifs[0].run(condition=lava["RunSteps"](num_steps=steps), run_cfg=lava["Loihi2SimCfg"](select_tag="fixed_pt"))
        return [np.moveaxis(np.asarray(sink.data.get()), -1, 0).astype(np.int64) for sink in sinks]
