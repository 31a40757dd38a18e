"""Importing official checkpoints: key layouts, containers, prefixes, skipped tensors, and clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snn_deploy.cli import cli
from snn_deploy.errors import UserError
from snn_deploy.modelfile import load_model
from snn_deploy.models import create
from snn_deploy.models.checkpoint import import_checkpoint
from zoo_testing import calibrate

# Official parameter names (shared/reference/models.md) with the shapes the official layers give them.
OFFICIAL_KEYS = {
    "spikformer-8-384": {
        "patch_embed.proj_conv.weight": (48, 3, 3, 3), "patch_embed.proj_bn3.running_var": (384,),
        "patch_embed.proj_conv3.weight": (384, 192, 3, 3), "patch_embed.rpe_conv.weight": (384, 384, 3, 3),
        "block.7.attn.q_conv.weight": (384, 384, 1), "block.0.attn.proj_conv.bias": (384,),
        "block.0.attn.v_bn.num_batches_tracked": (), "block.0.mlp.fc1_conv.weight": (1536, 384, 1, 1),
        "block.0.mlp.fc2_bn.bias": (384,), "head.weight": (1000, 384)},
    "spikformer-cifar10-4-384": {
        "block.0.attn.q_linear.weight": (384, 384), "block.0.attn.q_linear.bias": (384,),
        "block.3.mlp.fc2_linear.weight": (384, 1536), "patch_embed.proj_conv2.weight": (192, 96, 3, 3)},
    "spikformer-cifar10dvs-2-256": {
        "patch_embed.proj_conv.weight": (32, 2, 3, 3), "block.1.mlp.fc1_conv.weight": (1024, 256, 1)},
    "qkformer-10-384": {
        "patch_embed1.proj_conv.weight": (48, 3, 3, 3), "patch_embed1.proj2_conv.weight": (96, 96, 3, 3),
        "patch_embed1.proj_res_conv.weight": (96, 48, 1, 1), "patch_embed2.proj3_conv.weight": (192, 96, 3, 3),
        "patch_embed3.proj4_bn.bias": (384,), "stage1.0.tssa.q_conv.weight": (96, 96, 1),
        "stage2.1.tssa.proj_conv.bias": (192,), "stage3.6.attn.v_conv.weight": (384, 384, 1),
        "stage3.0.mlp.fc1_conv.weight": (1536, 384, 1, 1)},
    "qkformer-cifar10-4-384": {
        "patch_embed1.proj_res_conv.weight": (96, 48, 1, 1), "stage3.1.ssa.q_conv.weight": (384, 384, 1),
        "stage1.0.mlp.mlp1_conv.weight": (384, 96, 1, 1), "stage3.0.mlp.mlp2_bn.weight": (384,)},
    "qkformer-cifar10dvs-2-256": {
        "patch_embed1.proj3_conv.weight": (128, 64, 3, 3), "patch_embed1.proj_res_conv.weight": (128, 32, 1, 1),
        "patch_embed2.proj_conv.weight": (256, 128, 3, 3), "stage2.0.ssa.proj_conv.bias": (256,),
        "stage2.0.mlp.mlp1_conv.weight": (256, 256, 1, 1)},
}

# Small versions of each official layout (same key names, fewer channels) so the tests stay light.
SMALL = {
    "spikformer-8-384": dict(embed_dim=32, depth=2, num_heads=2, img_size=32, num_classes=10),
    "spikformer-cifar10-4-256": dict(embed_dim=32, depth=1, num_heads=2),
    "spikformer-cifar10dvs-2-256": dict(embed_dim=32, num_heads=4, img_size=32),
    "qkformer-10-384": dict(embed_dim=64, depth=4, num_heads=2, img_size=32, num_classes=10),
    "qkformer-cifar10-4-384": dict(embed_dim=32, num_heads=2, img_size=8),
}


@pytest.mark.parametrize("arch", sorted(OFFICIAL_KEYS))
def test_state_dict_uses_official_names_and_shapes(arch):
    with torch.device("meta"):
        state = create(arch).state_dict()
    assert {k: tuple(state[k].shape) for k in OFFICIAL_KEYS[arch] if k in state} == OFFICIAL_KEYS[arch]


def source_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create(arch, **SMALL[arch])
    c = model.config
    return calibrate(model, torch.rand(2, c.in_channels, c.img_size, c.img_size))


def official_extras(arch: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Tensors the official Spikformer files create but never use."""
    if not arch.startswith("spikformer"):
        return {}
    d = model.config.embed_dim
    extras = {f"block.{i}.{n}.{p}": torch.ones(d) for i in range(model.config.depth) for n in ("norm1", "norm2")
              for p in ("weight", "bias")}
    if "dvs" in arch:
        extras.update({"pos_embed": torch.zeros(1, model.config.tokens[0], d), "norm.weight": torch.ones(d),
                       "norm.bias": torch.zeros(d)})
    return extras


