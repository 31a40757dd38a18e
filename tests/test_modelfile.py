"""model.pt: round trip, determinism, atomic writes, and one clear UserError for every kind of bad file."""

from __future__ import annotations

import os
import pickletools
import zipfile
from pathlib import Path

import pytest
import torch

from snn_deploy.errors import UserError
from snn_deploy.modelfile import FORMAT, FORMAT_VERSION, load_model, model_record, save_model
from snn_deploy.models import create, spec
from zoo_testing import calibrate


def trained(name: str = "qkformer-tiny-8x8", mode: str = "float", **overrides) -> tuple[torch.nn.Module, torch.Tensor]:
    """A model with non-default weights and BN statistics, and an input batch."""
    torch.manual_seed(0)
    x = torch.rand(3, *spec(name).input_shape)
    model = calibrate(create(name, mode=mode, **overrides), x)
    return model, x


def save(model, path: Path, **kwargs) -> Path:
    return save_model(model, path, source="unit test", created_from="snn_deploy.models.create", **kwargs)


@pytest.mark.parametrize("mode", ["float", "loihi"])
def test_round_trip_gives_identical_outputs(tmp_path, mode):
    model, x = trained(mode=mode, T=3)
    quant = {"scale": torch.tensor([0.5, 0.25]), "bits": 8}
    loaded = load_model(save(model, tmp_path / "m.pt", quantization=quant), arch="qkformer-tiny-8x8")
    assert (loaded.arch, loaded.neuron_mode, loaded.model.config) == ("qkformer-tiny-8x8", mode, model.config)
    assert torch.equal(loaded.quantization["scale"], quant["scale"]) and loaded.quantization["bits"] == 8
    assert loaded.provenance["source"] == "unit test" and loaded.provenance["tool"] == "snn-deploy"
    with torch.no_grad():
        expected = model(x)
        assert expected.abs().sum() > 0
        assert torch.equal(loaded.model(x), expected)


def test_same_model_gives_byte_identical_files(tmp_path):
    model, _ = trained()
    a, b = save(model, tmp_path / "a.pt"), save(model, tmp_path / "sub-name.pt")
    assert a.read_bytes() == b.read_bytes()
    assert "created_at" not in load_model(a).provenance
    dated = save(model, tmp_path / "c.pt", provenance={"created_at": "2026-11-21"})
    assert load_model(dated).provenance["created_at"] == "2026-11-21"


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    model, _ = trained()
    target = save(model, tmp_path / "m.pt")
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(UserError, match=f"cannot write {target}: disk full"):
        save(model, target)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]


def write_record(path: Path, **changes) -> Path:
    model, _ = trained()
    record = model_record(model, source="test", created_from="test")
    record.update(changes)
    torch.save(record, path)
    return path


def test_pickled_code_is_refused_and_not_executed(tmp_path, pickled_code):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": pickled_code.payload}, path)
    with pytest.raises(UserError, match=r"pickled code \((posix|nt)\.system\)"):
        load_model(path)
    assert not pickled_code.ran


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p, "not found"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_text("hello, not a model"), p)[1], "not a PyTorch zip archive"),
    (lambda p: (torch.save({"w": torch.zeros(3)}, p), p)[1], "not a snn-deploy model file"),
    (lambda p: write_record(p, format_version=FORMAT_VERSION + 1), "format version 2"),
    (lambda p: write_record(p, arch="qkformer-99-999"), "unknown architecture 'qkformer-99-999'"),
    (lambda p: write_record(p, family="spikformer"), "inconsistent"),
    (lambda p: write_record(p, neuron_mode="analog"), "invalid configuration"),
    (lambda p: write_record(p, state_dict={}), "does not match its own configuration"),
])
def test_bad_files_are_one_line_user_errors(tmp_path, make, fragment):
    path = make(tmp_path / "model.pt")
    with pytest.raises(UserError, match=fragment) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_file(tmp_path):
    path = write_record(tmp_path / "full.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_model(cut)


def test_architecture_must_match_the_request(tmp_path):
    path = write_record(tmp_path / "m.pt")
    with pytest.raises(UserError, match="holds architecture 'qkformer-tiny-8x8', not 'spikformer-tiny'"):
        load_model(path, arch="spikformer-tiny")


def test_file_layout_is_plain_data(tmp_path):
    """Only tensors and plain values: the archive's pickle names no class outside torch's tensor rebuilders."""
    path = save(trained()[0], tmp_path / "m.pt")
    with zipfile.ZipFile(path) as archive:
        ops = pickletools.genops(archive.read("archive/data.pkl"))
        found = {arg.split()[0] for op, arg, _ in ops if op.name == "GLOBAL"}
    assert "torch._utils" in found and found <= {"torch._utils", "torch", "collections"}, found
    record = torch.load(path, map_location="cpu", weights_only=True)
    assert set(record) == {"format", "format_version", "arch", "family", "config", "neuron_mode", "state_dict",
                           "state_sha256", "quantization", "provenance"}
    assert record["config"]["embed_dim"] == 32 and record["family"] == "qkformer"
