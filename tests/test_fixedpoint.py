"""snn_deploy.fixedpoint without Lava: hand-computed cases, validation, and the torch neuron module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.fixedpoint import (
    LIFParams, delay, dense_run, dense_step, lava_conv_weight_to_torch, lif_run, quantize_weights,
    torch_conv_weight_to_lava, trunc_shift, wrap_signed, wrap_u,
)
from snn_deploy.fixedpoint import limits as L
from snn_deploy.fixedpoint.lif import LIFState, float_dtype, lif_step, lif_step_inplace
from snn_deploy.neurons import FloatLIF, LoihiLIF, QuantizedLIF, make_lif, neuron_mode, set_neuron_mode


def test_hand_computed_lif_trace():
    # du=2047: u keeps (4096-2048)/4096 = 1/2 of itself; dv=1024: v keeps 3/4; vth=3 -> spike iff v > 192.
    s, u, v = lif_run(np.array([[2], [0], [1], [0]]), du=2047, dv=1024, vth=3)
    # t0: u = 128, v = 128.  t1: u = 64, v = 96 + 64 = 160.  t2: u = 32 + 64 = 96, v = 120 + 96 = 216 > 192 -> 0.
    # t3: u = 48, v = 0 + 48.
    assert u[:, 0].tolist() == [128, 64, 96, 48]
    assert v[:, 0].tolist() == [128, 160, 0, 48]
    assert s[:, 0].tolist() == [0, 0, 1, 0]


def test_trunc_shift_rounds_toward_zero_for_ints_and_floats():
    x = torch.tensor([-8193, -4097, -4095, 4095, 4097, 8193])
    assert trunc_shift(x, 12).tolist() == [-2, -1, 0, 0, 1, 2]
    assert trunc_shift(x.double(), 12).tolist() == [-2, -1, 0, 0, 1, 2]


def test_wrap_u_is_lavas_single_correction():
    half = L.UV_HALF
    x = torch.tensor([half, half + 1, -half, -half + 1, 3 * half - 1])
    assert wrap_u(x).tolist() == [half, -half + 1, half, -half + 1, half - 1]
    assert wrap_signed(torch.tensor([half, -half - 1]), 24).tolist() == [-half, half - 1]


def test_bias_exponents():
    assert LIFParams(0, 0, 0, bias_mant=torch.tensor([5, -5]), bias_exp=2).bias().tolist() == [20, -20]
    # negative exponent is an arithmetic (floor) shift, as numpy.right_shift in Lava
    assert LIFParams(0, 0, 0, bias_mant=torch.tensor([5, -5]), bias_exp=-1).bias().tolist() == [2, -3]


@pytest.mark.parametrize("bad", [dict(du=-2), dict(dv=4096), dict(vth=1 << 17), dict(bias_mant=4096), dict(bias_exp=8)])
def test_parameter_ranges_are_enforced(bad):
    args = dict(du=0, dv=0, vth=1) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        lif_run(np.zeros((2, 1), dtype=np.int64), **args)


def test_non_integer_and_out_of_range_inputs_are_rejected():
    with pytest.raises(ValueError, match="integer"):
        lif_run(np.array([[0.5]]), du=0, dv=0, vth=1)
    with pytest.raises(ValueError, match="a_in"):
        lif_run(np.array([[1 << 18]]), du=0, dv=0, vth=1)


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    assert isinstance(lif_run(np.zeros((2, 3), dtype=np.int32), du=0, dv=0, vth=1)[0], np.ndarray)
    assert isinstance(lif_run(torch.zeros(2, 3, dtype=torch.int32), du=0, dv=0, vth=1)[0], torch.Tensor)


def test_quantize_weights_sign_modes():
    assert quantize_weights(np.array([[3, -3, 255, -300, 7]])).tolist() == [[2, -4, 254, -256, 6]]
    assert quantize_weights(np.array([[3, 300, 5]])).tolist() == [[3, 255, 5]]
    assert quantize_weights(np.array([[-3, -300, -5]]), 6).tolist() == [[0, -252, -4]]


def test_dense_delay_and_exponent():
    s = np.array([[1, 0], [1, 1], [0, 1]])
    w = np.array([[4, 6]])
    assert dense_run(s, w, weight_exp=-1).ravel().tolist() == [0, 2, 5]
    assert dense_step(s, w, weight_exp=2).ravel().tolist() == [16, 40, 24]
    assert dense_step(np.array([[3, 2]]), w, graded=True).ravel().tolist() == [24]
    assert dense_step(np.array([[3, 2]]), w, graded=False).ravel().tolist() == [10]
    assert delay(np.arange(4), 2).tolist() == [0, 0, 0, 1] and delay(np.arange(2), 5).tolist() == [0, 0]


def test_conv_weight_layout_round_trip():
    w = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    lava = torch_conv_weight_to_lava(w)
    assert lava.shape == (2, 5, 4, 3)
    np.testing.assert_array_equal(lava_conv_weight_to_torch(lava), w)


def test_torch_module_integer_forward_equals_lif_run():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-3000, 3000, (24, 3, 10), generator=gen)
    params = LIFParams(du=700, dv=300, vth=40, bias_mant=torch.arange(10) - 5, bias_exp=torch.arange(10) % 4)
    module = LoihiLIF(params)
    spikes, u, v = module.run(a.double())
    ref = lif_run(a, du=700, dv=300, vth=40, bias_mant=params.bias_mant, bias_exp=params.bias_exp)
    for mine, theirs in zip((spikes, u, v), ref):
        assert torch.equal(mine.to(torch.int64), theirs)
    assert torch.equal(module(a), ref[0])  # integer input -> integer spikes
    assert 0.05 < ref[0].double().mean() < 0.95


def test_torch_module_gradient_is_finite_and_nonzero():
    a = (torch.randn(16, 4, 8, dtype=torch.float64) * 200).round().requires_grad_()
    out = LoihiLIF(LIFParams(du=100, dv=200, vth=50))(a)
    out.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_float_lif_matches_published_equations():
    x = torch.tensor([[0.8], [0.9], [3.0], [0.1], [2.0]])
    ref, v = [], 0.0
    for xt in x[:, 0].tolist():  # H = V + (X - V)/2; spike if H >= 1; hard reset to 0
        h = v + (xt - v) / 2
        ref.append(float(h >= 1))
        v = 0.0 if h >= 1 else h
    assert FloatLIF()(x)[:, 0].tolist() == ref == [0, 0, 1, 0, 1]


def test_quantized_lif_tracks_float_lif_and_switches_modes():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 64, 32, generator=gen)
    agree = (QuantizedLIF(0.5)(x) == FloatLIF(0.5)(x)).double().mean()
    assert agree > 0.99
    model = torch.nn.Sequential(make_lif("float"), torch.nn.Sequential(make_lif("float", 0.5)))
    assert neuron_mode(set_neuron_mode(model, "loihi")) == "loihi"
    assert model[1][0].threshold == 0.5
    with pytest.raises(ValueError, match="neuron mode"):
        make_lif("analog")


@st.composite
def float_path_cases(draw):
    """A population whose decays float_dtype may accept (powers of two, u without memory) or not, near the limits."""
    decays = st.sampled_from([0, 2047, 2048, 3071, 3072, 3583, 4095, 1000, 4094])  # u: factor 4095 - du, v: 4096 - dv
    du, dv = draw(decays), draw(decays)
    vth = draw(st.sampled_from([1, 64, 1000, L.VTH_RANGE[1]]))
    peak = draw(st.sampled_from([1, 1 << 10, 1 << 17, L.A_IN_RANGE[1]]))
    n = 6
    a = draw(st.lists(st.integers(-peak, peak), min_size=8 * n, max_size=8 * n))
    mant = draw(st.lists(st.integers(*L.BIAS_MANT_RANGE), min_size=n, max_size=n))
    exp = draw(st.lists(st.integers(0, L.BIAS_EXP_HW_RANGE[1]), min_size=n, max_size=n))
    return du, dv, vth, torch.tensor(a).reshape(8, n), torch.tensor(mant), torch.tensor(exp)


@settings(max_examples=200, deadline=None)
@given(float_path_cases())
def test_float_state_in_place_equals_the_integer_arithmetic(case):
    """The simulator's path: lif_step in place on a float state (float32 where float_dtype says so) gives the same
    spikes, u and v as lif_run's int64 arithmetic, step for step."""
    du, dv, vth, a, mant, exp = case
    spikes, us, vs = lif_run(a, du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp)
    params = LIFParams(du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp)
    dtype = float_dtype(params, int(a.abs().max()))
    if du == 4095 and dv in (0, 2048, 3072) and a.abs().max() <= 1 << 17:  # the deployed neurons' case
        assert dtype == torch.float32
    for kind in sorted({dtype, torch.float64}, key=str):
        state = LIFState.zeros(a.shape[1:], kind)
        out = torch.empty(a.shape[1:], dtype=kind)
        for t in range(a.shape[0]):
            lif_step_inplace(state, a[t].to(kind), params, params.bias(), out)
            assert out.tolist() == spikes[t].tolist(), (kind, t)
            assert state.u.tolist() == us[t].tolist() and state.v.tolist() == vs[t].tolist(), (kind, t)
        fresh, s = LIFState.zeros(a.shape[1:], kind), None
        for t in range(a.shape[0]):  # the allocating form agrees too
            s, fresh = lif_step(fresh, a[t].to(kind), params)
        assert s.tolist() == spikes[-1].tolist() and fresh.v.tolist() == vs[-1].tolist()


def test_spike_product_is_q_times_k_transpose_v_per_head():
    """fixedpoint.spike_product against the definition written out as loops: y[c, n] = m * sum_i q[i, n] *
    sum_n' k[i, n'] v[c, n'] over the channels i of c's head; numpy and torch give the same integers."""
    from snn_deploy.fixedpoint import spike_product

    rng = np.random.default_rng(5)
    heads, d, tokens, m = 2, 3, 5, 7
    q, k, v = (rng.integers(0, 2, (heads * d, tokens)) for _ in range(3))
    expected = np.zeros((heads * d, tokens), dtype=np.int64)
    for c in range(heads * d):
        head = range((c // d) * d, (c // d + 1) * d)
        for n in range(tokens):
            expected[c, n] = m * sum(q[i, n] * sum(k[i, j] * v[c, j] for j in range(tokens)) for i in head)
    assert np.array_equal(spike_product(q, k, v, heads, m), expected)
    batched = spike_product(torch.from_numpy(np.stack([q, k])).double(), torch.from_numpy(np.stack([k, k])).double(),
                            torch.from_numpy(np.stack([v, v])).double(), heads, m)
    assert batched[0].tolist() == expected.tolist()
