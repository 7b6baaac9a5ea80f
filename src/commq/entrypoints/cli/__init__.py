"""The `commq` command line (DESIGN §6). It only translates arguments into calls.

One module per group of commands; this one puts them together under their
contract names (``serve``, ``worker``, ``migrate``, ``keys create``, ...).
"""

from __future__ import annotations

import typer

from commq.entrypoints.cli import jobs, keys, queue, serving
from commq.entrypoints.settings import SettingsError

app = typer.Typer(help="commq: a durable communication queue.", no_args_is_help=True)
app.command()(serving.migrate)
app.command()(serving.serve)
app.command()(serving.worker)
app.add_typer(keys.app, name="keys")
app.command()(jobs.enqueue)
app.command()(jobs.retry)
app.command()(jobs.cancel)
app.command()(queue.stats)
app.command()(queue.prune)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SettingsError as exc:
        # Settings read when the services are built (a provider's key, say) are as
        # much the operator's to fix as those read_settings() reads: one line, exit 2.
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
