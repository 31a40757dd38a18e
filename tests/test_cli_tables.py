"""Tables fit 80 columns: nothing is cut (no ellipsis, every number whole, every character of every name shown,
names wrap where the width runs short), and the console's width rule (``$COLUMNS`` wins; a pipe gets 160)."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from snn_deploy.cli import cli

WIDTH = 80


def _shown_whole(text: str, numbers: list[str], names: list[str]) -> None:
    """``text`` fits WIDTH, cuts nothing: ``numbers`` appear verbatim, every character of ``names`` appears."""
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "…" not in text  # rich's mark of a cut cell
    for number in numbers:
        assert number in text, f"{number!r} is cut or missing"
    shown = Counter(text.replace(" ", "").replace("\n", ""))
    needed = Counter("".join(names).replace(" ", ""))
    assert not needed - shown, f"characters missing: {needed - shown}"


def _render(table, width: int = WIDTH) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(table)
    return console.export_text()


def test_zoo_and_data_sets_fit_80_columns():
    from snn_deploy.cli.zoo import spec_row
    from snn_deploy.models.registry import names

    out = CliRunner().invoke(cli, ["models"], env={"COLUMNS": str(WIDTH)}).output
    rows = [spec_row(n) for n in names()]
    _shown_whole(out, [f"{r['params']:,}" for r in rows], [r["name"] for r in rows])
    out = CliRunner().invoke(cli, ["datasets"], env={"COLUMNS": str(WIDTH)}).output
    _shown_whole(out, ["1,281,167", "50,000", "0.0005"], ["dvs128-gesture", "cifar10-dvs", "imagefolder"])


def test_piped_tables_are_wide_unless_columns_says():
    from snn_deploy.console import PIPED_WIDTH, table_console

    import os

    saved = os.environ.pop("COLUMNS", None)
    try:
        assert table_console().width == PIPED_WIDTH  # pytest's stdout is no terminal
        os.environ["COLUMNS"] = "80"
        assert table_console().width == 80
    finally:
        os.environ.pop("COLUMNS", None)
        if saved is not None:
            os.environ["COLUMNS"] = saved


@pytest.fixture(scope="module")
def qkformer_run(tmp_path_factory):
    import snn_deploy as sd

    bundle = sd.export(sd.create("qkformer-tiny-8x8"), tmp_path_factory.mktemp("t") / "q.loihi")
    return bundle, sd.simulate(bundle, inputs=np.random.default_rng(0).random((2, 1, 8, 8)))


def test_layer_table_fits_80_columns(qkformer_run):
    from snn_deploy.sims.hardware.report import console_table

    _, results = qkformer_run
    layers = results.report["layers"]
    text = _render(console_table(results.report, WIDTH))
    _shown_whole(text, [f"{layer['neurons']:,}" for layer in layers], [layer["name"] for layer in layers])
    assert "limit" in text and "syn synaptic ops" in text.replace("\n", " ").replace("  ", " ")
    wide = _render(console_table(results.report, 160), 160)
    assert "shape" in wide and "rate" in wide  # the full table where the width allows


def test_verify_table_fits_80_columns(qkformer_run, capsys, monkeypatch):
    from snn_deploy import workflows
    from snn_deploy.sims.runs.verify import render

    bundle, _ = qkformer_run
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    report = workflows.verify(bundle, workflows.Inputs(array=np.random.default_rng(1).random((2, 1, 8, 8))),
                              backends="sim,onnx")
    render(report)
    _shown_whole(capsys.readouterr().out, [f"{layer.neurons:,}" for layer in report.layers],
                 [layer.node for layer in report.layers])
