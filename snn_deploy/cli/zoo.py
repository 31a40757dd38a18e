"""``snn-deploy models`` (the zoo as a table or JSON) and ``snn-deploy import`` (official checkpoint -> model.pt).

torch and the zoo are imported inside the commands so that other commands start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from snn_deploy.cli.options import (AliasOption, claim_stdout, emit_json, force_json_option, json_file, json_option,
                                    time_steps_option, to_stdout)
from snn_deploy.cli.params import POSITIVE
from snn_deploy.cli.handler import exit_on_user_error

FULL_WIDTH = 110
"""Console width from which the zoo table also shows each model's family (its name starts with it)."""
IMPORT_SCHEMA = 1
NEURON_MODE_CHOICES = ("float", "loihi")
"""snn_deploy.neurons.NEURON_MODES, spelled out so the CLI does not import torch at start (a test keeps them equal)."""


def spec_row(name: str) -> dict[str, Any]:
    """One architecture as plain data (the ``--json`` record and the table row); parameter count and
    deployability from the stored facts, so listing the zoo imports no torch."""
    from snn_deploy.models.registry import spec, stored_facts

    s, facts = spec(name), stored_facts()[name]
    return {"name": s.name, "family": s.family, "params": facts["params"], "published_params": s.published_params,
            "tokens": list(s.tokens), "default_T": s.default_T, "input_shape": list(s.input_shape),
            "num_classes": s.num_classes, "deployable_as_is": facts["deployable"], "source": s.source}


@click.command("models")
@json_option("Write the zoo as JSON")
@force_json_option()
@exit_on_user_error
def models(json_path: Path | None, force: bool) -> None:
    """List every architecture of the model zoo."""
    from snn_deploy.console import table, table_console
    from snn_deploy.io import check_outputs
    from snn_deploy.models.registry import names

    check_outputs(json_file(json_path), force=force)

    rows = [spec_row(name) for name in names()]
    emit_json(json_path, rows)
    if to_stdout(json_path):
        return
    console = table_console()
    full = console.width >= FULL_WIDTH
    columns = {"name": "name", **({"family": "text"} if full else {}), "parameters": "number", "tokens": "name",
               "T": "number", "input": "text", "classes": "number", "as is": "text"}
    out = table("snn-deploy model zoo", columns=columns,
                caption="input: C x H x W; tokens: per stage; as is: deployable without a rewrite")
    for r in rows:
        cells = {"name": r["name"], "family": r["family"], "parameters": f"{r['params']:,}",
                 "tokens": "/".join(map(str, r["tokens"])), "T": str(r["default_T"]),
                 "input": "x".join(map(str, r["input_shape"])), "classes": str(r["num_classes"]),
                 "as is": "yes" if r["deployable_as_is"] else "no"}
        out.add_row(*(cells[c] for c in columns))
    console.print(out)


@click.command("import")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "--arch", "arch", cls=AliasOption, required=True,
              help="Architecture name (see `snn-deploy models`).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file to write.")
@click.option("--neuron", "--neuron-mode", "neuron_mode", cls=AliasOption, type=click.Choice(NEURON_MODE_CHOICES),
              default="float", show_default=True, help="Neurons of the written model.")
@click.option("--num-classes", type=POSITIVE, help="Override the architecture's number of classes.")
@click.option("--in-channels", type=POSITIVE, help="Override the number of input channels.")
@click.option("--img-size", type=POSITIVE, help="Override the input image size.")
@time_steps_option("Override the default number of time steps.", POSITIVE)
@click.option("--legacy-ssa", is_flag=True,
              help="QKFormer only: reproduce the published SSA defect (accuracy comparisons; not deployable). It "
              "matches the official numbers only at the official evaluation batch size and order: `eval "
              "--batch-size 64` for CIFAR, 32 for ImageNet (per GPU), unshuffled.")
@click.option("--ema", is_flag=True, help="Import the EMA weights (timm's state_dict_ema) instead of the trained "
              "copy.")
@json_option("Also write what was imported as JSON")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT (and the --json file) if it exists.")
@exit_on_user_error
def import_checkpoint(checkpoint: Path, arch: str, output: Path, neuron_mode: str, num_classes: int | None,
                      in_channels: int | None, img_size: int | None, T: int | None, legacy_ssa: bool, ema: bool,
                      json_path: Path | None, force: bool) -> None:
    """Read an official training CHECKPOINT (timm, QKFormer or bare state dict) into a snn-deploy model file."""
    from snn_deploy.io import check_outputs, sha256_file
    from snn_deploy.modelfile import save_model
    from snn_deploy.models.checkpoint import import_checkpoint as load_checkpoint

    claim_stdout(json_path)
    check_outputs(output, json_file(json_path), inputs=[checkpoint], force=force)
    overrides = {k: v for k, v in {"num_classes": num_classes, "in_channels": in_channels, "img_size": img_size,
                                   "T": T}.items() if v is not None}
    if legacy_ssa:
        overrides["legacy_ssa"] = True
    model, report = load_checkpoint(checkpoint, arch, mode=neuron_mode, ema=ema, **overrides)
    save_model(model, output, source=checkpoint.name, created_from=f"official checkpoint ({report.layout})",
               provenance={"source_sha256": sha256_file(checkpoint)})
    prefix = f", stripped prefix {report.prefix!r}" if report.prefix else ""
    click.echo(f"imported {report.loaded} tensors from {checkpoint} ({report.layout}{prefix}) as {arch}")
    if ema:
        click.echo("weights: the EMA copy (state_dict_ema)")
    elif report.has_ema:
        click.echo("weights: the trained copy; the checkpoint also holds EMA weights (state_dict_ema): --ema "
                   "imports those")
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} unused official tensor(s): {', '.join(report.skipped)}")
    click.echo(f"wrote {output} (neuron mode {neuron_mode})")
    emit_json(json_path, {"schema_version": IMPORT_SCHEMA, "command": "import", "checkpoint": str(checkpoint),
                          "arch": arch, "output": str(output), "neuron_mode": neuron_mode, "layout": report.layout,
                          "prefix": report.prefix, "loaded": report.loaded, "skipped": list(report.skipped),
                          "weights": "ema" if ema else "trained", "has_ema": bool(report.has_ema)})
