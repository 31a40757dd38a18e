"""Fast CPU process models for Lava's own Loihi 2 processes, bit-exact with Lava's ``fixed_pt`` models.

The process classes stay the chip's (``Conv``, ``Sparse``, ``DelaySparse``); only the CPU model that
:meth:`~snn_deploy.sims.backends.lava_build.LavaNetwork.run_config` selects for them changes. Why (measured on
spikformer-cifar10-4-384, one Lava step, in-process: benchmarks/lava_step_costs.py, docs/lava_chip.md "Sizes and
times"): Lava's ``PyConvModelFixed``
convolves with ``scipy.signal.convolve2d`` once per (output channel, input channel) pair, 0.8 s for one 384 x 384
1x1 conv on 8 x 8 tokens and 3.7 s for 384 -> 1536, about 45 s per Lava step for the network;
``PyDelaySparseModelBitAcc`` rebuilds its delay-split matrix every step (80 ms for the attention's delayed arrays);
``PySparseModelBitAcc`` selects the columns of the inputs that spiked (``weights[:, s_in]``), a copy of the matrix
each step.

- :class:`FastConvModel`: the same messages as ``PyConvModelFixed`` (it sends last step's activation, then
  receives; binary inputs are cast to bool, graded ones kept; the sum is cast to int32 and clamped to 24 bits),
  the convolution done as one matrix product per group (:func:`conv`). Exact: the products are integers, and
  while every partial sum stays below 2**53 float64 sums have no rounding in any order, as Lava's float64
  ``convolve2d`` sums have none (spikes times 16-bit weights need 2**37 inputs to leave that range; 24-bit
  payloads times 8-bit weights 2**21; a result beyond int32 is undefined in Lava's cast and here alike).
- :class:`FastDelaySparseModel`: ``PyDelaySparseModelBitAcc`` with its delay-split matrix built once (its weights
  and delays are static after its first step, which the Lava model itself assumes when it scales the weights once).
- :class:`FastSparseModel`: ``PySparseModelBitAcc`` with a binary input summed as a matrix-vector product.

Tests (tests/test_lava_models.py) check :func:`conv` against ``lava.proc.conv.utils.conv`` on hypothesis-drawn
shapes, strides, paddings, dilations, groups and payloads, and a network run with these models against the same
network run with Lava's.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv import utils as conv_utils
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from lava.proc.sparse.models import PyDelaySparseModelBitAcc, PySparseModelBitAcc
from lava.proc.sparse.process import DelaySparse, Sparse
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights
from numpy.lib.stride_tricks import sliding_window_view


def conv(input_: np.ndarray, weight: np.ndarray, kernel_size, stride, padding, dilation, groups: int) -> np.ndarray:
    """``lava.proc.conv.utils.conv`` (Lava's (W, H, C) layout, its kernel flip) as a float64 matrix product per
    group: the same float64 values, cast to ``weight.dtype`` as Lava casts them."""
    kx, ky = (int(k) for k in kernel_size)
    sx, sy = (int(s) for s in stride)
    px, py = (int(p) for p in padding)
    dx, dy = (int(d) for d in dilation)
    out_x, out_y, out_c = conv_utils.output_shape(input_.shape, weight.shape[0], (kx, ky), (sx, sy), (px, py),
                                                  (dx, dy))
    channels = input_.shape[-1]
    if channels % groups or out_c % groups:
        raise ValueError(f"channels {channels} -> {out_c} do not split into {groups} groups")
    padded = np.pad(input_.astype(np.float64), ((px, px), (py, py), (0, 0)))
    windows = sliding_window_view(padded, (dx * (kx - 1) + 1, dy * (ky - 1) + 1), axis=(0, 1))
    # (out_x, out_y, C, kx, ky): the receptive field of each output position
    windows = windows[::sx, ::sy, :, ::dx, ::dy][:out_x, :out_y]
    per_group, out_per_group = channels // groups, out_c // groups
    # convolve2d is a true convolution: the kernel is applied flipped
    if per_group == out_per_group == 1:  # depthwise: one product per channel and tap, no per-group matmul
        return np.einsum("xyckl,ckl->xyc", windows, weight[:, ::-1, ::-1, 0].astype(np.float64)).astype(weight.dtype)
    kernel = weight[:, ::-1, ::-1, :].astype(np.float64).reshape(groups, out_per_group, kx, ky, per_group)
    kernel = kernel.transpose(0, 4, 2, 3, 1).reshape(groups, per_group * kx * ky, out_per_group)
    columns = windows.reshape(out_x * out_y, groups, per_group * kx * ky).transpose(1, 0, 2)
    output = np.matmul(columns, kernel).transpose(1, 0, 2).reshape(out_x, out_y, out_c)
    return output.astype(weight.dtype)


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class FastConvModel(PyConvModelFixed):
    """``PyConvModelFixed`` with :func:`conv` in place of Lava's per-channel-pair ``convolve2d`` loop, and
    ``groups`` held in int32 (Lava's int8 wraps past 127 groups: the lowering's depthwise kernels have thousands)."""

    groups: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def run_spk(self) -> None:
        if self.a_buf is None:
            self.a_buf = np.zeros_like(self.a_out.shape)
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv() if self.num_message_bits.item() > 0 else self.s_in.recv().astype(bool)
        a_out = conv(s_in, self.weight, self.kernel_size, self.stride, self.padding, self.dilation,
                     int(self.groups[0]))
        self.a_buf = self.clamp_precision(a_out)


@implements(proc=DelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class FastDelaySparseModel(PyDelaySparseModelBitAcc):
    """``PyDelaySparseModelBitAcc`` building its delay-split matrix once instead of every step."""

    _delay_weights = None

    def get_delay_wgts_mat(self, weights, delays, max_delay):  # an instance method here: it caches
        if self._delay_weights is None:
            self._delay_weights = PyDelaySparseModelBitAcc.get_delay_wgts_mat(weights, delays, max_delay)
        return self._delay_weights


@implements(proc=Sparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class FastSparseModel(PySparseModelBitAcc):
    """``PySparseModelBitAcc`` summing a binary input's weights as a sparse matrix-vector product (int64, as scipy
    sums Lava's int32 column selection ``weights[:, s_in].sum(axis=1)``) instead of slicing the matrix's columns."""

    def run_spk(self) -> None:
        self.weight_exp: int = self.proc_params.get("weight_exp", 0)
        if not self.weights_set:
            num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)
            sign_mode: SignMode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
            self.weights = clip_weights(self.weights, sign_mode, num_bits=8)
            self.weights = truncate_weights(self.weights, sign_mode, num_weight_bits)
            self.weights_set = True
        self.a_out.send(self.a_buff)
        if self.num_message_bits.item() > 0:
            a_accum = self.weights.dot(self.s_in.recv())
        else:
            a_accum = self.weights.dot(self.s_in.recv().astype(bool).astype(np.int64))
        self.a_buff = (np.left_shift(a_accum, self.weight_exp) if self.weight_exp > 0
                       else np.right_shift(a_accum, -self.weight_exp))


FAST_MODELS = {Conv: FastConvModel, DelaySparse: FastDelaySparseModel, Sparse: FastSparseModel}
"""Process class -> the fast model :meth:`LavaNetwork.run_config` selects for it."""
