"""Registry, overrides, deployability metadata, synaptic-unit enumeration and the `models` command."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from snn_deploy.cli import cli
from snn_deploy.cli.zoo import NEURON_MODE_CHOICES
from snn_deploy.errors import UserError
from snn_deploy.models import create, names, spec
from snn_deploy.models.deploy import FIXES
from snn_deploy.neurons import NEURON_MODES, FloatLIF

REQUIRED = [
    "spikformer-8-384", "spikformer-6-512", "spikformer-8-512", "spikformer-10-512", "spikformer-8-768",
    "spikformer-cifar10-4-256", "spikformer-cifar10-2-384", "spikformer-cifar10-4-384", "spikformer-cifar100-4-384",
    "spikformer-cifar10dvs-2-256", "qkformer-10-384", "qkformer-10-512", "qkformer-10-768", "qkformer-cifar10-4-384",
    "qkformer-cifar100-4-384", "qkformer-cifar10dvs-2-256", "qkformer-dvs128-2-256", "spikformer-v2-8-384",
    "spikformer-v2-8-512", "spikformer-v2-16-768", "spikformer-tiny", "spikformer-v2-tiny", "qkformer-tiny",
    "spikformer-tiny-8x8", "spikformer-v2-tiny-8x8", "qkformer-tiny-8x8",
]


def test_every_required_name_is_registered():
    assert set(REQUIRED) <= set(names())


@pytest.mark.parametrize("name, family, shape, T, classes, tokens", [
    ("spikformer-8-512", "spikformer", (3, 224, 224), 4, 1000, (196,)),
    ("spikformer-cifar10-4-384", "spikformer", (3, 32, 32), 4, 10, (64,)),
    ("spikformer-cifar10dvs-2-256", "spikformer", (2, 128, 128), 16, 10, (64,)),
    ("qkformer-10-384", "qkformer", (3, 224, 224), 4, 1000, (3136, 784, 196)),
    ("qkformer-cifar100-4-384", "qkformer", (3, 32, 32), 4, 100, (1024, 256, 64)),
    ("qkformer-dvs128-2-256", "qkformer", (2, 128, 128), 16, 11, (256, 64)),
    ("spikformer-v2-16-768", "spikformer-v2", (3, 224, 224), 1, 1000, (196,)),
    ("spikformer-tiny", "spikformer", (1, 16, 16), 4, 10, (16,)),
    ("qkformer-tiny-8x8", "qkformer", (1, 8, 8), 4, 10, (64, 16, 4)),
])
def test_spec_facts(name, family, shape, T, classes, tokens):
    s = spec(name)
    assert (s.family, s.input_shape, s.default_T, s.num_classes, s.tokens) == (family, shape, T, classes, tokens)


def test_overrides_change_the_built_model():
    model = create("spikformer-tiny", T=2, num_classes=5, in_channels=3, img_size=32)
    assert (model.config.T, model.config.num_classes, model.config.tokens) == (2, 5, (64,))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("call, fragment", [
    (lambda: spec("spikformer-8-51"), "spikformer-8-512"),
    (lambda: create("spikformer-tiny", depthh=3), "depthh"),
    (lambda: create("spikformer-tiny", img_size=30), "divisible"),
    (lambda: create("spikformer-tiny", legacy_ssa=True), "legacy_ssa"),
    (lambda: create("qkformer-tiny", num_heads=3), "num_heads"),
])
def test_bad_names_and_overrides_are_user_errors(call, fragment):
    with pytest.raises(UserError, match=fragment):
        call()


def test_stored_zoo_facts_equal_the_models():
    """`snn-deploy models` reads parameter counts and deployability from models/zoo_facts.json (no torch):
    the file must say what the models are (regenerate: scripts/run python -m snn_deploy.models.registry)."""
    from snn_deploy.models.registry import stored_facts

    assert stored_facts() == {name: spec(name).computed_facts() for name in names()}


def test_listing_the_zoo_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from snn_deploy.cli import cli; "
            "r = CliRunner().invoke(cli, ['models', '--json']); assert r.exit_code == 0, r.output; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_deployability_flags():
    assert spec("spikformer-8-512").deployable and spec("spikformer-v2-8-512").deployable
    assert not spec("qkformer-10-384").deployable


def test_qkformer_issues_name_every_analog_pool():
    model = create("qkformer-tiny", pool_spikes=False)  # the official placement
    pools = {u.pool for u in model.units() if u.pool and u.pool_before_neuron}
    issues = model.deploy_issues()
    assert {i.module for i in issues if i.kind == "analog-maxpool"} == pools == {
        "patch_embed2.proj4_maxpool", "patch_embed3.proj4_maxpool"}
    assert all(i.blocking for i in issues if i.kind == "analog-maxpool")
    assert [i.module for i in issues if i.kind == "analog-input"] == ["patch_embed1.proj_conv"]


def test_legacy_ssa_is_reported_and_blocks():
    plain = {i.kind for i in create("qkformer-tiny").deploy_issues()}
    legacy = [i for i in create("qkformer-tiny", legacy_ssa=True).deploy_issues() if i.kind == "legacy-ssa"]
    assert "legacy-ssa" not in plain
    assert [i.module for i in legacy] == ["stage3.0.ssa.proj_lif"] and legacy[0].blocking


def test_spikformer_issues_are_all_rewritable():
    issues = create("spikformer-tiny").deploy_issues()
    assert issues and not any(i.blocking for i in issues)
    assert {i.kind for i in issues} == {"analog-input", "integer-residual", "spike-product", "spike-maxpool"}
    assert all(i.fix == FIXES[i.kind][1] and i.module for i in issues)


@pytest.mark.parametrize("name", ["spikformer-tiny", "spikformer-v2-tiny", "qkformer-tiny",
                                  "spikformer-cifar10-4-256"])
def test_units_are_listed_in_forward_order(name):
    """The enumeration must match the order the forward pass really calls the layers."""
    model = create(name, T=1, img_size=16 if "cifar" in name else spec(name).input_shape[1]).eval()
    modules = dict(model.named_modules())
    called = []
    for module_name, module in modules.items():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            module.register_forward_hook(lambda m, i, o, n=module_name: called.append(n))
    with torch.no_grad():
        model(torch.rand(1, *spec(name).input_shape[:1], model.config.img_size, model.config.img_size))
    units = model.units()
    assert [u.layer for u in units] == called
    assert units[0].input == "analog" and units[-1].layer == "head"
    for u in units[:-1]:
        assert isinstance(modules[u.bn], nn.BatchNorm2d) and isinstance(modules[u.neuron], FloatLIF)


def test_models_command_json_and_table():
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert list(rows) == names()
    assert rows["qkformer-10-384"]["params"] == 16_473_688 and rows["qkformer-10-384"]["deployable_as_is"] is False
    assert rows["spikformer-tiny"]["input_shape"] == [1, 16, 16]
    table = runner.invoke(cli, ["models"])
    assert table.exit_code == 0 and "spikformer-cifar10dvs-2-256" in table.stdout and "16,816,024" in table.stdout


def test_cli_neuron_modes_match_the_library():
    assert tuple(NEURON_MODE_CHOICES) == tuple(NEURON_MODES)
