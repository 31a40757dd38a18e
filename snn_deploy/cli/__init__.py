"""The ``snn-deploy`` command line: one click group; each command lives in its own module."""

from __future__ import annotations

from typing import Any

import click

from snn_deploy import __version__
from snn_deploy.cli.options import verbosity_options


class OneLineUsageError(click.UsageError):
    """A usage error (bad option value, unknown option) as one ``error:`` line, like every other bad input."""

    def show(self, file: Any = None) -> None:
        where = f"; see `{self.ctx.command_path} --help`" if self.ctx is not None else ""
        click.echo(f"error: {self.format_message().rstrip('.')}{where}", err=True)


class Group(click.Group):
    """The command group; usage errors of every command are reported as :class:`OneLineUsageError`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, OneLineUsageError):
                raise
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snn-deploy")
def cli() -> None:
    """Deploy spiking transformers to Loihi-class neuromorphic hardware.

    Exit status: 0 success; 1 a check failed (verify: spikes differ; simulate/report: the mapping breaks the
    profile's limits; doctor: a problem), every output written; 2 bad usage or input (one `error:` line, nothing
    written).
    """
    from snn_deploy import console

    console.set_verbosity(0)  # -q / -v of the command (parsed after this) set it for this invocation


def _register() -> None:
    from snn_deploy.cli import demo, doctor
    from snn_deploy.cli import zoo
    from snn_deploy.cli import deploy
    from snn_deploy.cli import data, train
    from snn_deploy.cli import hardware

    cli.add_command(doctor.doctor)
    cli.add_command(demo.demo)
    cli.add_command(zoo.models)
    cli.add_command(zoo.import_checkpoint)
    cli.add_command(deploy.quantize)
    cli.add_command(deploy.export)
    cli.add_command(data.datasets)
    cli.add_command(train.train)
    cli.add_command(train.evaluate)
    cli.add_command(train.pretrain)
    cli.add_command(deploy.verify)
    cli.add_command(hardware.simulate)
    cli.add_command(hardware.report)
    from snn_deploy.cli.handler import exit_on_user_error

    listings = {"models", "datasets", "doctor"}
    for name, command in cli.commands.items():
        command.callback = exit_on_user_error(command.callback)  # one error handler on every command
        if name not in listings:
            command.params.extend(verbosity_options())


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="snn-deploy")
    except SystemExit as stop:
        if stop.code in (128 + 2, 128 + 15):  # interrupted, cleaned up: end now, not after seconds of collecting
            import gc                         # what a large model left behind (the interpreter's last pass)

            gc.freeze()
        raise
