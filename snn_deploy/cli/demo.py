"""``snn-deploy demo``: what the README's demo command runs.

Today (foundation stage) it checks the environment and runs one fixed-point network in Lava and in
snn_deploy.fixedpoint side by side on real input (scikit-learn's 8x8 digits as graded spikes), layer by layer.
The full pipeline (train, export, verify, simulate, report) replaces the network part as it lands.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

DEMO_SCHEMA = 1


def _digit_inputs(samples: int, steps: int) -> np.ndarray:
    """The first test digits as graded inputs [samples, T, 64]: each pixel (0..16) sent every step."""
    from sklearn.datasets import load_digits

    images = load_digits().images.reshape(-1, 64).astype(np.int64)
    return np.repeat(images[-samples:, None, :], steps, axis=1)


@click.command()
@click.option("--samples", default=4, show_default=True, help="Digit images to run through both backends.")
@click.option("--steps", default=16, show_default=True, help="Time steps per image.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random network weights.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Also write the comparison as JSON to this file.")
def demo(samples: int, steps: int, seed: int, output: Path | None) -> None:
    """Check the environment, then run a Loihi fixed-point network in Lava and in PyTorch side by side."""
    from rich.console import Console
    from rich.table import Table

    from snn_deploy import lavaref
    from snn_deploy.cli.doctor import run_checks
    from snn_deploy.fixedpoint.chain import random_chain, run_dense_lif_chain

    console = Console()
    problems = [c for c in run_checks() if not c.ok]
    for c in problems:
        click.echo(f"problem: {c.name}: {c.detail}", err=True)
    if problems:
        sys.exit(1)
    console.print("[bold]environment[/bold]: all doctor checks passed")

    sizes = [64, 48, 32, 10]
    layers = random_chain(sizes, seed=seed)
    inputs = _digit_inputs(samples, steps)
    totals = {"lava_s": 0.0, "torch_s": 0.0}
    per_layer = [{"neurons": n, "spikes_lava": 0, "spikes_torch": 0, "mismatches": 0} for n in sizes[1:]]
    for x in inputs:
        t0 = time.perf_counter()
        lava_out = lavaref.run_dense_lif_chain(x, layers)
        t1 = time.perf_counter()
        torch_out = run_dense_lif_chain(x, layers)
        t2 = time.perf_counter()
        totals["lava_s"] += t1 - t0
        totals["torch_s"] += t2 - t1
        for row, a, b in zip(per_layer, lava_out, torch_out):
            row["spikes_lava"] += int(a.sum())
            row["spikes_torch"] += int(b.sum())
            row["mismatches"] += int((a != b).sum())

    table = Table(title=f"Dense->LIF chain {sizes}, {samples} digits x {steps} steps: Lava vs snn_deploy")
    for col in ("layer", "neurons", "spikes (Lava)", "spikes (torch)", "agreement"):
        table.add_column(col, justify="right")
    for i, row in enumerate(per_layer):
        total = row["neurons"] * steps * samples
        row["agreement"] = 1 - row["mismatches"] / total
        table.add_row(str(i), str(row["neurons"]), str(row["spikes_lava"]), str(row["spikes_torch"]),
                      f"{100 * row['agreement']:.2f} %")
    console.print(table)
    console.print(f"wall time: Lava {totals['lava_s']:.2f} s, snn_deploy.fixedpoint {totals['torch_s']:.3f} s")
    exact = all(row["mismatches"] == 0 for row in per_layer)
    console.print("[green]spike for spike identical[/green]" if exact else "[red]backends disagree[/red]")
    if output is not None:
        from snn_deploy.io import write_json_atomic

        write_json_atomic(output, {"schema_version": DEMO_SCHEMA, "sizes": sizes, "samples": samples,
                                   "steps": steps, "seed": seed, "layers": per_layer, **totals, "exact": exact})
        console.print(f"wrote {output}")
    sys.exit(0 if exact else 1)
