"""The `commq` command line (DESIGN §6). It only translates arguments into calls.

One module per group of commands; this one puts them together under their
contract names (``serve``, ``worker``, ``migrate``, ``keys create``, ...).
"""

from __future__ import annotations

from typing import Annotated

import typer

from commq.entrypoints.cli import jobs, keys, queue, serving
from commq.entrypoints.settings import SettingsError

app = typer.Typer(help="commq: a durable communication queue.", no_args_is_help=True)


def _print_version(wanted: bool) -> None:
    if not wanted:
        return
    from importlib.metadata import version

    from commq.adapters.store.migrate import HEAD_REVISION

    # The schema too: what `commq migrate` brings a database to, and what workers expect.
    typer.echo(f"commq {version('commq')} (database schema {HEAD_REVISION})")
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """commq: a durable communication queue."""


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
