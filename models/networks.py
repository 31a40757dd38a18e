"""Spikformer (and V2) and QKFormer networks assembled from the building blocks.

Input: a static image batch [B, C, H, W], repeated over the config's T steps (the first layer sees the analog
pixels every step), or a [T, B, C, H, W] sequence (event frames) used as is. Output: logits [B, classes] from
the head applied to the mean over tokens and time of the last residual stream.
"""

from __future__ import annotations

import torch
from torch import nn

from snn_deploy.models.attention import QKChannelAttention, QKTokenAttention, SpikingSelfAttention
from snn_deploy.models.blocks import Block, SpikingMLP
from snn_deploy.models.configs import Config, QKFormerConfig, SpikformerConfig
from snn_deploy.models.deploy import DeployIssue, SynapticUnit, deploy_issues, synaptic_units
from snn_deploy.models.embed import SPS, SpikingConvStem, qkformer_init_embed, qkformer_stage_embed

SPIKFORMER_LAYERS = {  # variant -> (attention layer, MLP layer, q/k/v bias), as in the official files
    "imagenet": ("conv1d", "conv2d", False),
    "cifar": ("linear", "linear", True),
    "dvs": ("conv1d", "conv1d", False),
}


class SpikingNetwork(nn.Module):
    """Shared input handling, classification head, and deployability metadata."""

    def __init__(self, config: Config, embed_dim: int, arch: str | None = None) -> None:
        super().__init__()
        self.config, self.arch = config, arch
        self.head = nn.Linear(embed_dim, config.num_classes)

    def init_weights(self) -> None:
        """The official initialisation: Linear weights truncated normal (std 0.02), biases zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def time_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> repeated [T, B, C, H, W]; [T, B, C, H, W] passes through."""
        if x.dim() == 4:
            return x.unsqueeze(0).expand(self.config.T, *x.shape).contiguous()
        if x.dim() == 5:
            return x
        raise ValueError(f"expected input [B, C, H, W] or [T, B, C, H, W]; got shape {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, H, W] input -> last residual stream [T, B, D, H', W']."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(self.time_sequence(x))
        return self.head(features.flatten(3).mean(3).mean(0))

    def units(self) -> list[SynapticUnit]:
        """Synaptic units in forward order: what an exporter folds (BN) and quantizes."""
        return synaptic_units(self)

    def deploy_issues(self) -> list[DeployIssue]:
        """Every construct that does not map to neuromorphic cores as is, in forward order."""
        return deploy_issues(self)


class Spikformer(SpikingNetwork):
    """Spikformer: SPS (or V2's SCS) stem, ``depth`` SSA blocks at width D, linear head.

    Official attribute names: ``patch_embed``, ``block.{i}.attn``, ``block.{i}.mlp``, ``head``.
    """

    def __init__(self, config: SpikformerConfig, *, mode: str = "float", arch: str | None = None) -> None:
        super().__init__(config, config.embed_dim, arch)
        c, d = config, config.embed_dim
        attn_layer, mlp_layer, qkv_bias = SPIKFORMER_LAYERS[c.variant]
        if c.stem == "scs":
            self.patch_embed = SpikingConvStem(c.in_channels, d, mode=mode, pooled_stages=c.pooled_stages,
                                               final_depth=c.scs_final_depth)
        else:
            self.patch_embed = SPS(c.in_channels, d, mode=mode, pooled_stages=c.pooled_stages)
        self.block = nn.ModuleList(
            Block(SpikingSelfAttention(d, c.num_heads, mode=mode, scale=c.attn_scale, layer=attn_layer,
                                       qkv_bias=qkv_bias),
                  SpikingMLP(d, c.mlp_hidden, mode=mode, layer=mlp_layer))
            for _ in range(c.depth))
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x


class QKFormer(SpikingNetwork):
    """QKFormer: per stage a shortcut patch embedding then blocks; Q-K attention in early stages, SSA in the last.

    Official attribute names: ``patch_embed{s}``, ``stage{s}.{i}.tssa|attn|ssa``, ``stage{s}.{i}.mlp``, ``head``.
    """

    def __init__(self, config: QKFormerConfig, *, mode: str = "float", arch: str | None = None) -> None:
        super().__init__(config, config.embed_dim, arch)
        c = config
        mlp_names = ("fc1", "fc2") if c.variant == "imagenet" else ("mlp1", "mlp2")
        ssa_name = "attn" if c.variant == "imagenet" else "ssa"
        qk_cls, qk_name = (QKTokenAttention, "tssa") if c.qk_attention == "token" else (QKChannelAttention, "cssa")
        last = len(c.stage_dims) - 1
        self.stage_names: list[tuple[str, str]] = []
        for s, (dim, depth, hidden) in enumerate(zip(c.stage_dims, c.stage_depths, c.mlp_hidden)):
            embed = (qkformer_init_embed(c.variant, c.in_channels, dim, mode=mode, pool_spikes=c.pool_spikes) if s == 0
                     else qkformer_stage_embed(c.variant, dim, mode=mode, pool_spikes=c.pool_spikes))
            blocks = nn.ModuleList(
                Block(SpikingSelfAttention(dim, c.num_heads, mode=mode, scale=c.attn_scale, legacy=c.legacy_ssa)
                      if s == last else qk_cls(dim, c.num_heads, mode=mode),
                      SpikingMLP(dim, hidden, mode=mode, names=mlp_names),
                      attn_name=ssa_name if s == last else qk_name)
                for _ in range(depth))
            self.add_module(f"patch_embed{s + 1}", embed)
            self.add_module(f"stage{s + 1}", blocks)
            self.stage_names.append((f"patch_embed{s + 1}", f"stage{s + 1}"))
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for embed_name, stage_name in self.stage_names:
            x = getattr(self, embed_name)(x)
            for blk in getattr(self, stage_name):
                x = blk(x)
        return x


def build(config: Config, *, mode: str = "float", arch: str | None = None) -> SpikingNetwork:
    """The network for ``config`` with neurons of ``mode``."""
    if isinstance(config, SpikformerConfig):
        return Spikformer(config, mode=mode, arch=arch)
    if isinstance(config, QKFormerConfig):
        return QKFormer(config, mode=mode, arch=arch)
    raise TypeError(f"not a model config: {type(config).__name__}")
