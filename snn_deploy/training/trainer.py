"""``snn-deploy train``: supervised training of a zoo model on a data set (cross-entropy, test accuracy per epoch).

Writes (main process only) ``OUTPUT`` (a model file), ``<stem>.metrics.json`` and, while running,
``<stem>.ckpt``, which a finished run removes. Everything in the model file and the metrics, except the
metrics' ``timing`` object, is a function of the settings, the thread count and the software versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snn_deploy import __version__
from snn_deploy.data import first_per_class, info, open_splits
from snn_deploy.io import write_json_atomic
from snn_deploy.training.batches import EpochView, check_batch, model_input
from snn_deploy.training.checkpoint import checkpoint_path
from snn_deploy.training.evaluate import deployed, evaluate
from snn_deploy.training.loop import fit, timing_summary
from snn_deploy.training.modelsetup import build_for, input_size, load_encoder
from snn_deploy.training.runtime import World, make_deterministic
from snn_deploy.training.settings import TrainSettings

METRICS_SCHEMA = 1
EVAL_BATCH = 128


def metrics_path(output: Path) -> Path:
    return output.with_suffix(".metrics.json")


def classification_loss(kind: str, label_smoothing: float):
    """Cross-entropy of the logits (and the number of correct predictions) for one micro-batch."""
    def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        logits = net(model_input(x, kind))
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing), int((logits.detach().argmax(1) == y).sum())
    return loss_fn


def epoch_line(epochs: int):
    def describe(record: dict, timing: dict) -> str:
        return (f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
                f"train {100 * record['train_accuracy']:.1f} %  test {100 * record['test_accuracy']:.2f} %  "
                f"{timing['train_samples_per_s']:.0f} samples/s  {timing['seconds']:.1f} s")
    return describe


def train(settings: TrainSettings, *, output: Path, data_dir: str | Path | None, resume: bool, threads: int,
          world: World, init_path: Path | None = None) -> dict[str, Any]:
    """Run (or resume) training and write the outputs; returns the metrics written."""
    make_deterministic(settings.seed, threads)
    data = info(settings.dataset)
    size = input_size(settings.model, data)
    splits = open_splits(settings.dataset, size=size, T=settings.T, data_dir=data_dir)
    train_set = splits.train if settings.labels_per_class is None else \
        first_per_class(splits.train, settings.labels_per_class)
    check_batch(settings.batch_size, world, settings.micro_batches, len(train_set))
    model = build_for(settings.model, data, size=size, T=settings.T, classes=len(splits.train.classes),
                      neuron=settings.neuron, seed=settings.seed)
    if init_path is not None:
        load_encoder(model, init_path)
    model.to(world.device)

    def test_score() -> dict:
        score = evaluate(model, splits.test, kind=data.kind, batch_size=EVAL_BATCH, world=world)
        return {"test_loss": score.loss, "test_accuracy": score.accuracy}

    run = fit(model, classification_loss(data.kind, settings.label_smoothing),
              EpochView(train_set, seed=settings.seed, augment=settings.augment), schedule=settings,
              world=world, checkpoint=checkpoint_path(output), settings=settings.as_dict(), resume=resume,
              after_epoch=test_score, describe=epoch_line(settings.epochs))
    metrics = {
        "schema_version": METRICS_SCHEMA,
        "command": "train",
        "model": settings.model,
        "dataset": settings.dataset,
        "settings": settings.as_dict(),
        "processes": world.size,
        "threads": threads,
        "train_samples": len(train_set),
        "test_samples": len(splits.test),
        "epochs": run.history,
        "test_accuracy": run.history[-1]["test_accuracy"],
        "deployed_test_accuracy": None,
        "software": {"snn_deploy": __version__, "torch": torch.__version__},
        "timing": timing_summary(run.timing),
    }
    if world.main:
        from snn_deploy.modelfile import save_model

        if settings.neuron == "loihi":  # what export will deploy: weights quantized too (float models: quantize)
            metrics["deployed_test_accuracy"] = evaluate(deployed(model), splits.test, kind=data.kind,
                                                         batch_size=EVAL_BATCH, world=World()).accuracy

        save_model(model, output, source=f"data set {settings.dataset}", created_from="snn-deploy train",
                   provenance={"dataset": settings.dataset, "epochs": settings.epochs, "seed": settings.seed,
                               "test_accuracy": metrics["test_accuracy"],
                               "deployed_test_accuracy": metrics["deployed_test_accuracy"],
                               "training": settings.as_dict()})
        write_json_atomic(metrics_path(output), metrics)
        checkpoint_path(output).unlink(missing_ok=True)
    world.barrier()
    return metrics
