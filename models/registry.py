"""Named model configurations (timm style): ``create(name, **overrides)``, ``names()``, ``spec(name)``.

Each name maps to a frozen config plus the facts a user needs before building it (input shape, tokens, default
T, parameter count, deployability). Published configurations carry the official parameter count so tests can
hold them to it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any

from snn_deploy.errors import UserError, lookup
from snn_deploy.models.configs import Config, QKFormerConfig, SpikformerConfig

if TYPE_CHECKING:
    from snn_deploy.models.networks import SpikingNetwork

FACTS_FILE = "zoo_facts.json"
"""Parameter count and deployability of every name, as :meth:`ModelSpec.computed_facts` finds them: ``snn-deploy
models`` lists the zoo without importing torch; tests/test_models_registry.py keeps the file equal to the models
(regenerate with ``scripts/run python -m snn_deploy.models.registry``)."""


@dataclass(frozen=True)
class ModelSpec:
    """A named configuration and what it promises.

    ``published_params`` is the official model's parameter count (forward-used parameters, BatchNorm affine
    included); ``params_tolerance`` is the allowed relative deviation (0 = exact; the V2 stem is reconstructed).
    """

    name: str
    config: Config
    source: str
    published_params: int | None = None
    params_tolerance: float = 0.0

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def default_T(self) -> int:
        return self.config.T

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one frame."""
        return (self.config.in_channels, self.config.img_size, self.config.img_size)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def tokens(self) -> tuple[int, ...]:
        """Token count of each transformer stage."""
        return self.config.tokens

    @cached_property
    def _facts(self) -> tuple[int, bool]:
        """(parameter count, deployable as is), from one model built on the meta device (no memory, no init)."""
        import torch

        from snn_deploy.models.deploy import deployable_as_is
        from snn_deploy.models.networks import build

        with torch.device("meta"):
            model = build(self.config)
        return sum(p.numel() for p in model.parameters()), deployable_as_is(model)

    def computed_facts(self) -> dict[str, Any]:
        """The :data:`FACTS_FILE` record of this spec, computed from the model."""
        return {"params": self.params, "deployable": self.deployable}

    @property
    def params(self) -> int:
        return self._facts[0]

    @property
    def deployable(self) -> bool:
        """No blocking deployability issue (see :mod:`snn_deploy.models.deploy`)."""
        return self._facts[1]


