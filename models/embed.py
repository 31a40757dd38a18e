"""Patch embeddings: Spikformer's SPS, Spikformer V2's SCS (reconstruction), QKFormer's shortcut embeddings.

All take [T, B, C, H, W] and return the token grid [T, B, D, H', W']. Pools are MaxPool(3, 2, 1) everywhere.
Spikformer pools the LIF's spikes; QKFormer pools BatchNorm outputs before the LIF (analog values).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from snn_deploy.models.units import UnitHost, conv3x3

SPS_STAGES = 4


class SPS(UnitHost):
    """Spiking Patch Splitting: 4 conv3x3-BN-LIF stages (D/8, D/4, D/2, D), the last ``pooled_stages`` of them
    followed by a max-pool of spikes, then a relative position embedding ``x + LIF(BN(conv3x3(x)))``.

    ``supplementary[s]`` extra conv3x3-BN-LIF layers at stage ``s``'s width run after that stage (and its pool);
    all zero is the published SPS, non-zero is Spikformer V2's stem (:class:`SpikingConvStem`).
    Official names: ``proj_conv``, ``proj_conv1..3`` (``proj_bn*``, ``proj_lif*``, ``maxpool*``), ``rpe_*``;
    supplementary layers are ``sup{s}_{j}_conv|bn|lif``.
    """

    def __init__(self, in_channels: int, dim: int, *, mode: str, pooled_stages: int = 4,
                 supplementary: tuple[int, ...] = (0,) * SPS_STAGES) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"SPS needs an embedding dim divisible by 8; got {dim}")
        if not 0 <= pooled_stages <= SPS_STAGES or len(supplementary) != SPS_STAGES:
            raise ValueError(f"SPS has {SPS_STAGES} stages: got pooled_stages={pooled_stages}, "
                             f"supplementary={supplementary}")
        widths = [dim // 8, dim // 4, dim // 2, dim]
        cin = in_channels
        for s, width in enumerate(widths):
            sfx = str(s) if s else ""
            pooled = s >= SPS_STAGES - pooled_stages
            self.add_unit(f"proj{sfx}", conv3x3(cin, width), width, mode=mode, input="spikes" if s else "analog",
                          pool=f"maxpool{sfx}" if pooled else None,
                          names=(f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}"))
            for j in range(supplementary[s]):
                self.add_unit(f"sup{s}_{j}", conv3x3(width, width), width, mode=mode, input="spikes")
            cin = width
        self.add_unit("rpe", conv3x3(dim, dim), dim, mode=mode, input="spikes")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for key in self.unit_specs:
            if key != "rpe":
                x = self.unit(key, x)
        return x + self.unit("rpe", x)


class SpikingConvStem(SPS):
    """Spikformer V2's Spiking Convolutional Stem, reconstructed (no code is public; see docs/spikformer_v2_stem.md).

    SPS with one supplementary conv3x3-BN-LIF layer after each of the first three stages and a stack of
    ``final_depth`` of them (fitted to the published sizes: 9) at width D after the last stage, at token
    resolution, where a layer costs the fewest synaptic operations per parameter.
    """

    def __init__(self, in_channels: int, dim: int, *, mode: str, pooled_stages: int = 4, final_depth: int = 9) -> None:
        super().__init__(in_channels, dim, mode=mode, pooled_stages=pooled_stages, supplementary=(1, 1, 1, final_depth))


@dataclass(frozen=True)
class ConvLayer:
    """One conv3x3-BN-LIF layer of a shortcut embedding: unit key, output width, whether BN output is pooled."""

    key: str
    width: int
    pool: bool = False


class ShortcutEmbed(UnitHost):
    """QKFormer's patch embedding: a chain of conv3x3-BN-(MaxPool)-LIF layers plus the "deformed shortcut", a
    1x1 strided conv-BN-LIF from an earlier point whose spikes are added to the chain's output.

    ``shortcut_from`` is the index of the layer whose output feeds the shortcut (-1: the embedding's input); its
    stride equals the downsampling of the layers after that point. Pools are named ``{key}_maxpool``.
    """

    def __init__(self, in_channels: int, layers: list[ConvLayer], *, shortcut_from: int, mode: str, input: str,
                 pool_spikes: bool = False) -> None:
        super().__init__()
        self.keys = [layer.key for layer in layers]
        self.shortcut_from = shortcut_from
        cin = in_channels
        for i, layer in enumerate(layers):
            self.add_unit(layer.key, conv3x3(cin, layer.width), layer.width, mode=mode,
                          input=input if i == 0 else "spikes",
                          pool=f"{layer.key}_maxpool" if layer.pool else None, pool_before_neuron=not pool_spikes)
            cin = layer.width
        source = in_channels if shortcut_from < 0 else layers[shortcut_from].width
        stride = 2 ** sum(layer.pool for layer in layers[shortcut_from + 1:])
        self.add_unit("proj_res", nn.Conv2d(source, cin, kernel_size=1, stride=stride, bias=False), cin, mode=mode,
                      input=input if shortcut_from < 0 else "spikes")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = x
        for i, key in enumerate(self.keys):
            x = self.unit(key, x)
            if i == self.shortcut_from:
                feat = x
        return x + self.unit("proj_res", feat)


QKFORMER_VARIANTS = ("imagenet", "cifar", "dvs")


def qkformer_init_embed(variant: str, in_channels: int, dim: int, *, mode: str, pool_spikes: bool = False
                        ) -> ShortcutEmbed:
    """``patch_embed1`` of the official file for ``variant``, producing width ``dim`` (``pool_spikes``: pools act
    on the LIF's spikes instead of the BatchNorm output, the deployable placement)."""
    if variant == "imagenet":  # 224 -> 56: two pooled layers, shortcut from the first (stride 2)
        layers = [ConvLayer("proj", dim // 2, True), ConvLayer("proj1", dim, True), ConvLayer("proj2", dim)]
        return ShortcutEmbed(in_channels, layers, shortcut_from=0, mode=mode, input="analog",
                             pool_spikes=pool_spikes)
    if variant == "cifar":  # no downsampling, shortcut 1x1 stride 1
        layers = [ConvLayer("proj", dim // 2), ConvLayer("proj1", dim)]
        return ShortcutEmbed(in_channels, layers, shortcut_from=0, mode=mode, input="analog",
                             pool_spikes=pool_spikes)
    if variant == "dvs":  # 128 -> 16: three pooled layers, shortcut from the second (stride 4)
        layers = [ConvLayer("proj", dim // 8), ConvLayer("proj1", dim // 4, True), ConvLayer("proj2", dim // 2, True),
                  ConvLayer("proj3", dim, True)]
        return ShortcutEmbed(in_channels, layers, shortcut_from=1, mode=mode, input="analog",
                             pool_spikes=pool_spikes)
    raise ValueError(f"unknown QKFormer variant {variant!r}; choose one of {', '.join(QKFORMER_VARIANTS)}")


def qkformer_stage_embed(variant: str, dim: int, *, mode: str, pool_spikes: bool = False) -> ShortcutEmbed:
    """``patch_embed2/3``: D/2 -> D with one 2x downsampling; the input is the integer residual stream."""
    first = "proj" if variant == "dvs" else "proj3"
    pool_first = variant == "imagenet"
    layers = [ConvLayer(first, dim, pool_first), ConvLayer("proj4", dim, not pool_first)]
    return ShortcutEmbed(dim // 2, layers, shortcut_from=-1, mode=mode, input="integer",
                         pool_spikes=pool_spikes)
