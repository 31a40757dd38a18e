"""Training, resumption, evaluation, pre-training and the commands' handling of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import snn_deploy.training.loop as loop
from snn_deploy.cli import cli
from snn_deploy.modelfile import load_model
from snn_deploy.training.runtime import World
from snn_deploy.training.settings import TrainSettings, resolve
from snn_deploy.training.trainer import metrics_path, train

MODEL = "spikformer-tiny-8x8"
EXE = shutil.which("snn-deploy") or str(Path(sys.executable).parent / "snn-deploy")


def small(**overrides) -> TrainSettings:
    values = dict(neuron="loihi", epochs=2, batch_size=20, lr=5e-3, weight_decay=0.01, warmup_epochs=0,
                  label_smoothing=0.0, seed=3, augment=True, micro_batches=1, labels_per_class=6, init=None)
    values.update(overrides)
    return resolve(TrainSettings, MODEL, "digits", T=2, **values)


def run(settings: TrainSettings, output: Path, resume: bool = False) -> dict:
    return train(settings, output=output, data_dir=None, resume=resume, threads=1, world=World())


def test_training_lowers_the_loss(tmp_path):
    metrics = run(small(epochs=5, labels_per_class=30, batch_size=10, augment=False), tmp_path / "m.pt")
    losses = [e["train_loss"] for e in metrics["epochs"]]
    assert losses[-1] < 0.85 * losses[0] and losses == sorted(losses, reverse=True), losses
    assert metrics["test_accuracy"] > 0.25  # 10 classes: chance is 0.1 (this run: 0.37)
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.neuron_mode == "loihi" and loaded.provenance["dataset"] == "digits"
    assert loaded.provenance["test_accuracy"] == metrics["test_accuracy"] and loaded.provenance["seed"] == 3
    written = json.loads(metrics_path(tmp_path / "m.pt").read_text())
    assert written["schema_version"] == 1 and written["epochs"] == metrics["epochs"]
    assert not (tmp_path / "m.ckpt").exists()


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    settings = small()
    run(settings, tmp_path / "straight.pt")

    real_save = loop.save_checkpoint

    def save_then_crash(path, state):
        real_save(path, state)
        raise KeyboardInterrupt  # the process dies right after the first epoch's checkpoint

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(settings, tmp_path / "resumed.pt")
    assert (tmp_path / "resumed.ckpt").exists() and not (tmp_path / "resumed.pt").exists()
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    run(settings, tmp_path / "resumed.pt", resume=True)

    assert (tmp_path / "straight.pt").read_bytes() == (tmp_path / "resumed.pt").read_bytes()
    a, b = (json.loads(metrics_path(tmp_path / f"{n}.pt").read_text()) for n in ("straight", "resumed"))
    assert a.pop("timing") and b.pop("timing") and a == b


def test_resume_refuses_other_settings(tmp_path, monkeypatch):
    def crash(path, state):
        raise KeyboardInterrupt

    real_save = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda p, s: (real_save(p, s), crash(p, s)))
    with pytest.raises(KeyboardInterrupt):
        run(small(), tmp_path / "m.pt")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    from snn_deploy.errors import UserError
    with pytest.raises(UserError, match="lr"):
        run(small(lr=1e-3), tmp_path / "m.pt", resume=True)


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("args, expected", [
    (["--model", "no-such-model", "--dataset", "digits"], "unknown architecture"),
    (["--model", MODEL, "--dataset", "no-such-set"], "unknown data set"),
    (["--model", MODEL, "--dataset", "cifar10", "--data-dir", "{tmp}/empty"], "CIFAR-10 not found"),
    (["--model", MODEL, "--dataset", "digits", "--batch-size", "7", "--micro-batches", "2"], "--batch-size 7"),
    (["--model", MODEL, "--dataset", "digits", "--init", "{tmp}/nothing.pt"], "--init"),
    (["--model", MODEL, "--dataset", "digits", "--resume"], "no checkpoint"),
])
def test_train_bad_input_is_one_line_exit_2_no_files(tmp_path, args, expected):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out" / "model.pt"
    out.parent.mkdir()
    result = _invoke("train", *[a.replace("{tmp}", str(tmp_path)) for a in args], "-o", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and expected in result.stderr
    assert list(out.parent.iterdir()) == []


def test_existing_output_needs_force_in_a_real_process(tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(b"keep me")
    result = subprocess.run([EXE, "train", "--model", MODEL, "--dataset", "digits", "-o", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "--force" in result.stderr
    assert out.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_eval_and_pretrain_commands(tmp_path):
    common = ["--dataset", "digits", "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "20", "--T", "2"]
    v2 = "spikformer-v2-tiny-8x8"
    result = _invoke("pretrain", "--model", v2, *common, "-o", str(tmp_path / "pre.pt"))
    assert result.exit_code == 0, result.output + result.stderr
    pre = json.loads((tmp_path / "pre.metrics.json").read_text())
    assert pre["command"] == "pretrain" and pre["patches"] == {"grid": 4, "masked": 8, "pixels_per_patch": 4}

    result = _invoke("train", "--model", v2, *common, "--labels-per-class", "4", "--init", str(tmp_path / "pre.pt"),
                     "-o", str(tmp_path / "fine.pt"))
    assert result.exit_code == 0, result.output + result.stderr
    assert load_model(tmp_path / "fine.pt").provenance["training"]["init"] == "pre.pt"

    result = _invoke("eval", str(tmp_path / "fine.pt"), "--dataset", "digits", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.output)
    trained = json.loads((tmp_path / "fine.metrics.json").read_text())
    assert report["schema_version"] == 1 and report["total"] == 355
    assert report["accuracy"] == pytest.approx(trained["test_accuracy"])

    # the deployed (integer) accuracy train reports is what eval --neuron integer and the quantized file give
    result = _invoke("eval", str(tmp_path / "fine.pt"), "--dataset", "digits", "--neuron", "integer", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.output)["accuracy"] == trained["deployed_test_accuracy"] is not None
    result = _invoke("quantize", str(tmp_path / "fine.pt"), "--eval-samples", "0", "-o", str(tmp_path / "int.pt"))
    assert result.exit_code == 0, result.output + result.stderr
    result = _invoke("eval", str(tmp_path / "int.pt"), "--dataset", "digits", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.output)["accuracy"] == trained["deployed_test_accuracy"]
    assert load_model(tmp_path / "fine.pt").provenance["deployed_test_accuracy"] == trained["deployed_test_accuracy"]

    result = _invoke("eval", str(tmp_path / "fine.pt"), "--dataset", "n-digits")
    assert result.exit_code == 2 and "does not fit" in result.stderr


def test_init_copies_encoder_only(tmp_path):
    from snn_deploy.modelfile import save_model
    from snn_deploy.models import create
    from snn_deploy.training.modelsetup import load_encoder

    torch.manual_seed(0)
    source = create("spikformer-v2-tiny-8x8", mode="loihi", T=2)
    save_model(source, tmp_path / "src.pt", source="test", created_from="test")
    torch.manual_seed(1)
    target = create("spikformer-v2-tiny-8x8", mode="loihi", T=2)
    head = target.head.weight.clone()
    load_encoder(target, tmp_path / "src.pt")
    for k, v in target.state_dict().items():
        assert k.startswith("head.") or torch.equal(v, source.state_dict()[k]), k
    assert torch.equal(target.head.weight, head) and not torch.equal(head, source.head.weight)


def test_datasets_command_lists_presence(tmp_path):
    result = _invoke("datasets", "--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)["datasets"]}
    assert rows["digits"]["present"] and not rows["cifar10"]["present"]
    assert rows["n-digits"]["shape"] == "T x 2 x model's HxW" and rows["cifar10"]["train_samples"] == 50000
    table = _invoke("datasets", "--data-dir", str(tmp_path))
    assert "to add cifar10" in table.output
