"""``snn-deploy datasets``: every data set with its facts and whether it is present under the data root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from snn_deploy.cli.options import data_dir_option, emit_json, force_json_option, json_file, json_option, to_stdout
from snn_deploy.cli.handler import exit_on_user_error

DATASETS_SCHEMA = 1


def dataset_row(name: str, root: Path) -> dict[str, Any]:
    """One data set as plain data (the ``--json`` record and the table row)."""
    from snn_deploy.data import info

    d = info(name)
    found = None if d.builtin else d.present(root)
    size = f"{d.native_size}x{d.native_size}" if d.native_size else "model's HxW"
    shape = f"T x 2 x {size}" if d.kind == "events" else f"{d.channels} x {size}"
    return {"name": d.name, "title": d.title, "kind": d.kind, "channels": d.channels, "classes": d.classes,
            "native_size": d.native_size, "shape": shape, "train_samples": d.sizes[0], "test_samples": d.sizes[1],
            "source": d.source, "builtin": d.builtin, "present": d.builtin or found is not None,
            "path": str(found) if found else None, "layout": d.layout,
            "defaults": {k: v for k, v in vars(d.defaults).items()}}


@click.command("datasets")
@data_dir_option()
@json_option("Write the list as JSON")
@force_json_option()
@exit_on_user_error
def datasets(data_dir: Path | None, json_path: Path | None, force: bool) -> None:
    """List the data sets: sizes, input shape, classes, source, whether each is present, and the training
    defaults `snn-deploy train` uses for each (epochs, batch size, learning rate, weight decay, warm-up)."""
    from snn_deploy.console import table, table_console
    from snn_deploy.data import names
    from snn_deploy.data.paths import data_root
    from snn_deploy.io import check_outputs

    check_outputs(json_file(json_path), force=force)
    root = data_root(data_dir)
    rows = [dataset_row(name, root) for name in names()]
    emit_json(json_path, {"schema_version": DATASETS_SCHEMA, "data_root": str(root), "datasets": rows})
    if to_stdout(json_path):
        return
    console = table_console()
    facts = table(f"snn-deploy data sets (data root: {root})",
                  columns={"name": "text", "kind": "text", "input": "text", "classes": "number", "train": "number",
                           "test": "number", "present": "name"},
                  caption="input: C x H x W per step (T: frames per sample; HxW: the model's input size); files: "
                          "counted in the files found")
    for r in rows:
        present = "built in" if r["builtin"] else (r["path"] if r["present"] else "no")
        shape = r["shape"].replace(" x ", "x").replace("model's ", "")
        facts.add_row(r["name"], r["kind"], shape, _count(r["classes"]), _count(r["train_samples"]),
                      _count(r["test_samples"]), present)
    console.print(facts)
    defaults = table("training defaults (`snn-deploy train` unless overridden) and sources",
                     columns={"name": "text", **{h: "number" for h in DEFAULT_HEADERS.values()}, "source": "name"},
                     caption="batch: global batch size; wd: AdamW weight decay; warm-up: epochs; smooth: label "
                             "smoothing")
    for r in rows:
        d = r["defaults"]
        defaults.add_row(r["name"], *(f"{d[k]:g}" for k in DEFAULT_HEADERS), r["source"])
    console.print(defaults)
    for r in rows:
        if not r["present"]:
            console.print(f"to add {r['name']}: place {r['layout']} under {root}", highlight=False)


DEFAULT_HEADERS = {"epochs": "epochs", "batch_size": "batch", "lr": "lr", "weight_decay": "wd",
                   "warmup_epochs": "warm-up", "label_smoothing": "smooth"}
"""Training defaults the table shows (the --json record has every field) and their column headers."""


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "files"