def _spikformer_imagenet(depth: int, dim: int) -> SpikformerConfig:
    return SpikformerConfig(embed_dim=dim, depth=depth, num_heads=dim // 64)


def _spikformer_cifar(depth: int, dim: int, classes: int) -> SpikformerConfig:
    return SpikformerConfig(embed_dim=dim, depth=depth, num_heads=dim // 32, variant="cifar", pooled_stages=2,
                            img_size=32, num_classes=classes)


def _spikformer_v2(depth: int, dim: int, T: int = 4) -> SpikformerConfig:
    return SpikformerConfig(embed_dim=dim, depth=depth, num_heads=dim // 64, stem="scs", T=T)


def _qkformer_imagenet(dim: int) -> QKFormerConfig:
    return QKFormerConfig(embed_dim=dim, depth=10, num_heads=dim // 64)


def _qkformer_cifar(classes: int) -> QKFormerConfig:
    return QKFormerConfig(embed_dim=384, depth=4, num_heads=8, variant="cifar", img_size=32, num_classes=classes)


def _qkformer_dvs(mlp_ratio: float, classes: int) -> QKFormerConfig:
    return QKFormerConfig(embed_dim=256, depth=2, num_heads=16, mlp_ratio=mlp_ratio, variant="dvs", in_channels=2,
                          img_size=128, num_classes=classes, T=16)


def _digits(config_cls: type, size: int, **fields: Any) -> Config:
    """Small models for the built-in digit images (1 channel, 10 classes, T=4) that train on a laptop CPU."""
    return config_cls(in_channels=1, img_size=size, num_classes=10, T=4, **fields)


SPIKFORMER_IMAGENET = "ZK-Zhou/spikformer imagenet/model.py"
SPIKFORMER_CIFAR = "ZK-Zhou/spikformer cifar10/model.py"
QKFORMER_IMAGENET = "zhouchenlin2096/QKFormer imagenet/qkformer.py"
QKFORMER_CIFAR = "zhouchenlin2096/QKFormer cifar10/model.py"
V2_PAPER = "Spikformer V2 (arXiv 2401.02020); stem reconstructed, see docs/spikformer_v2_stem.md"
DIGITS = "snn-deploy: small configuration for the built-in digit images"

_SPECS = [
    ModelSpec("spikformer-8-384", _spikformer_imagenet(8, 384), SPIKFORMER_IMAGENET, 16_816_024),
    ModelSpec("spikformer-6-512", _spikformer_imagenet(6, 512), SPIKFORMER_IMAGENET, 23_373_352),
    ModelSpec("spikformer-8-512", _spikformer_imagenet(8, 512), SPIKFORMER_IMAGENET, 29_689_384),
    ModelSpec("spikformer-10-512", _spikformer_imagenet(10, 512), SPIKFORMER_IMAGENET, 36_005_416),
    ModelSpec("spikformer-8-768", _spikformer_imagenet(8, 768), SPIKFORMER_IMAGENET, 66_338_632),
    ModelSpec("spikformer-cifar10-4-256", _spikformer_cifar(4, 256, 10), SPIKFORMER_CIFAR, 4_155_178),
    ModelSpec("spikformer-cifar10-2-384", _spikformer_cifar(2, 384, 10), SPIKFORMER_CIFAR, 5_765_050),
    ModelSpec("spikformer-cifar10-4-384", _spikformer_cifar(4, 384, 10), SPIKFORMER_CIFAR, 9_324_730),
    ModelSpec("spikformer-cifar100-4-384", _spikformer_cifar(4, 384, 100), SPIKFORMER_CIFAR, 9_359_380),
    ModelSpec("spikformer-cifar10dvs-2-256",
              SpikformerConfig(embed_dim=256, depth=2, num_heads=16, variant="dvs", attn_scale=0.25, in_channels=2,
                               img_size=128, num_classes=10, T=16),
              "ZK-Zhou/spikformer cifar10dvs/model.py", 2_566_666),
    ModelSpec("qkformer-10-384", _qkformer_imagenet(384), QKFORMER_IMAGENET, 16_473_688),
    ModelSpec("qkformer-10-512", _qkformer_imagenet(512), QKFORMER_IMAGENET, 29_079_336),
    ModelSpec("qkformer-10-768", _qkformer_imagenet(768), QKFORMER_IMAGENET, 64_962_760),
    ModelSpec("qkformer-cifar10-4-384", _qkformer_cifar(10), QKFORMER_CIFAR, 6_706_234),
    ModelSpec("qkformer-cifar100-4-384", _qkformer_cifar(100), "zhouchenlin2096/QKFormer cifar100/model.py",
              6_740_884),
    ModelSpec("qkformer-cifar10dvs-2-256", _qkformer_dvs(1.0, 10), "zhouchenlin2096/QKFormer cifar10-dvs/model.py",
              1_504_138),
    ModelSpec("qkformer-dvs128-2-256", _qkformer_dvs(4.0, 11), "zhouchenlin2096/QKFormer dvs128-gesture/model.py",
              1_999_371),
    ModelSpec("spikformer-v2-8-384", _spikformer_v2(8, 384), V2_PAPER),
    ModelSpec("spikformer-v2-8-512", _spikformer_v2(8, 512), V2_PAPER, 51_550_000, 0.01),
    ModelSpec("spikformer-v2-16-768", _spikformer_v2(16, 768, T=1), V2_PAPER, 172_000_000, 0.02),
    ModelSpec("spikformer-tiny", _digits(SpikformerConfig, 16, embed_dim=64, depth=2, num_heads=4, pooled_stages=2),
              DIGITS),
    ModelSpec("spikformer-tiny-8x8",
              _digits(SpikformerConfig, 8, embed_dim=64, depth=1, num_heads=4, pooled_stages=1), DIGITS),
    ModelSpec("spikformer-v2-tiny",
              _digits(SpikformerConfig, 16, embed_dim=64, depth=1, num_heads=4, pooled_stages=2, stem="scs",
                      scs_final_depth=1), DIGITS),
    ModelSpec("spikformer-v2-tiny-8x8",
              _digits(SpikformerConfig, 8, embed_dim=64, depth=1, num_heads=4, pooled_stages=1, stem="scs",
                      scs_final_depth=1), DIGITS),
    ModelSpec("qkformer-tiny", _digits(QKFormerConfig, 16, embed_dim=64, depth=3, num_heads=4, variant="cifar",
                                       pool_spikes=True), DIGITS),
    ModelSpec("qkformer-tiny-8x8", _digits(QKFormerConfig, 8, embed_dim=32, depth=3, num_heads=2, variant="cifar",
                                           pool_spikes=True), DIGITS),
]
_REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


def names() -> list[str]:
    """Every registered architecture name, in registry order."""
    return list(_REGISTRY)


def spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; an unknown name is a :class:`UserError` suggesting close matches."""
    return lookup(_REGISTRY, name, what="architecture", listing="snn-deploy models")


def configure(name: str, **overrides: Any) -> Config:
    """The config of ``name`` with ``overrides`` (any config field: T, num_classes, in_channels, img_size, ...)."""
    base = spec(name).config
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"{name}: unknown override(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(fields))}")
    try:
        return dataclasses.replace(base, **overrides)
    except ValueError as exc:
        raise UserError(f"{name}: invalid configuration: {exc}") from None


def create(name: str, *, mode: str = "float", **overrides: Any) -> SpikingNetwork:
    """Build architecture ``name`` with neurons of ``mode`` (``float`` or ``loihi``) and config ``overrides``."""
    from snn_deploy.models.networks import build

    return build(configure(name, **overrides), mode=mode, arch=name)


def stored_facts() -> dict[str, dict[str, Any]]:
    """:data:`FACTS_FILE`: per name, ``params`` and ``deployable`` (read without building a model)."""
    return json.loads(resources.files("snn_deploy.models").joinpath(FACTS_FILE).read_text())


if __name__ == "__main__":  # regenerate FACTS_FILE from the models
    from pathlib import Path

    facts = {name: spec(name).computed_facts() for name in names()}
    Path(__file__).with_name(FACTS_FILE).write_text(json.dumps(facts, indent=1) + "\n")
    print(f"wrote {Path(__file__).with_name(FACTS_FILE)} ({len(facts)} architectures)")
