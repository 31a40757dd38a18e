"""Float mode against an independent numpy reference of the published equations.

The reference reads only the weights (by their official names) and implements, step by step:
LIF ``H = V + (X - V) / 2``, spike ``H >= threshold``, hard reset to 0; BatchNorm in eval mode; SSA
``(q k^T) v * scale`` (the other association order than the model's) into a LIF at 0.5; QKTA/QKCA masks; the
max-pool of spikes (Spikformer) and of BatchNorm output before the LIF (QKFormer). Everything runs in float64,
so agreement must be exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snn_deploy.models.attention import QKChannelAttention, QKTokenAttention, SpikingSelfAttention
from snn_deploy.models.blocks import Block, SpikingMLP
from snn_deploy.models.embed import SPS, qkformer_init_embed
from snn_deploy.neurons import make_lif

T, B, H, W = 4, 2, 4, 4


def lif(x: np.ndarray, threshold: float) -> np.ndarray:
    v, out = np.zeros_like(x[0]), []
    for x_t in x:
        h = v + (x_t - v) / 2.0
        s = (h >= threshold).astype(np.float64)
        v = h * (1.0 - s)
        out.append(s)
    return np.stack(out)


def tensor(module: nn.Module, name: str) -> np.ndarray:
    return module.get_parameter(name).detach().numpy() if name in dict(module.named_parameters()) \
        else module.get_buffer(name).numpy()


def batchnorm(module: nn.Module, bn: str, y: np.ndarray) -> np.ndarray:
    """Eval-mode BatchNorm over channel axis 2 of [T, B, C, H, W]."""
    p = {k: tensor(module, f"{bn}.{k}")[:, None, None] for k in ("weight", "bias", "running_mean", "running_var")}
    return (y - p["running_mean"]) / np.sqrt(p["running_var"] + 1e-5) * p["weight"] + p["bias"]


def conv(module: nn.Module, layer: str, x: np.ndarray, stride: int = 1) -> np.ndarray:
    """Any official conv/linear weight as a correlation over [T, B, C, H, W] (padding k // 2)."""
    w = tensor(module, f"{layer}.weight")
    w = w.reshape(*w.shape, *([1] * (4 - w.ndim)))
    k = w.shape[-1]
    pad = np.pad(x, [(0, 0)] * 3 + [(k // 2, k // 2)] * 2)
    h, wd = x.shape[-2:]
    y = sum(np.einsum("oc,tbchw->tbohw", w[:, :, dy, dx], pad[..., dy:dy + h, dx:dx + wd])
            for dy in range(k) for dx in range(k))
    if f"{layer}.bias" in dict(module.named_parameters()):
        y = y + tensor(module, f"{layer}.bias")[:, None, None]
    return y[..., ::stride, ::stride]


def maxpool(x: np.ndarray) -> np.ndarray:
    """MaxPool(3, 2, 1) over the last two axes."""
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1)] * 2, constant_values=-np.inf)
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return np.max([pad[..., dy:dy + 2 * h:2, dx:dx + 2 * w:2] for dy in range(3) for dx in range(3)], axis=0)


def unit(module, layer, bn, x, threshold=1.0, pool=None, stride=1):
    y = batchnorm(module, bn, conv(module, layer, x, stride))
    if pool == "before":
        y = maxpool(y)
    s = lif(y, threshold)
    return maxpool(s) if pool == "after" else s


def randomize(module: nn.Module) -> nn.Module:
    """Seeded weights, random BatchNorm statistics and affine parameters, float64, eval mode.

    Conv and linear weights are redrawn from the same seeded generator, so a test's outcome does not depend on
    the global torch RNG state left by the tests that ran before it."""
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
            bound = 1.0 / np.sqrt(m.weight[0].numel())
            m.weight.data.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
            if m.bias is not None:
                m.bias.data.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * bound)
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.2)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 1.0)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.5 + 0.5)
    return module.double().eval()


