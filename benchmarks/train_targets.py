"""Training targets on the built-in data and training throughput per model, measured on this machine's CPU.

Targets: each row trains a tiny model with ``snn-deploy train`` in the integer (``loihi``) neuron mode with the
data set's defaults, in a fresh process, and reports test accuracy against its target and the wall time
(process start to exit: data generation, training, per-epoch evaluation, writing). Throughput: AdamW training
steps on random inputs of each model's shape, in samples per second, for both neuron modes.

    python benchmarks/train_targets.py                    # targets + throughput of the tiny/CIFAR/DVS models
    python benchmarks/train_targets.py --skip-targets --all-models   # throughput of every zoo model
    python benchmarks/train_targets.py --skip-targets --models spikformer-8-384 --steps 1
    python benchmarks/train_targets.py -o results.json    # also write the results as JSON

One thread per process (the training default). Wall times depend on what else runs on the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

SCHEMA = 1
WALL_LIMIT_S = 600.0


@dataclass(frozen=True)
class Target:
    model: str
    dataset: str
    accuracy: float


TARGETS = [
    Target("qkformer-tiny-8x8", "digits", 0.95),
    Target("spikformer-tiny-8x8", "digits", 0.93),
    Target("spikformer-v2-tiny-8x8", "digits", 0.93),
    Target("qkformer-tiny-8x8", "n-digits", 0.90),
]
THROUGHPUT_MODELS = ["spikformer-tiny-8x8", "spikformer-v2-tiny-8x8", "qkformer-tiny-8x8", "spikformer-tiny",
                     "spikformer-v2-tiny", "qkformer-tiny", "spikformer-cifar10-4-256", "qkformer-cifar10-4-384",
                     "spikformer-cifar10dvs-2-256", "qkformer-dvs128-2-256"]


def run_target(target: Target, workdir: Path) -> dict:
    exe = shutil.which("snn-deploy") or str(Path(sys.executable).parent / "snn-deploy")
    output = workdir / f"{target.model}-{target.dataset}.pt"
    command = [exe, "train", "--model", target.model, "--dataset", target.dataset, "-o", str(output), "--force"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    metrics = json.loads(output.with_suffix(".metrics.json").read_text())
    return {"model": target.model, "dataset": target.dataset,
            "command": f"snn-deploy train --model {target.model} --dataset {target.dataset} -o model.pt",
            "accuracy": metrics["test_accuracy"], "target": target.accuracy, "wall_s": wall,
            "epochs": metrics["settings"]["epochs"], "train_samples_per_s": metrics["timing"]["train_samples_per_s"],
            "met": metrics["test_accuracy"] >= target.accuracy and wall <= WALL_LIMIT_S}


def throughput(name: str, mode: str, batch: int, steps: int) -> float:
    """Training samples per second of ``name`` (AdamW, cross-entropy) on random inputs of its shape."""
    import torch
    import torch.nn.functional as F

    from snn_deploy.models import create, spec
    from snn_deploy.training.loop import make_optimizer

    torch.manual_seed(0)
    model = create(name, mode=mode).train()
    s = spec(name)
    c, h, w = s.input_shape
    x = torch.rand(s.default_T, batch, c, h, w) if c == 2 else torch.rand(batch, c, h, w)  # DVS: event frames
    y = torch.randint(0, s.num_classes, (batch,))
    optimizer = make_optimizer(model, 1e-3, 0.01)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # warm-up: allocations, first-call overheads
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


@click.command()
@click.option("--skip-targets", is_flag=True, help="Only measure throughput.")
@click.option("--skip-throughput", is_flag=True, help="Only run the targets.")
@click.option("--all-models", is_flag=True, help="Throughput of every zoo model (ImageNet sizes take minutes each).")
@click.option("--models", "chosen", help="Comma-separated zoo models to measure instead of the default list.")
@click.option("--batch", default=16, show_default=True, help="Batch size of the throughput measurement.")
@click.option("--steps", default=3, show_default=True, help="Timed steps per model and mode.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the results as JSON.")
def main(skip_targets: bool, skip_throughput: bool, all_models: bool, chosen: str | None, batch: int, steps: int,
         output: Path | None) -> None:
    """Measure the training targets and per-model training throughput."""
    import torch

    torch.set_num_threads(1)
    results: dict = {"schema_version": SCHEMA, "threads": 1, "torch": torch.__version__, "targets": [],
                     "throughput": []}
    if not skip_targets:
        with tempfile.TemporaryDirectory() as tmp:
            for target in TARGETS:
                row = run_target(target, Path(tmp))
                results["targets"].append(row)
                print(f"{row['model']:<22} {row['dataset']:<9} accuracy {100 * row['accuracy']:6.2f} % "
                      f"(target {100 * row['target']:.0f} %)  {row['epochs']} epochs  wall {row['wall_s']:6.1f} s "
                      f"(limit {WALL_LIMIT_S:.0f})  {row['train_samples_per_s']:6.1f} samples/s  "
                      f"{'met' if row['met'] else 'NOT MET'}", flush=True)
    if not skip_throughput:
        from snn_deploy.models import names

        models = names() if all_models else chosen.split(",") if chosen else THROUGHPUT_MODELS
        for name in models:
            b = batch if "tiny" in name else max(1, batch // 16)
            row = {"model": name, "batch": b}
            for mode in ("loihi", "float"):
                row[mode] = throughput(name, mode, b, steps)
            results["throughput"].append(row)
            print(f"{name:<28} batch {b:3d}  loihi {row['loihi']:8.2f} samples/s  float {row['float']:8.2f} "
                  f"samples/s", flush=True)
    if output:
        output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
