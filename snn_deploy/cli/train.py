"""``snn-deploy train``, ``eval`` and ``pretrain``: thin command-line layers over :mod:`snn_deploy.training`.

All three run unchanged under ``torchrun --nproc_per_node N`` (one process group, rank 0 prints and writes).
Bad input is one ``error:`` line on stderr and exit status 2, before any file is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from snn_deploy.cli.options import (claim_stdout, config_options, data_dir_option, emit_json, json_file,
                                    json_option, per_dataset_option, time_steps_option, to_stdout, toml_text)
from snn_deploy.cli.params import (
    NON_NEGATIVE, NON_NEGATIVE_FLOAT, OPEN_FRACTION, POSITIVE, POSITIVE_FLOAT, FiniteFloat,
)
from snn_deploy.errors import UserError
from snn_deploy.cli.handler import exit_on_user_error

R = TypeVar("R")
NEURON_CHOICES = ("loihi", "float")
"""snn_deploy.neurons.NEURON_MODES in the order of preference for training (loihi first: quantization-aware)."""
SEED = click.IntRange(0, 2**32 - 1)


def in_world(body: Callable[[Any], R]) -> R:
    """Run ``body(world)`` inside the torchrun process group (if any); only rank 0 reports a UserError."""
    from snn_deploy.training.runtime import join_world, leave_world

    world = join_world()
    try:
        return body(world)
    except UserError:
        if not world.main:
            raise click.exceptions.Exit(2) from None
        raise
    finally:
        leave_world(world)


def check_output(output: Path, force: bool, resume: bool, init: Path | None = None,
                 json_path: Path | None = None) -> None:
    """Every file the run writes (model, metrics, and the checkpoint unless resuming from it) follows the output
    rules of :mod:`snn_deploy.io`, checked before any work starts."""
    from snn_deploy.io import check_outputs
    from snn_deploy.training.checkpoint import checkpoint_path
    from snn_deploy.training.trainer import metrics_path

    checkpoint = checkpoint_path(output)
    if checkpoint.exists() and not (resume or force):
        raise UserError(f"{checkpoint} holds an interrupted run of {output}: pass --resume to continue it, or --force "
                        "to start over")
    check_outputs(output, metrics_path(output), None if resume else checkpoint, json_file(json_path), inputs=[init],
                  force=force)


def effective_config(settings: dict[str, Any], **options: Any) -> str:
    """The settings a run uses (defaults, --config and the command line merged) as a --config TOML file."""
    settings = {("time_steps" if k == "T" else k): v for k, v in settings.items() if k != "init"}
    return toml_text({**settings, **options})


def check_names(model: str, dataset: str) -> None:
    from snn_deploy.data import info
    from snn_deploy.models import spec

    spec(model)
    info(dataset)


def common_options(command: Callable) -> Callable:
    """Options shared by train and pretrain (schedule, time steps, neurons, seed, data, threads, output)."""
    from snn_deploy.training import DEFAULT_THREADS

    options = [
        click.option("--model", required=True, help="Architecture name (see `snn-deploy models`)."),
        click.option("--dataset", required=True, help="Data set name (see `snn-deploy datasets`)."),
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Model file to write (metrics go to <stem>.metrics.json beside it)."),
        data_dir_option(),
        per_dataset_option("--epochs", "epochs", POSITIVE, "Epochs."),
        per_dataset_option("--batch-size", "batch_size", POSITIVE, "Global batch size over all processes."),
        per_dataset_option("--lr", "lr", POSITIVE_FLOAT, "Peak learning rate of AdamW."),
        per_dataset_option("--weight-decay", "weight_decay", NON_NEGATIVE_FLOAT, "AdamW weight decay."),
        per_dataset_option("--warmup-epochs", "warmup_epochs", NON_NEGATIVE, "Linear warm-up epochs before the cosine "
                           "decay (a default warm-up is shortened to fit --epochs)."),
        time_steps_option("Time steps (event data: frames per sample). Default: the model's.", POSITIVE),
        click.option("--neuron", type=click.Choice(NEURON_CHOICES), default="loihi", show_default=True,
                     help="loihi: Loihi's integer neuron (quantization-aware); float: the published neuron."),
        click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of initialisation, order and "
                     "augmentation; the same seed gives byte-identical outputs."),
        click.option("--threads", type=POSITIVE, default=DEFAULT_THREADS, show_default=True,
                     help="Intra-op threads per process (part of what makes a run reproducible)."),
        click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("train")
@common_options
@per_dataset_option("--label-smoothing", "label_smoothing", FiniteFloat(0.0, 1.0, max_open=True),
                    "Label smoothing of the cross-entropy.")
@click.option("--augment/--no-augment", default=True, show_default=True, help="Training augmentation of the data set.")
@click.option("--micro-batches", type=POSITIVE, default=1, show_default=True,
              help="Split each process's batch into this many gradient-accumulation steps (BatchNorm groups).")
@click.option("--labels-per-class", type=POSITIVE, help="Train on only the first N training samples of each class.")
@click.option("--init", "init_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from the encoder of this model file (e.g. from `snn-deploy pretrain`); fresh head.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run from <stem>.ckpt.")
@json_option("Also write the run's metrics as JSON")
@config_options
@exit_on_user_error
def train(model: str, dataset: str, output: Path, data_dir: Path | None, epochs: int | None,
          batch_size: int | None, lr: float | None, weight_decay: float | None, warmup_epochs: int | None,
          T: int | None, neuron: str, seed: int, threads: int, force: bool, label_smoothing: float | None,
          augment: bool, micro_batches: int, labels_per_class: int | None, init_path: Path | None,
          resume: bool, json_path: Path | None, print_config: bool) -> None:
    """Train MODEL on DATASET and write a model file plus metrics JSON.

    Options can come from a file: --config run.toml (or .yaml) with the long option names as keys, e.g.
    `model = "qkformer-tiny-8x8"`, `epochs = 5`, `batch-size = 32`; the command line overrides the file, and
    --print-config prints the effective settings in that format.
    """
    from snn_deploy.training.settings import TrainSettings, resolve
    from snn_deploy.training.trainer import metrics_path, train as run_training

    check_names(model, dataset)
    if init_path is not None and not init_path.is_file():
        raise UserError(f"--init {init_path} not found: pass the model file written by `snn-deploy pretrain`")
    settings = resolve(TrainSettings, model, dataset, T=T, neuron=neuron, epochs=epochs, batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                       seed=seed, augment=augment, micro_batches=micro_batches, labels_per_class=labels_per_class,
                       init=init_path.name if init_path else None)
    if print_config:
        click.echo(effective_config(settings.as_dict(), output=output, data_dir=data_dir, init=init_path,
                                    threads=threads, force=force, resume=resume), nl=False)
        return
    claim_stdout(json_path)
    check_output(output, force, resume, init_path, json_path)

    def body(world: Any) -> None:
        metrics = run_training(settings, output=output, data_dir=data_dir, resume=resume, threads=threads,
                               world=world, init_path=init_path)
        if world.main:
            emit_json(json_path, {**metrics, "command": "train", "output": str(output),
                                  "metrics_file": str(metrics_path(output))})
            click.echo(f"test accuracy {100 * metrics['test_accuracy']:.2f} % ({model} on {dataset}, "
                       f"{settings.neuron} neurons)")
            if metrics.get("deployed_test_accuracy") is not None:
                click.echo(f"deployed test accuracy {100 * metrics['deployed_test_accuracy']:.2f} % (the integer "
                           "model `snn-deploy export` builds: BatchNorm folded, 8-bit weights)")
            click.echo(f"wrote {output} and {metrics_path(output)}")

    in_world(body)


@click.command("eval")
@click.argument("model_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Data set name (see `snn-deploy datasets`).")
@click.option("--split", type=click.Choice(("test", "train")), default="test", show_default=True)
@data_dir_option()
@click.option("--neuron", type=click.Choice((*NEURON_CHOICES, "integer")), default=None,
              help="Evaluate with these neurons instead of the file's (integer: the model `export` deploys).")
@click.option("--batch-size", type=POSITIVE, default=128, show_default=True,
              help="Samples per batch; --legacy-ssa QKFormer models match the official accuracy only at the official "
              "batch size (64 for CIFAR, 32 for ImageNet).")
@click.option("--threads", type=POSITIVE, default=1, show_default=True)
@json_option("Write the result as JSON")
@click.option("--force", is_flag=True, help="Replace an existing --json file.")
@exit_on_user_error
def evaluate(model_file: Path, dataset: str, split: str, data_dir: Path | None, neuron: str | None,
             batch_size: int, threads: int, json_path: Path | None, force: bool) -> None:
    """Accuracy of MODEL_FILE on a split of DATASET."""
    from snn_deploy.io import check_outputs
    from snn_deploy.workflows import evaluate as run_evaluation

    check_outputs(json_file(json_path), inputs=[model_file], force=force)

    def body(world: Any) -> None:
        result = run_evaluation(model_file, dataset, split=split, neuron=neuron, batch_size=batch_size,
                                threads=threads, data_dir=data_dir, world=world)
        if result is None:
            return
        emit_json(json_path, result)
        if not to_stdout(json_path):
            click.echo(f"accuracy {100 * result['accuracy']:.2f} % ({result['correct']}/{result['total']}) of "
                       f"{result['arch']} on the {dataset} {split} split, {result['neuron_mode']} neurons; mean loss "
                       f"{result['loss']:.4f}")

    in_world(body)


@click.command("pretrain")
@common_options
@click.option("--mask-ratio", type=OPEN_FRACTION, default=0.5, show_default=True, help="Fraction of patches masked.")
@click.option("--decoder-width", type=POSITIVE, default=64, show_default=True, help="Width of the ANN decoder.")
@click.option("--decoder-depth", type=POSITIVE, default=2, show_default=True,
              help="Transformer layers of the decoder.")
@click.option("--augment/--no-augment", default=True, show_default=True, help="Training augmentation of the data set.")
@click.option("--micro-batches", type=POSITIVE, default=1, show_default=True,
              help="Split each process's batch into this many gradient-accumulation steps.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run from <stem>.ckpt.")
@json_option("Also write the run's metrics as JSON")
@config_options
@exit_on_user_error
def pretrain(model: str, dataset: str, output: Path, data_dir: Path | None, epochs: int | None,
             batch_size: int | None, lr: float | None, weight_decay: float | None, warmup_epochs: int | None,
             T: int | None, neuron: str, seed: int, threads: int, force: bool, mask_ratio: float,
             decoder_width: int, decoder_depth: int, augment: bool, micro_batches: int, resume: bool,
             json_path: Path | None, print_config: bool) -> None:
    """Self-supervised pre-training of MODEL's encoder on DATASET's images (masked image modelling)."""
    from snn_deploy.training.pretrain import pretrain as run_pretraining
    from snn_deploy.training.settings import PretrainSettings, resolve
    from snn_deploy.training.trainer import metrics_path

    check_names(model, dataset)
    settings = resolve(PretrainSettings, model, dataset, T=T, neuron=neuron, epochs=epochs, batch_size=batch_size,
                       lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, seed=seed, augment=augment,
                       micro_batches=micro_batches, mask_ratio=mask_ratio, decoder_width=decoder_width,
                       decoder_depth=decoder_depth)
    if print_config:
        click.echo(effective_config(settings.as_dict(), output=output, data_dir=data_dir, threads=threads,
                                    force=force, resume=resume), nl=False)
        return
    claim_stdout(json_path)
    check_output(output, force, resume, json_path=json_path)

    def body(world: Any) -> None:
        metrics = run_pretraining(settings, output=output, data_dir=data_dir, resume=resume, threads=threads,
                                  world=world)
        if world.main:
            emit_json(json_path, {**metrics, "command": "pretrain", "output": str(output),
                                  "metrics_file": str(metrics_path(output))})
            click.echo(f"masked-patch loss {metrics['final_loss']:.4f} after {settings.epochs} epochs "
                       f"({model} on {dataset})")
            click.echo(f"wrote {output} and {metrics_path(output)}; fine-tune with `snn-deploy train --init {output}`")

    in_world(body)
