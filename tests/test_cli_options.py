"""One option name per idea: the README's option-name table is what every command's --help shows, and the names
options had before still parse (hidden). Tables fit 80 columns."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from snn_deploy.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _option_rows() -> list[tuple[list[str], list[str], list[str]]]:
    """(names, commands, older names) of each row of the README's option-name table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| idea | name | commands | older names (hidden) |"):].split("\n\n")[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        names = [re.findall(r"--[a-z-]+", span)[0] for span in re.findall(r"`([^`]*)`", cells[1])]
        commands = re.findall(r"`([a-z]+)`", cells[2])
        older = re.findall(r"`(--[a-zA-Z-]+)`", cells[3])
        rows.append((names, commands, older))
    return rows


def _visible(command: click.Command) -> dict[str, click.Option]:
    """Long option names that --help shows -> their parameter."""
    ctx = click.Context(command)
    shown = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.get_help_record(ctx) is not None:
            record = param.get_help_record(ctx)[0]
            shown |= {name: param for name in re.findall(r"--[a-z][a-z-]*", record)}
    return shown


def test_readme_table_is_what_help_shows():
    rows = _option_rows()
    assert len(rows) >= 10
    older_names = {name for _, _, older in rows for name in older}
    for names, commands, older in rows:
        for command_name in commands:
            command = cli.commands[command_name]
            visible = _visible(command)
            for name in names:
                assert name in visible, f"{command_name} --help lacks {name}"
            aliases = {o for name in names for o in visible[name].opts if o not in names}
            assert aliases <= set(older), f"{command_name}: {names[0]} has undocumented aliases {aliases - set(older)}"
    for command_name, command in cli.commands.items():
        assert not older_names & set(_visible(command)), f"{command_name} --help shows an older name"


@pytest.mark.parametrize("command, old, new, value", [
    ("import", "--arch", "--model", "qkformer-tiny"),
    ("import", "--neuron-mode", "--neuron", "loihi"),
    ("import", "--T", "--time-steps", "2"),
    ("verify", "--backends", "--backend", "sim,onnx"),
    ("verify", "--steps", "--time-steps", "3"),
    ("simulate", "--steps", "--time-steps", "3"),
    ("simulate", "--profile", "--target", "loihi1"),
    ("export", "--steps", "--time-steps", "3"),
    ("export", "--rewrite-eval", "--eval", "digits"),
    ("train", "--T", "--time-steps", "2"),
])
def test_older_names_parse_to_the_same_value(command, old, new, value):
    """A hidden alias sets the same parameter as the name --help shows."""
    cmd = cli.commands[command]
    required = {"import": ["ckpt", "--model", "x", "-o", "o"], "verify": ["m"], "simulate": ["b"], "export": ["m"],
                "train": ["--model", "x", "--dataset", "d", "-o", "o"]}[command]
    parsed = {}
    for spelling in (old, new):
        args = [a for a in required]
        if spelling in ("--arch", "--model") and command == "import":
            args = ["ckpt", "-o", "o"]
        ctx = cmd.make_context(command, [*args, spelling, value], resilient_parsing=True)
        parsed[spelling] = dict(ctx.params)
    assert parsed[old] == parsed[new]
    assert any(str(v) == value for v in parsed[new].values())


@pytest.mark.parametrize("args", [["datasets"], ["train", "--help"], ["pretrain", "--help"], ["models"], ["--help"],
                                  ["simulate", "--help"], ["verify", "--help"]])
def test_listings_and_help_import_no_torch(args):
    """What `benchmarks/cli_startup.py` times stays fast because nothing on its path imports torch (defaults and
    data-set facts are plain data)."""
    import subprocess
    import sys

    code = (f"import sys, click\nfrom snn_deploy.cli import cli\ntry:\n    cli({args!r}, standalone_mode=False)\n"
            "except (SystemExit, click.exceptions.Exit):\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