def container(layout: str, state: dict) -> object:
    args = argparse.Namespace(lr=5e-4, model="spikformer", epochs=300)
    if layout == "timm":
        return {"epoch": 309, "arch": "spikformer", "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "params": [0, 1]}]}, "version": 2,
                "args": args, "metric": 95.19}
    if layout == "qkformer":
        return {"model": state, "optimizer": {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": []},
                "epoch": 199, "scaler": {"scale": 65536.0, "growth_factor": 2.0}, "args": args}
    return state


@pytest.mark.parametrize("arch, layout", [
    ("spikformer-8-384", "timm"), ("spikformer-cifar10-4-256", "timm"), ("spikformer-cifar10dvs-2-256", "bare"),
    ("qkformer-10-384", "qkformer"), ("qkformer-cifar10-4-384", "bare"), ("spikformer-8-384", "qkformer"),
])
def test_import_each_official_layout(tmp_path, arch, layout):
    source = source_model(arch)
    extras = official_extras(arch, source)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(container(layout, {**source.state_dict(), **extras}), path)
    model, report = import_checkpoint(path, arch, **SMALL[arch])
    assert report.skipped == sorted(extras) and report.loaded == len(source.state_dict())
    assert report.prefix == ("module." if layout == "timm" else "")
    x = torch.rand(2, source.config.in_channels, source.config.img_size, source.config.img_size)
    with torch.no_grad():
        expected = source(x)
        assert expected.abs().sum() > 0
        assert torch.equal(model(x), expected)


def write(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": state}, path)
    return path


def small_state(arch: str = "spikformer-cifar10-4-256") -> dict[str, torch.Tensor]:
    return create(arch, **SMALL[arch]).state_dict()


@pytest.mark.parametrize("edit, fragment", [
    (lambda s: s.pop("block.0.attn.q_bn.running_mean"), r"1 missing key\(s\): block.0.attn.q_bn.running_mean"),
    (lambda s: s.update({"block.0.attn.extra_linear.weight": torch.zeros(2)}),
     r"1 unexpected key\(s\): block.0.attn.extra_linear.weight"),
    (lambda s: s.update({"head.weight": torch.zeros(100, 32), "head.bias": torch.zeros(100)}),
     r"2 shape mismatch\(es\) \(checkpoint vs model\): head.bias \(100,\) vs \(10,\)"),
    (lambda s: s.update({k.replace("_linear", "_conv"): s.pop(k) for k in list(s) if "_linear" in k}),
     "missing key.*q_linear.*unexpected key.*q_conv"),
])
def test_key_problems_are_named(tmp_path, edit, fragment):
    state = small_state()
    edit(state)
    with pytest.raises(UserError, match=fragment):
        import_checkpoint(write(tmp_path, state), "spikformer-cifar10-4-256", **SMALL["spikformer-cifar10-4-256"])


def test_wrong_architecture(tmp_path):
    path = write(tmp_path, small_state())
    with pytest.raises(UserError, match=r"does not fit architecture qkformer-cifar10-4-384: \d+ missing key.*"
                                        r"\d+ unexpected key"):
        import_checkpoint(path, "qkformer-cifar10-4-384", **SMALL["qkformer-cifar10-4-384"])


def test_qkformer_does_not_skip_spikformer_only_tensors(tmp_path):
    state = small_state("qkformer-cifar10-4-384")
    state["stage3.0.norm1.weight"] = torch.ones(32)
    with pytest.raises(UserError, match="unexpected key.*stage3.0.norm1.weight"):
        import_checkpoint(write(tmp_path, state), "qkformer-cifar10-4-384", **SMALL["qkformer-cifar10-4-384"])


def test_container_without_state_dict(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "metric": 0.5}, path)
    with pytest.raises(UserError, match="holds no state dict.*found keys epoch, metric"):
        import_checkpoint(path, "spikformer-tiny")


def test_malicious_checkpoint_is_refused_and_not_executed(tmp_path, pickled_code):
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": small_state(), "args": pickled_code.payload}, path)
    with pytest.raises(UserError, match=r"pickled code \((posix|nt)\.system\)"):
        import_checkpoint(path, "spikformer-cifar10-4-256", **SMALL["spikformer-cifar10-4-256"])
    assert not pickled_code.ran


def test_cli_import_writes_a_model_file(tmp_path):
    arch = "spikformer-cifar10dvs-2-256"  # the CLI builds the published size (2.6 M parameters)
    full = create(arch, img_size=32)
    path = tmp_path / "ckpt.pth.tar"
    torch.save(container("timm", {**full.state_dict(), **official_extras(arch, full)}), path)
    out = tmp_path / "model.pt"
    args = ["import", str(path), "--arch", arch, "-o", str(out), "--neuron-mode", "loihi", "--img-size", "32",
            "--T", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "skipped 11 unused official tensor(s): block.0.norm1.bias" in result.stdout and "pos_embed" in result.stdout
    loaded = load_model(out, arch=arch)
    assert loaded.neuron_mode == "loihi" and loaded.model.config.T == 2 and loaded.model.config.img_size == 32
    assert loaded.provenance["source"] == "ckpt.pth.tar" and len(loaded.provenance["source_sha256"]) == 64
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--arch", "spikformer-99"], "unknown architecture 'spikformer-99'"),
    (["--arch", "spikformer-tiny"], "does not fit architecture spikformer-tiny"),
    (["--arch", "spikformer-tiny", "--legacy-ssa"], "unknown override(s) legacy_ssa"),
])
def test_cli_errors_are_one_line_with_exit_code_2_and_no_output(tmp_path, args, fragment):
    path = write(tmp_path, small_state())
    out = tmp_path / "model.pt"
    result = CliRunner().invoke(cli, ["import", str(path), "-o", str(out), *args])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and fragment in result.stderr
    assert result.stdout == ""
