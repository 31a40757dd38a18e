"""``snn-deploy doctor``: environment report and a Lava-vs-snn_deploy self-check."""

from __future__ import annotations

import click


@click.command()
def doctor() -> None:
    """Check the environment (filled in below)."""
    raise click.ClickException("doctor is being written")
