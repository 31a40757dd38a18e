"""snn_deploy.fixedpoint against Lava's own bit-accurate processes (LIF, Dense, Conv), property-based."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from snn_deploy import lavaref
from snn_deploy.fixedpoint import conv_run, dense_run, lif_run
from snn_deploy.fixedpoint import limits as L

pytestmark = pytest.mark.lava

du_values = st.one_of(st.sampled_from([-1, 0, 4095]), st.integers(-1, 4095))
dv_values = st.one_of(st.sampled_from([0, 4095, 2048]), st.integers(0, 4095))
vth_values = st.one_of(st.sampled_from([0, 1, L.VTH_RANGE[1]]), st.integers(0, 2000), st.integers(*L.VTH_RANGE))
bias_exp_values = st.integers(-12, 7)


@st.composite
def lif_cases(draw):
    """A random population, its parameters and an input current sequence spanning small and extreme values."""
    steps = draw(st.integers(1, 16))
    n = draw(st.integers(1, 6))
    scale = draw(st.sampled_from([8, 1000, 1 << 15, L.A_IN_RANGE[1]]))
    a_in = np.asarray(draw(st.lists(st.integers(-scale, scale), min_size=steps * n, max_size=steps * n)))
    return dict(
        a_in=a_in.reshape(steps, n),
        du=draw(du_values), dv=draw(dv_values), vth=draw(vth_values),
        bias_mant=np.asarray(draw(st.lists(st.integers(*L.BIAS_MANT_RANGE), min_size=n, max_size=n))),
        bias_exp=np.asarray(draw(st.lists(bias_exp_values, min_size=n, max_size=n))),
    )


def _case(a_in, du, dv, vth, bias_mant=0, bias_exp=0):
    a_in = np.asarray(a_in, dtype=np.int64)
    n = a_in.shape[1]
    return dict(a_in=a_in, du=du, dv=dv, vth=vth, bias_mant=np.full(n, bias_mant), bias_exp=np.full(n, bias_exp))


@settings(max_examples=30)
@given(lif_cases())
# v lands exactly on vth << 6 (no spike), then one above it (spike): the strict '>'.
@example(_case([[100, 101], [0, 0]], du=4095, dv=4095, vth=100))
# negative currents with decays: trunc toward zero, not floor
@example(_case([[-7, -1000, 5], [3, -1, -3], [0, 0, 0]], du=1, dv=3000, vth=10))
# u overflow: no current decay, large input accumulates past 2^23 and wraps
@example(_case([[L.A_IN_RANGE[1] // 3, -(L.A_IN_RANGE[1] // 3)]] * 6, du=-1, dv=0, vth=L.VTH_RANGE[1]))
# u lands exactly on +2^23 (kept) and -2^23 (wrapped to +2^23): the boundaries of Lava's wrap
@example(_case([[1 << 17, -(1 << 17)], [0, 0]], du=-1, dv=0, vth=L.VTH_RANGE[1]))
# v saturation at +-(2^23 - 1) with no leak (V_MAX exceeds the largest threshold, so the top spikes)
@example(_case([[60000, -60000]] * 5, du=4095, dv=0, vth=L.VTH_RANGE[1]))
# biases with positive and negative exponents, no input
@example(_case(np.zeros((4, 2)), du=0, dv=0, vth=3, bias_mant=-4095, bias_exp=-5))
@example(_case(np.zeros((4, 2)), du=0, dv=100, vth=1000, bias_mant=4095, bias_exp=7))
def test_lif_matches_lava(case):
    ours = lif_run(case["a_in"], du=case["du"], dv=case["dv"], vth=case["vth"],
                   bias_mant=case["bias_mant"], bias_exp=case["bias_exp"])
    lava = lavaref.run_lif(case["a_in"], du=case["du"], dv=case["dv"], vth=case["vth"],
                           bias_mant=case["bias_mant"], bias_exp=case["bias_exp"])
    for name, mine, theirs in zip(("spikes", "u", "v"), ours, lava):
        np.testing.assert_array_equal(mine, theirs, err_msg=f"{name} differs from Lava")


def test_edge_examples_exercise_what_they_claim():
    """The explicit examples above really hit equality, wrap and saturation (so the Lava test covers them)."""
    s, _, v = lif_run(np.array([[100, 101], [0, 0]]), du=4095, dv=4095, vth=100)
    assert s[0].tolist() == [0, 1] and v[0, 0] == 100 << 6
    big = L.A_IN_RANGE[1] // 3
    _, u, _ = lif_run(np.array([[big, -big]] * 6), du=-1, dv=0, vth=L.VTH_RANGE[1])
    assert (np.diff(u[:, 0]) < 0).any() and (np.diff(u[:, 1]) > 0).any()
    assert np.abs(u).max() <= L.UV_HALF
    s, _, v = lif_run(np.array([[60000, -60000]] * 5), du=4095, dv=0, vth=L.VTH_RANGE[1])
    assert v[-1, 1] == L.V_MIN  # negative saturation
    assert s[:, 0].sum() == 1 and L.V_MAX > L.VTH_RANGE[1] << L.VTH_SHIFT  # positive side clips to V_MAX, spikes


@st.composite
def dense_cases(draw):
    steps, n_in, n_out = draw(st.integers(1, 8)), draw(st.integers(1, 12)), draw(st.integers(1, 6))
    sign = draw(st.sampled_from(["mixed", "excitatory", "inhibitory"]))
    lo, hi = {"mixed": (-400, 400), "excitatory": (0, 400), "inhibitory": (-400, 0)}[sign]
    weights = np.asarray(draw(st.lists(st.integers(lo, hi), min_size=n_in * n_out, max_size=n_in * n_out)))
    graded = draw(st.booleans())
    s_hi = 255 if graded else 1
    s_in = np.asarray(draw(st.lists(st.integers(0, s_hi), min_size=steps * n_in, max_size=steps * n_in)))
    return dict(s_in=s_in.reshape(steps, n_in), weights=weights.reshape(n_out, n_in), graded=graded,
                weight_exp=draw(st.integers(-6, 6)), num_weight_bits=draw(st.integers(1, 8)))


@settings(max_examples=20)
@given(dense_cases())
@example(dict(s_in=np.ones((3, 4), dtype=np.int64), weights=np.array([[3, -3, 255, -256], [1, 2, 3, 4]]),
              graded=False, weight_exp=-1, num_weight_bits=8))
@example(dict(s_in=np.array([[0, 3, 200], [7, 0, 1]]), weights=np.array([[-5, -9, -255], [-1, 0, -300]]),
              graded=True, weight_exp=3, num_weight_bits=6))
def test_dense_matches_lava(case):
    ours = dense_run(case["s_in"], case["weights"], weight_exp=case["weight_exp"],
                     num_weight_bits=case["num_weight_bits"], graded=case["graded"])
    lava = lavaref.run_dense(case["s_in"], case["weights"], weight_exp=case["weight_exp"],
                             num_weight_bits=case["num_weight_bits"], graded=case["graded"])
    np.testing.assert_array_equal(ours, lava)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    steps = draw(st.integers(1, 4))
    graded = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(0, 200 if graded else 2, size=(steps, c_in, h, w))
    weight = rng.integers(-256, 256, size=(c_out, c_in // groups, kh, kw))
    return dict(x=x, weight=weight, stride=stride, padding=padding, groups=groups, graded=graded)


@settings(max_examples=15)
@given(conv_cases())
def test_conv_matches_lava(case):
    x, weight = case.pop("x"), case.pop("weight")
    np.testing.assert_array_equal(conv_run(x, weight, **case), lavaref.run_conv(x, weight, **case))


def test_conv_asymmetric_kernel_orientation():
    """A kernel with a single off-centre tap shows whether the flip and the (W, H) transpose are right."""
    x = np.zeros((2, 1, 5, 6), dtype=np.int64)
    x[0, 0, 2, 3] = 1
    weight = np.zeros((1, 1, 3, 3), dtype=np.int64)
    weight[0, 0, 0, 2] = 9  # top-right tap in torch's cross-correlation orientation
    ours = conv_run(x, weight, padding=1)
    np.testing.assert_array_equal(ours, lavaref.run_conv(x, weight, padding=1))
    assert ours[1, 0, 3, 2] == 9 and ours.sum() == 9  # torch: out[i, j] += w[0, 2] * x[i + 0 - 1, j + 2 - 1]
