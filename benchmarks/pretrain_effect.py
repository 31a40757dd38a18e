"""Does Spikformer V2's masked-image-modelling pre-training help on the built-in digits? Measured, not assumed.

1. ``pretrain`` the encoder on all 1442 training images (labels unused).
2. For each seed, fine-tune with ``--labels-per-class K`` (a fixed few-label subset) from the pre-trained
   encoder (``--init``) and, with identical settings, from scratch; report test accuracy of both.

    python benchmarks/pretrain_effect.py [--model spikformer-v2-tiny-8x8] [--labels 10] [--seeds 3] [-o out.json]
    python benchmarks/pretrain_effect.py --labels 0 --epochs 3 --batch-size 16   # all labels, few epochs
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import click

SCHEMA = 1


@click.command()
@click.option("--model", default="spikformer-v2-tiny-8x8", show_default=True)
@click.option("--pretrain-epochs", default=20, show_default=True)
@click.option("--labels", "labels_per_class", default=10, show_default=True,
              help="Labelled images per class (0: all).")
@click.option("--epochs", default=30, show_default=True, help="Fine-tuning epochs.")
@click.option("--batch-size", default=10, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--seeds", default=3, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the results as JSON.")
def main(model: str, pretrain_epochs: int, labels_per_class: int, epochs: int, batch_size: int, lr: float,
         seeds: int, output: Path | None) -> None:
    """Pre-train once, then fine-tune with and without the pre-trained encoder for several seeds."""
    from snn_deploy.training.pretrain import pretrain
    from snn_deploy.training.runtime import World
    from snn_deploy.training.settings import PretrainSettings, TrainSettings, resolve
    from snn_deploy.training.trainer import train

    world = World()
    results: dict = {"schema_version": SCHEMA, "model": model, "labels_per_class": labels_per_class,
                     "fine_tune_epochs": epochs, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        pre_path = Path(tmp) / "pre.pt"
        start = time.perf_counter()
        pre = pretrain(resolve(PretrainSettings, model, "digits", neuron="loihi", epochs=pretrain_epochs,
                               batch_size=None, lr=None, weight_decay=None, warmup_epochs=None, seed=0, augment=True,
                               micro_batches=1, mask_ratio=0.5, decoder_width=64, decoder_depth=2),
                       output=pre_path, data_dir=None, resume=False, threads=1, world=world)
        results["pretrain"] = {"epochs": pretrain_epochs, "loss_first": pre["epochs"][0]["loss"],
                               "loss_last": pre["final_loss"], "seconds": time.perf_counter() - start}
        for seed in range(seeds):
            for init in (pre_path, None):
                settings = resolve(TrainSettings, model, "digits", neuron="loihi", epochs=epochs,
                                   batch_size=batch_size, lr=lr, weight_decay=None, warmup_epochs=None,
                                   label_smoothing=None, seed=seed, augment=True, micro_batches=1,
                                   labels_per_class=labels_per_class or None, init=init.name if init else None)
                out = Path(tmp) / f"{'pre' if init else 'scratch'}-{seed}.pt"
                metrics = train(settings, output=out, data_dir=None, resume=False, threads=1, world=world,
                                init_path=init)
                results["runs"].append({"seed": seed, "pretrained": init is not None,
                                        "test_accuracy": metrics["test_accuracy"]})
    for pretrained in (True, False):
        accs = [r["test_accuracy"] for r in results["runs"] if r["pretrained"] == pretrained]
        mean, spread = statistics.mean(accs), statistics.pstdev(accs)
        results["pretrained" if pretrained else "scratch"] = {"mean": mean, "std": spread, "accuracies": accs}
        print(f"{'pre-trained' if pretrained else 'from scratch':>12}: {100 * mean:.2f} % +- {100 * spread:.2f} "
              f"({', '.join(f'{100 * a:.1f}' for a in accs)})")
    print(f"masked-patch loss {results['pretrain']['loss_first']:.4f} -> {results['pretrain']['loss_last']:.4f} "
          f"in {pretrain_epochs} epochs ({results['pretrain']['seconds']:.0f} s)")
    if output:
        output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
