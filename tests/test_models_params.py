"""Parameter counts: every published configuration matches the official model exactly; V2 within tolerance.

Models are built on the meta device: shapes only, no memory, no initialisation cost.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn_deploy.models import create

# Forward-used parameters of the official models (shared/reference/models.md), BatchNorm affine included.
OFFICIAL = {
    "spikformer-8-384": 16_816_024,
    "spikformer-6-512": 23_373_352,
    "spikformer-8-512": 29_689_384,
    "spikformer-10-512": 36_005_416,
    "spikformer-8-768": 66_338_632,
    "spikformer-cifar10-4-256": 4_155_178,
    "spikformer-cifar10-2-384": 5_765_050,
    "spikformer-cifar10-4-384": 9_324_730,
    "spikformer-cifar100-4-384": 9_359_380,
    "spikformer-cifar10dvs-2-256": 2_566_666,
    "qkformer-10-384": 16_473_688,
    "qkformer-10-512": 29_079_336,
    "qkformer-10-768": 64_962_760,
    "qkformer-cifar10-4-384": 6_706_234,
    "qkformer-cifar100-4-384": 6_740_884,
    "qkformer-cifar10dvs-2-256": 1_504_138,
    "qkformer-dvs128-2-256": 1_999_371,
}
V2_PUBLISHED = {"spikformer-v2-8-512": (51.55e6, 0.01), "spikformer-v2-16-768": (172e6, 0.02)}


def meta_model(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return create(name, **overrides)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameter_count_equals_official(name):
    model = meta_model(name)
    assert n_params(model) == OFFICIAL[name]
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules()), "unused norm layers must not exist"
    assert not any("pos_embed" in k for k, _ in model.named_parameters())


@pytest.mark.parametrize("name", sorted(V2_PUBLISHED))
def test_spikformer_v2_within_tolerance(name):
    published, tolerance = V2_PUBLISHED[name]
    assert abs(n_params(meta_model(name)) - published) / published <= tolerance


def test_spikformer_v2_stem_scales_with_width_squared():
    """The reconstructed stem is one design at every width: its size per D^2 is the same for 384, 512, 768."""
    per_d2 = []
    for name, dim in (("spikformer-v2-8-384", 384), ("spikformer-v2-8-512", 512), ("spikformer-v2-16-768", 768)):
        per_d2.append(n_params(meta_model(name).patch_embed) / dim**2)
    assert max(per_d2) / min(per_d2) < 1.001
    assert 96 < per_d2[1] < 101  # about 98 D^2, the stem size implied by 51.55 M at D = 512


def test_v2_and_v1_share_everything_but_the_stem():
    v1, v2 = meta_model("spikformer-8-512"), meta_model("spikformer-v2-8-512")
    assert n_params(v1) - n_params(v1.patch_embed) == n_params(v2) - n_params(v2.patch_embed)


def test_image_size_and_time_steps_do_not_change_parameters():
    assert n_params(meta_model("qkformer-10-384", img_size=384, T=1)) == OFFICIAL["qkformer-10-384"]
    assert n_params(meta_model("spikformer-8-512", img_size=288)) == OFFICIAL["spikformer-8-512"]
