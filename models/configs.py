"""Architecture configurations: one frozen dataclass per family, plain fields only (they go into model files).

``variant`` names the official source file whose layer types, parameter names and pooling placement a model
follows (``imagenet``, ``cifar`` or ``dvs``); everything else is a free size parameter, so the registry is a table
of named configurations rather than a set of classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

VARIANTS = ("imagenet", "cifar", "dvs")
STEMS = ("sps", "scs")
QK_ATTENTIONS = ("token", "channel")


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not one of {', '.join(choices)}")


def _check_positive(config: Any, *fields: str) -> None:
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{field} must be a positive number; got {value!r}")


def _check_divisible(img_size: int, factor: int) -> None:
    if img_size % factor:
        raise ValueError(f"img_size={img_size} must be divisible by the stem's downsampling factor {factor}")


@dataclass(frozen=True)
class SpikformerConfig:
    """Spikformer (``stem='sps'``) and Spikformer V2 (``stem='scs'``, reconstructed stem).

    Layer types by ``variant``: imagenet = Conv1d attention + Conv2d MLP, q/k/v without bias; cifar = Linear
    everywhere with bias (``*_linear`` names); dvs = Conv1d everywhere. ``pooled_stages`` is how many of the 4 SPS
    stages end with a max-pool (imagenet and dvs 4, cifar 2).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    variant: str = "imagenet"
    pooled_stages: int = 4
    attn_scale: float = 0.125
    stem: str = "sps"
    scs_final_depth: int = 9
    in_channels: int = 3
    img_size: int = 224
    num_classes: int = 1000
    T: int = 4

    def __post_init__(self) -> None:
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("stem", self.stem, STEMS)
        _check_positive(self, "embed_dim", "depth", "num_heads", "mlp_ratio", "attn_scale", "in_channels",
                        "img_size", "num_classes", "T")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if not 0 <= self.pooled_stages <= 4:
            raise ValueError(f"pooled_stages must be 0..4; got {self.pooled_stages}")
        if self.stem == "scs" and self.scs_final_depth < 0:
            raise ValueError(f"scs_final_depth must be >= 0; got {self.scs_final_depth}")
        _check_divisible(self.img_size, 2 ** self.pooled_stages)

    @property
    def family(self) -> str:
        return "spikformer-v2" if self.stem == "scs" else "spikformer"

    @property
    def tokens(self) -> tuple[int, ...]:
        """Token count of each transformer stage (one stage)."""
        return ((self.img_size // 2 ** self.pooled_stages) ** 2,)

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


@dataclass(frozen=True)
class QKFormerConfig:
    """QKFormer, hierarchical. ``variant`` fixes the stage plan of the official file:

    * imagenet: widths D/4, D/2, D; blocks 1 QKTA, 2 QKTA, depth-3 SSA; stem /4, each stage /2.
    * cifar: widths D/4, D/2, D; blocks 1, 1, depth-2; stem /1, each stage /2.
    * dvs: widths D/2, D; blocks 1 QKTA, depth-1 SSA; stem /8, stage /2.

    ``qk_attention='channel'`` swaps QKTA for the paper's QKCA. ``legacy_ssa=True`` reproduces the official
    SSA defect (proj_lif over [T*B, ...]); such a model is for accuracy comparisons only and is not deployable.
    ``pool_spikes=True`` moves the embeddings' max-pools after their LIFs (pooling spikes, as Spikformer does):
    the official placement pools analog BatchNorm outputs, which neuromorphic cores cannot do; the parameters are
    the same either way.
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    variant: str = "imagenet"
    qk_attention: str = "token"
    legacy_ssa: bool = False
    pool_spikes: bool = False
    attn_scale: float = 0.125
    in_channels: int = 3
    img_size: int = 224
    num_classes: int = 1000
    T: int = 4

    def __post_init__(self) -> None:
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("qk_attention", self.qk_attention, QK_ATTENTIONS)
        _check_positive(self, "embed_dim", "depth", "num_heads", "mlp_ratio", "attn_scale", "in_channels",
                        "img_size", "num_classes", "T")
        for flag in ("legacy_ssa", "pool_spikes"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false; got {getattr(self, flag)!r}")
        for width in self.stage_dims:
            if width % self.num_heads or width % 8:
                raise ValueError(f"stage width {width} (embed_dim={self.embed_dim}) must be divisible by "
                                 f"num_heads={self.num_heads} and by 8")
        if min(self.stage_depths) < 1:
            raise ValueError(f"depth={self.depth} leaves no SSA block for variant {self.variant!r}; "
                             f"use depth >= {sum(self.stage_depths[:-1]) + 1}")
        _check_divisible(self.img_size, self.downsampling[-1])

    @property
    def family(self) -> str:
        return "qkformer"

    @property
    def stage_dims(self) -> tuple[int, ...]:
        d = self.embed_dim
        return (d // 2, d) if self.variant == "dvs" else (d // 4, d // 2, d)

    @property
    def stage_depths(self) -> tuple[int, ...]:
        fixed = {"imagenet": (1, 2), "cifar": (1, 1), "dvs": (1,)}[self.variant]
        return (*fixed, self.depth - sum(fixed))

    @property
    def downsampling(self) -> tuple[int, ...]:
        """Cumulative downsampling factor at each stage."""
        first = {"imagenet": 4, "cifar": 1, "dvs": 8}[self.variant]
        return tuple(first * 2 ** i for i in range(len(self.stage_dims)))

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple((self.img_size // f) ** 2 for f in self.downsampling)

    @property
    def mlp_hidden(self) -> tuple[int, ...]:
        return tuple(int(d * self.mlp_ratio) for d in self.stage_dims)


Config = Union[SpikformerConfig, QKFormerConfig]
CONFIG_CLASSES: dict[str, type] = {"spikformer": SpikformerConfig, "spikformer-v2": SpikformerConfig,
                                   "qkformer": QKFormerConfig}


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain dict of every field (what a model file stores)."""
    return dataclasses.asdict(config)


def config_from_dict(family: str, values: dict[str, Any]) -> Config:
    """Rebuild a config; unknown families or fields raise ValueError naming them."""
    if family not in CONFIG_CLASSES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(CONFIG_CLASSES)}")
    cls = CONFIG_CLASSES[family]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {family} config field(s): {', '.join(unknown)}")
    config = cls(**values)
    if config.family != family:
        raise ValueError(f"config describes a {config.family} model, not {family}")
    return config
