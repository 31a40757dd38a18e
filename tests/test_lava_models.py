"""The fast CPU process models (sims/backends/lava_models.py) against Lava's own fixed-point models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lava.proc.conv import utils as conv_utils

from snn_deploy.sims.backends.lava_models import conv
from snn_deploy.watchdog import stop_runtime

lava = pytest.mark.lava


@st.composite
def conv_cases(draw):
    """Shapes, strides, paddings, dilations and groups Lava's Conv accepts; spikes or graded payloads (24-bit
    signed, as Conv's graded messages) with 8-bit weights (mixed signs keep 9)."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = [draw(st.integers(d * (k - 1) + 1, 7)) for k, d in zip(kernel, dilation)]
    seed = draw(st.integers(0, 2 ** 32 - 1))
    graded = draw(st.booleans())
    rng = np.random.default_rng(seed)
    weight = rng.integers(-256, 256, (c_out, *kernel, c_in // groups)).astype(np.int32)
    if graded:
        scale = draw(st.sampled_from([1, 255, 1 << 12]))  # sums stay within int32, as a Loihi 2 dendrite's
        x = rng.integers(-scale, scale + 1, (*size, c_in)).astype(np.int32)
    else:
        x = rng.random((*size, c_in)) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    return x, weight, kernel, stride, padding, dilation, groups


@settings(max_examples=200, deadline=None)
@given(conv_cases())
def test_fast_conv_equals_lavas_conv(case):
    x, weight, kernel, stride, padding, dilation, groups = case
    expected = conv_utils.conv(x, weight, kernel, stride, padding, dilation, groups)
    got = conv(x, weight, kernel, stride, padding, dilation, groups)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def _run(models: dict, part: str, steps: int = 6) -> np.ndarray:
    """A graded Conv, a Sparse (binary with a weight exponent and 7 weight bits, or graded with a negative exponent)
    or a binary DelaySparse (delays 0 to 3) fed random payloads, with the given model map; what it
    delivers every step."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.sparse.process import DelaySparse, Sparse
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(3)
    if part == "conv":
        source = RingBuffer(data=rng.integers(-300, 300, (5, 4, 3, steps)))
        synapse = Conv(weight=rng.integers(-128, 128, (4, 3, 3, 3)), input_shape=(5, 4, 3), padding=(1, 1),
                       stride=(2, 1), num_message_bits=24)
    elif part == "sparse graded":
        source = RingBuffer(data=rng.integers(-300, 300, (12, steps)))
        synapse = Sparse(weights=csr_matrix(rng.integers(0, 200, (8, 12)) * (rng.random((8, 12)) < 0.6)),
                         num_message_bits=24, weight_exp=-2)
    else:
        source = RingBuffer(data=(rng.random((12, steps)) < 0.5).astype(np.int32))
        weights = csr_matrix(rng.integers(-100, 100, (8, 12)) * (rng.random((8, 12)) < 0.6))
        if part == "sparse":
            synapse = Sparse(weights=weights, num_message_bits=0, weight_exp=1, num_weight_bits=7)
        else:
            delays = weights.copy()
            delays.data[:] = rng.integers(0, 4, delays.nnz)
            synapse = DelaySparse(weights=weights, delays=delays, num_message_bits=0)
    source.s_out.connect(synapse.s_in)
    output = Extractor(shape=synapse.a_out.shape, buffer_size=steps)
    synapse.a_out.connect(output.in_port)
    config = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={**models, output: PyLoihiExtractorModel})
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=config)
        return np.stack([output.receive() for _ in range(steps)])
    finally:
        stop_runtime(source)


@lava
def test_fast_models_deliver_what_lavas_deliver():
    """Conv (graded, strided, padded), Sparse (binary, graded) and DelaySparse (binary, delays 0 to 3) under the
    fast models send the same activations every step as under Lava's own fixed-point models."""
    from snn_deploy.sims.backends.lava_models import FAST_MODELS
    for part in ("conv", "sparse", "sparse graded", "delay"):
        own = _run({}, part)
        assert np.abs(own).sum() > 0
        np.testing.assert_array_equal(_run(FAST_MODELS, part), own, err_msg=part)
