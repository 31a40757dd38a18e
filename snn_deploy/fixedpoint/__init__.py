"""Loihi fixed-point arithmetic: the one definition every snn-deploy backend uses or is tested against."""

from snn_deploy.fixedpoint.lif import (
    LIFParams, LIFState, lif_run, lif_step, lif_step_inplace, loihi_v_register,
    trunc_shift, wrap_u,
)
from snn_deploy.fixedpoint.product import merge_heads, spike_product, split_heads
from snn_deploy.fixedpoint.synapse import (
    DENSE_DELAY,
    SignMode,
    apply_exponent,
    conv_run,
    conv_step,
    delay,
    dense_run,
    dense_step,
    lava_conv_weight_to_torch,
    quantize_weights,
    sign_mode,
    torch_conv_weight_to_lava,
    torch_image_to_lava,
    wrap_signed,
)

__all__ = [
    "DENSE_DELAY", "LIFParams", "LIFState", "SignMode", "apply_exponent", "conv_run", "conv_step", "delay",
    "dense_run", "dense_step", "lava_conv_weight_to_torch", "lif_run", "lif_step",
    "lif_step_inplace", "loihi_v_register", "merge_heads", "quantize_weights",
    "sign_mode", "spike_product", "split_heads", "torch_conv_weight_to_lava", "torch_image_to_lava", "trunc_shift",
    "wrap_signed", "wrap_u",
]
