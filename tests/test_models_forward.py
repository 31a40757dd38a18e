"""Forward passes: shapes and token counts, both neuron modes, batch and time independence, the legacy flag."""

from __future__ import annotations

import pytest
import torch

from snn_deploy.models import create, spec
from snn_deploy.neurons import QuantizedLIF, neuron_mode, set_neuron_mode
from zoo_testing import calibrate, spike_rates

TINY = ["spikformer-tiny", "spikformer-tiny-8x8", "spikformer-v2-tiny", "spikformer-v2-tiny-8x8", "qkformer-tiny",
        "qkformer-tiny-8x8"]


def stage_outputs(model, x):
    """Output shapes of every patch embedding and the features, captured with hooks."""
    shapes = {}
    for name, module in model.named_children():
        if name.startswith("patch_embed"):
            module.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape)))
    with torch.no_grad():
        logits = model(x)
    return logits, shapes


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("mode", ["float", "loihi"])
def test_tiny_models_run_in_both_modes(name, mode):
    torch.manual_seed(0)
    model = create(name, mode=mode).eval()
    assert neuron_mode(model) == mode
    s = spec(name)
    logits, shapes = stage_outputs(model, torch.rand(2, *s.input_shape))
    assert logits.shape == (2, s.num_classes) and torch.isfinite(logits).all()
    embeds = [shapes[k] for k in sorted(shapes)]
    assert [h * w for (_, _, _, h, w) in embeds] == list(s.tokens)
    assert all(t == s.default_T and b == 2 for (t, b, *_) in embeds)


@pytest.mark.parametrize("name", ["spikformer-cifar10-4-384", "qkformer-cifar10dvs-2-256"])
def test_published_configurations_run_at_batch_1_and_T_1(name):
    s = spec(name)
    model = create(name, T=1).eval()
    x = torch.rand(1, 1, *s.input_shape) if "dvs" in name else torch.rand(1, *s.input_shape)  # DVS: [T, B, ...] frames
    logits, shapes = stage_outputs(model, x)
    assert logits.shape == (1, s.num_classes)
    assert [h * w for (*_, h, w) in (shapes[k] for k in sorted(shapes))] == list(s.tokens)


def test_switching_modes_keeps_the_state_dict_and_thresholds():
    model = create("qkformer-tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    thresholds = {n: m.threshold for n, m in model.named_modules() if hasattr(m, "threshold")}
    set_neuron_mode(model, "loihi")
    assert neuron_mode(model) == "loihi"
    assert all(isinstance(model.get_submodule(n), QuantizedLIF) for n in thresholds)
    assert {n: m.threshold for n, m in model.named_modules() if hasattr(m, "threshold")} == thresholds
    assert thresholds["stage1.0.tssa.attn_lif"] == 0.5 and thresholds["stage3.0.ssa.q_lif"] == 1.0
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    set_neuron_mode(model, "float")
    assert neuron_mode(model) == "float"


def _sample_alone_vs_in_batch(name: str, **overrides) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    x = torch.rand(3, *spec(name).input_shape, dtype=torch.float64)
    model = calibrate(create(name, **overrides).double(), x)
    rates = spike_rates(model, x)
    assert min(v for k, v in rates.items() if k.endswith("attn_lif")) > 0.01, rates
    with torch.no_grad():
        return model(x[:1])[0], model(x)[0]


@pytest.mark.parametrize("name", ["spikformer-tiny-8x8", "spikformer-v2-tiny-8x8", "qkformer-tiny-8x8"])
def test_a_sample_does_not_depend_on_the_rest_of_the_batch(name):
    alone, in_batch = _sample_alone_vs_in_batch(name)
    torch.testing.assert_close(alone, in_batch, rtol=0, atol=1e-9)


def test_legacy_ssa_mixes_the_samples_of_a_batch():
    alone, in_batch = _sample_alone_vs_in_batch("qkformer-tiny-8x8", legacy_ssa=True)
    assert not torch.allclose(alone, in_batch)


@pytest.mark.parametrize("name", ["spikformer-tiny-8x8", "qkformer-tiny-8x8"])
def test_early_time_steps_do_not_depend_on_later_ones(name):
    torch.manual_seed(2)
    x = torch.rand(4, 2, *spec(name).input_shape, dtype=torch.float64)
    model = calibrate(create(name).double(), x)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x[:2]), model.forward_features(x)[:2], rtol=0, atol=0)


def test_static_images_are_repeated_over_T():
    model = create("spikformer-tiny", T=3).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.unsqueeze(0).expand(3, -1, -1, -1, -1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(1, 16, 16))
