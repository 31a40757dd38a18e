"""The fixed-point sigma-delta step against Lava's own ``lava.proc.sdn`` fixed_pt models (property-tested): the
models' dynamics methods run on their own state, as their ``run_spk`` calls them."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.fixedpoint.sigma_delta import SigmaDeltaParams, SigmaDeltaState, sigma_delta_step

NEURONS = 5


def _lava_model(mode: str, vth: int, bias: np.ndarray, spike_exp: int, state_exp: int):
    """A Lava fixed_pt model object holding its process's initial Vars (as SigmaDelta / Delta scale them)."""
    from lava.proc.sdn.models import PyDeltaModelFixed, PySigmaDeltaModelFixed, PySigmaModelFixed
    from lava.proc.sdn.process import ActivationMode

    cls = {"sigma_delta": PySigmaDeltaModelFixed, "delta": PyDeltaModelFixed, "sigma": PySigmaModelFixed}[mode]
    model = object.__new__(cls)
    scale = 1 << (spike_exp + state_exp)
    zeros = np.zeros(NEURONS, dtype=np.int32)
    for name in ("sigma", "act", "residue", "error"):
        setattr(model, name, zeros.copy())
    model.vth = np.array([vth * scale], dtype=np.int32)
    model.bias = (bias * scale).astype(np.int32)
    model.spike_exp, model.state_exp = np.array([spike_exp]), np.array([state_exp])
    model.cum_error = np.array([False])
    model.act_mode = ActivationMode.RELU
    return model


def _lava_step(model, mode: str, a_in: np.ndarray) -> np.ndarray:
    """What the model's ``run_spk`` sends for input ``a_in`` (its recv / send replaced by arguments)."""
    if mode == "sigma":
        model.sigma = model.sigma_dynamics(a_in)
        return model.sigma
    if mode == "delta":
        a = np.left_shift(a_in, model.spike_exp + model.state_exp)
        out = np.right_shift(model.delta_dynamics(a), model.state_exp)
        model.act = a
        return out
    return np.right_shift(model.dynamics(a_in), model.state_exp)


@settings(max_examples=60, deadline=None)
@given(mode=st.sampled_from(["sigma_delta", "delta", "sigma"]), vth=st.integers(0, 40),
       exps=st.tuples(st.integers(0, 7), st.integers(0, 7)),
       bias=st.lists(st.integers(-50, 50), min_size=NEURONS, max_size=NEURONS),
       inputs=st.lists(st.lists(st.integers(-3000, 3000), min_size=NEURONS, max_size=NEURONS), min_size=1,
                       max_size=12))
def test_sigma_delta_step_is_lavas_fixed_pt_model(mode, vth, exps, bias, inputs):
    spike_exp, state_exp = exps
    bias = np.array(bias if mode == "sigma_delta" else [0] * NEURONS)
    model = _lava_model(mode, vth, bias, spike_exp, state_exp)
    params = SigmaDeltaParams(vth, torch.from_numpy(bias), spike_exp, state_exp, mode)
    state = SigmaDeltaState.zeros((NEURONS,))
    for a_in in inputs:
        a_in = np.array(a_in, dtype=np.int32)
        expected = _lava_step(model, mode, a_in)
        got = sigma_delta_step(state, torch.from_numpy(a_in), params)
        np.testing.assert_array_equal(got.numpy(), expected)
        if mode != "sigma":
            np.testing.assert_array_equal(state.residue.numpy(), model.residue)
            np.testing.assert_array_equal(state.act.numpy(), model.act)
        np.testing.assert_array_equal(state.sigma.numpy(), model.sigma)
