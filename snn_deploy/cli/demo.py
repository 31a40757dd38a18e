"""``snn-deploy demo``: the whole product on built-in data, what the README's demo command runs.

Steps, each the real command a user would type (so the demo exercises exactly the shipped code paths):

1. ``doctor`` checks (Lava imports on this Python, fixed-point self-check);
2. ``train`` a tiny QKFormer (8x8 input) on the scikit-learn digits in the integer (``loihi``) neuron mode;
3. ``export`` it for Loihi 2 (BatchNorm folded, 8-bit weights, NIR bundle);
4. ``verify`` on test digits that PyTorch (integer mode), the simulator, Lava and ONNX agree spike for spike;
5. ``simulate`` the whole test set on the hardware model (accuracy, SOPs, latency, energy);
6. ``report`` (console table, JSON, CSV, HTML with plots).

``simulate`` and ``report`` run with ``--allow-violations``: the demo model's input layer (exported without
calibration data, its threshold bounded by the 24-bit current register) sends a few currents above the 16-bit
synaptic input register, which both list (5,156 of them, worst 47,546); ``export --calibrate digits`` bounds them
at 95.77 % deployed accuracy instead of 96.06 %.

Everything is written under one output directory (default ``demo-out/``), which the demo owns and replaces.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from snn_deploy.cli.options import claim_stdout, emit_json, json_file, json_option
from snn_deploy.cli.params import POSITIVE
from snn_deploy.cli.train import SEED
from snn_deploy.cli.handler import exit_on_user_error

DEMO_MODEL = "qkformer-tiny-8x8"
DEMO_DATASET = "digits"
DEMO_SCHEMA = 1


def _step(title: str, args: list[str]) -> float:
    """Run one snn-deploy command in-process; stop the demo (exit 1) if it fails."""
    from snn_deploy.cli import cli

    click.secho(f"\n== {title}: snn-deploy {' '.join(args)}", bold=True)
    start = time.perf_counter()
    try:
        code = cli.main(args, prog_name="snn-deploy", standalone_mode=False)
    except SystemExit as stop:  # commands that end with sys.exit (verify, simulate) land here
        code = stop.code
    if code not in (0, None):
        click.secho(f"demo stopped: `snn-deploy {args[0]}` exited with {code}", fg="red", err=True)
        sys.exit(1)
    return time.perf_counter() - start


@click.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Directory the demo writes (replaced on every run).")
@click.option("--epochs", type=POSITIVE, default=None, help="Training epochs (default: the data set's default).")
@click.option("--verify-samples", type=POSITIVE, default=32, show_default=True,
              help="Test digits checked in all four backends.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Training seed (same seed: same model, same figures).")
@json_option("Also write the steps' timings and the files written as JSON")
@click.option("--force", is_flag=True, help="Replace an existing --json file (the output directory is always "
              "replaced).")
@exit_on_user_error
def demo(output: Path, epochs: int | None, verify_samples: int, seed: int, json_path: Path | None,
         force: bool) -> None:
    """Train a tiny QKFormer on digits, export it for Loihi 2, verify it in Lava, simulate it, report."""
    from snn_deploy.cli.doctor import run_checks
    from snn_deploy.io import check_outputs

    claim_stdout(json_path)
    check_outputs(json_file(json_path), force=force, others=[output])
    start = time.perf_counter()
    problems = [c for c in run_checks() if not c.ok]
    for c in problems:
        click.echo(f"problem: {c.name}: {c.detail}", err=True)
    if problems:
        sys.exit(1)
    click.secho("environment: all doctor checks passed (Lava fixed-point models agree with snn_deploy)", fg="green")
    from snn_deploy.io import check_parent

    check_parent(output)
    output.mkdir(exist_ok=True)
    model, bundle, report = output / "model.pt", output / "model.loihi", output / "report"
    train_args = ["train", "--model", DEMO_MODEL, "--dataset", DEMO_DATASET, "-o", str(model), "--seed", str(seed),
                  "--force"] + (["--epochs", str(epochs), "--warmup-epochs", str(min(2, epochs - 1))] if epochs else [])
    timings = {
        "train": _step("train (quantization-aware: integer neurons)", train_args),
        "export": _step("export for Loihi 2 (spike products: the coincidence lowering)",
                        ["export", str(model), "--target", "loihi2", "--attention", "coincidence", "-o", str(bundle),
                         "--force"]),
        "verify": _step("verify: PyTorch integer mode, simulator, Lava, ONNX",
                        ["verify", str(model), "--backend", "torch,sim,lava,onnx", "--dataset", DEMO_DATASET,
                         "--samples", str(verify_samples), "--json", str(output / "verify.json"), "--force"]),
        "simulate": _step("simulate the test set on the hardware model",
                          ["simulate", str(bundle), "--dataset", DEMO_DATASET, "--json", str(output / "simulate.json"),
                           "--force", "--allow-violations"]),
        "report": _step("report", ["report", str(bundle), "--dataset", DEMO_DATASET, "-o", str(report), "--force",
                                   "--allow-violations"]),
    }
    click.secho(f"\ndemo finished in {time.perf_counter() - start:.0f} s "
                f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})", bold=True)
    written = (("trained model", model), ("Loihi 2 bundle", bundle), ("fidelity report", output / "verify.json"),
               ("simulation", output / "simulate.json"), ("report (open in a browser)", report / "report.html"))
    for label, path in written:
        click.echo(f"  {label:<28} {path}")
    emit_json(json_path, {"schema_version": DEMO_SCHEMA, "command": "demo", "output": str(output),
                          "seconds": {k: round(v, 3) for k, v in timings.items()},
                          "files": {label: str(path) for label, path in written}})
