"""Lava processes for the graph operations Lava has no process for, with fixed-point CPU models.

* :class:`SumRelay` - a :class:`~snn_deploy.graph.SumNode`: Lava already sums every OutPort connected to
  one InPort; the relay forwards that integer sum as a graded message in the same step, so the sum has zero
  latency like the node it implements.
* :class:`DelayLine` - ``d`` steps of delay for graded or binary messages: balances paths of unequal latency.
* :class:`SpikeProduct` - SSA's ``q (k^T v)`` per head between three binary inputs, times an integer multiplier,
  with Dense's one-step latency (at step t it sends what it computed at step t - 1).

All shapes are Lava's (W, H, C). Messages are int32, the width of Lava's fixed-point Conv and LIF ports.

:data:`MODELS` maps each process to its model. Pass it per instance to the run config's
``exception_proc_model_map`` (see :func:`model_map`): without it, Lava's model discovery would import and execute
every module of ``snn_deploy.exporters`` (its search covers the process module's whole directory) at each
compile.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
# (lava imports work: importing this package ran snn_deploy's Lava compatibility finder first)
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from snn_deploy.fixedpoint import spike_product as fixed_spike_product

LavaShape = tuple[int, ...]


class SumRelay(AbstractProcess):
    """Forwards the sum of everything connected to ``a_in`` on ``s_out``, in the same step."""

    def __init__(self, *, shape: LavaShape) -> None:
        super().__init__(shape=shape)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)


class DelayLine(AbstractProcess):
    """Sends at step t + ``delay`` what ``s_in`` received at step t (zeros for the first ``delay`` steps)."""

    def __init__(self, *, shape: LavaShape, delay: int) -> None:
        if delay < 1:
            raise ValueError(f"a delay line needs delay >= 1; got {delay}")
        super().__init__(shape=shape, delay=delay)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(delay, *shape), init=0)


class SpikeProduct(AbstractProcess):
    """Per head ``q_h (k_h^T v_h) * multiplier`` over the W * H tokens; channel c belongs to head c // (C / heads).

    Inputs are spikes (non-zero counts as 1); the output currents leave one step after their inputs arrived.
    """

    def __init__(self, *, shape: LavaShape, heads: int, multiplier: int) -> None:
        if shape[-1] % heads:
            raise ValueError(f"{shape[-1]} channels do not split into {heads} heads")
        super().__init__(shape=shape, heads=heads, multiplier=multiplier)
        self.q_in = InPort(shape=shape)
        self.k_in = InPort(shape=shape)
        self.v_in = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)
        self.a_buf = Var(shape=shape, init=0)


def spike_product(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, multiplier: int) -> np.ndarray:
    """:func:`snn_deploy.fixedpoint.spike_product` of (W, H, C) spike maps in exact int64. Token order is
    irrelevant: k^T v sums over all tokens and each output token reads only its own q, so Lava's column-major
    tokens give the same map as row-major."""
    w, h, c = q.shape

    def channels_by_tokens(x: np.ndarray) -> np.ndarray:  # (W, H, C) -> (C, tokens), events as 0/1
        return (x != 0).astype(np.int64).reshape(w * h, c).T

    out = fixed_spike_product(*(channels_by_tokens(x) for x in (q, k, v)), heads, multiplier)
    return out.T.reshape(w, h, c)


@implements(proc=SumRelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySumRelayModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.s_out.send(self.a_in.recv())


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayLineModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        slot = (self.time_step - 1) % self.buffer.shape[0]
        self.s_out.send(self.buffer[slot])  # the channel copies: the slot can be overwritten next
        self.buffer[slot] = self.s_in.recv()


@implements(proc=SpikeProduct, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeProductModel(PyLoihiProcessModel):
    q_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    k_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    v_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        self.a_out.send(self.a_buf)
        q, k, v = self.q_in.recv(), self.k_in.recv(), self.v_in.recv()
        self.a_buf[:] = spike_product(q, k, v, self.proc_params["heads"], self.proc_params["multiplier"])


MODELS: dict[type[AbstractProcess], type[PyLoihiProcessModel]] = {
    SumRelay: PySumRelayModel, DelayLine: PyDelayLineModel, SpikeProduct: PySpikeProductModel,
}


def model_map(processes: Iterable[AbstractProcess]) -> dict[AbstractProcess, type[PyLoihiProcessModel]]:
    """``exception_proc_model_map`` entries for the custom processes among ``processes``.

    Lava's compiler consults that map per process instance before it searches directories for models.
    """
    return {p: MODELS[type(p)] for p in processes if type(p) in MODELS}