def run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def heads(x: np.ndarray, h: int) -> np.ndarray:
    """[T, B, C, H, W] -> [T, B, h, N, d]."""
    t, b, c = x.shape[:3]
    return x.reshape(t, b, h, c // h, -1).swapaxes(-1, -2)


@pytest.fixture
def residual():
    """An integer residual-stream input (counts 0..2), like the one every block sees."""
    return np.random.default_rng(0).integers(0, 3, size=(T, B, 16, H, W)).astype(np.float64)


def test_lif_matches_the_published_neuron():
    x = np.random.default_rng(1).normal(0.8, 1.0, size=(8, 50))
    for threshold in (1.0, 0.5):
        np.testing.assert_array_equal(run(make_lif("float", threshold).double(), x), lif(x, threshold))


@pytest.mark.parametrize("layer, qkv_bias", [("conv1d", False), ("linear", True)])
@pytest.mark.parametrize("legacy", [False, True])
def test_spiking_self_attention(residual, layer, qkv_bias, legacy):
    ssa = randomize(SpikingSelfAttention(16, 2, mode="float", layer=layer, qkv_bias=qkv_bias, legacy=legacy))
    kind = "linear" if layer == "linear" else "conv"
    q, k, v = (heads(unit(ssa, f"{n}_{kind}", f"{n}_bn", residual), 2) for n in "qkv")
    y = (q @ k.swapaxes(-1, -2)) @ v * 0.125
    s = lif(y.swapaxes(-1, -2).reshape(T, B, 16, H, W), 0.5)
    current = batchnorm(ssa, "proj_bn", conv(ssa, f"proj_{kind}", s))
    expected = lif(current.reshape(T * B, 16, H, W), 1.0).reshape(current.shape) if legacy else lif(current, 1.0)
    assert y.max() > 0.5 and s.any() and expected.any()
    np.testing.assert_array_equal(run(ssa, residual), expected)


@pytest.mark.parametrize("channel", [False, True])
def test_qk_attention(residual, channel):
    cls = QKChannelAttention if channel else QKTokenAttention
    qk = randomize(cls(16, 2, mode="float"))
    q, k = (unit(qk, f"{n}_conv", f"{n}_bn", residual) for n in "qk")
    if channel:  # one mask per channel from the sum over tokens
        masked = lif(q.sum(axis=(3, 4)), 0.5)[..., None, None] * k
    else:  # one mask per token and head from the sum over the head's channels
        mask = lif(q.reshape(T, B, 2, 8, H, W).sum(3, keepdims=True), 0.5)
        masked = (mask * k.reshape(T, B, 2, 8, H, W)).reshape(k.shape)
    expected = unit(qk, "proj_conv", "proj_bn", masked)
    assert masked.any() and expected.any()
    np.testing.assert_array_equal(run(qk, residual), expected)


def test_block_residuals_and_mlp(residual):
    block = randomize(Block(SpikingSelfAttention(16, 2, mode="float"), SpikingMLP(16, 64, mode="float")))
    attn = run(block.attn, residual)
    x = residual + attn
    hidden = unit(block, "mlp.fc1_conv", "mlp.fc1_bn", x)
    expected = x + unit(block, "mlp.fc2_conv", "mlp.fc2_bn", hidden)
    np.testing.assert_array_equal(run(block, residual), expected)


def test_sps_pools_spikes_and_adds_the_position_embedding():
    sps = randomize(SPS(2, 16, mode="float", pooled_stages=2))
    x = np.random.default_rng(2).random((T, B, 2, 8, 8))
    y = unit(sps, "proj_conv", "proj_bn", x)
    y = unit(sps, "proj_conv1", "proj_bn1", y)
    y = unit(sps, "proj_conv2", "proj_bn2", y, pool="after")
    y = unit(sps, "proj_conv3", "proj_bn3", y, pool="after")
    expected = y + unit(sps, "rpe_conv", "rpe_bn", y)
    assert expected.shape == (T, B, 16, 2, 2) and expected.max() == 2
    np.testing.assert_array_equal(run(sps, x), expected)


def test_qkformer_embedding_pools_batchnorm_output_and_adds_the_shortcut():
    embed = randomize(qkformer_init_embed("imagenet", 2, 16, mode="float"))
    x = np.random.default_rng(3).random((T, B, 2, 8, 8))
    first = unit(embed, "proj_conv", "proj_bn", x, pool="before")
    y = unit(embed, "proj1_conv", "proj1_bn", first, pool="before")
    y = unit(embed, "proj2_conv", "proj2_bn", y)
    expected = y + unit(embed, "proj_res_conv", "proj_res_bn", first, stride=2)
    assert expected.shape == (T, B, 16, 2, 2)
    np.testing.assert_array_equal(run(embed, x), expected)
