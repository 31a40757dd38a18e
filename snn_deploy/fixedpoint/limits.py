"""Bit widths and shifts of Loihi's fixed-point neuron and synapse datapath, as Lava's bit-accurate models use them.

Source: lava-nc 0.10.0, ``lava/proc/lif/models.py`` (AbstractPyLifModelFixed, PyLifModelBitAcc),
``lava/proc/dense/models.py``, ``lava/proc/conv/models.py`` and ``lava/utils/weightutils.py``.
Every backend of snn-deploy (torch integer mode, simulator, ONNX, Lava builder) reads these constants from here.
"""

from __future__ import annotations

DECAY_BITS = 12
"""du and dv are 12-bit: a decay multiplies by (4096 - d) / 4096."""
DECAY_UNITY = 1 << DECAY_BITS
CURRENT_DECAY_OFFSET = 1
"""Loihi's ds_offset: the current decays by (4096 - (du + 1)) / 4096, so du = 4095 keeps only the new input."""
VOLTAGE_DECAY_OFFSET = 0
ACT_SHIFT = 6
"""Synaptic input is MSB-aligned: a_in enters u as a_in << 6."""
VTH_SHIFT = 6
"""The threshold is MSB-aligned the same way: spike iff v > vth << 6."""
UV_BITS = 24
"""u and v are 24-bit registers: u wraps (two's complement), v saturates at +-(2^23 - 1)."""
UV_HALF = 1 << (UV_BITS - 1)
V_MAX = UV_HALF - 1
V_MIN = -(UV_HALF - 1)

DU_RANGE = (-1, DECAY_UNITY - 1)
"""du = -1 is accepted by Lava and means "no current decay" (effective factor 4096 / 4096)."""
DV_RANGE = (0, DECAY_UNITY - 1)
VTH_BITS = 17
VTH_RANGE = (0, (1 << VTH_BITS) - 1)
BIAS_MANT_BITS = 13
BIAS_MANT_RANGE = (-(1 << (BIAS_MANT_BITS - 1)), (1 << (BIAS_MANT_BITS - 1)) - 1)
BIAS_EXP_HW_RANGE = (0, 7)
"""Loihi's bias exponent is an unsigned 3-bit field."""
BIAS_EXP_RANGE = (-(UV_BITS - 1), 7)
"""What Lava's model computes: a negative exponent is an arithmetic right shift. Hardware profiles use the 3-bit
range above; the arithmetic accepts the wider one so that every Lava configuration can be reproduced."""

A_IN_RANGE = (-(1 << 18), (1 << 18) - 1)
"""Inputs for which Lava's single 24-bit correction of u is a true wrap: a_in << 6 stays within 25 bits, so the
decayed u plus the input lies in (-3 * 2^23, 3 * 2^23). Beyond it Lava's u leaves 24 bits (and later int32)."""
A_IN_HW_BITS = 16
"""Loihi's synaptic input register (Lava declares a_in as 16-bit); hardware profiles enforce this narrower range."""

def payload_range(bits: int, signed: bool) -> tuple[int, int]:
    """The integer payloads a ``bits``-bit graded spike carries: ``[0, 2^bits - 1]``, or ``+-(2^(bits-1) - 1)``
    signed (symmetric, so negating a payload never overflows)."""
    hi = (1 << (bits - int(signed))) - 1
    return (-hi if signed else 0), hi


WEIGHT_BITS = 8
"""Weights are clipped to 8 bits: [-256, 255] for mixed sign, [0, 255] excitatory, [-255, 0] inhibitory."""
CONV_ACC_BITS = 24
"""Lava's fixed-point Conv wraps its output to 24-bit two's complement and ignores weight_exp."""
FLOAT32_EXACT = 1 << 24
"""float32 holds every integer below 2^24: sums of integers computed in float32 are exact while they stay below."""
FLOAT64_EXACT = 1 << 53
"""Integer sums are computed with float64 BLAS / convolution; exact while every partial sum stays below 2^53."""

MAX_SYNAPTIC_DELAY = 62
"""Lava's DelayDense (``max_delay=62`` as netx builds it) and Loihi's 6-bit delay field: a spike reaches its target
1 + delay steps later, delay 0..62."""
