"""The commands that run commq: serve, worker, migrate."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from commq.domain.errors import CommqError
from commq.domain.permissions import Role
from commq.entrypoints.cli.console import (
    CLI_ACTOR,
    apply_migrations,
    fail,
    note,
    read_settings,
    services,
    usable_database,
)
from commq.entrypoints.migration_steps import migration_steps
from commq.entrypoints.runtime import settle_garbage_collector
from commq.entrypoints.settings import Settings

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def migrate() -> None:
    """Apply database migrations (under an advisory lock on PostgreSQL)."""
    from commq.entrypoints.database_errors import shown_url

    settings = read_settings()
    with usable_database(settings.database_url), migration_steps(note) as applied:
        apply_migrations(settings.database_url)
    where = f"database at {shown_url(settings.database_url)} is up to date"
    if applied:
        typer.echo(f"applied {len(applied)} migration{'s' * (len(applied) > 1)}: {where}")
    else:
        typer.echo(f"nothing to apply: {where}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False,
) -> None:
    """Serve the API (and, unless --no-worker, a worker in the same process)."""
    from commq.entrypoints.api.app import create_app
    from commq.entrypoints.api.server import STARTUP_FAILURE, serve_app

    settings = read_settings()
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    with usable_database(settings.database_url):
        apply_migrations(settings.database_url)
        asyncio.run(_first_start_key(settings, _base_url(host, port)))
    app_ = create_app(settings, run_worker=not no_worker, apply_migrations=False)
    settle_garbage_collector()
    # Live streams end when shutdown begins; other requests get the grace to finish.
    if not serve_app(app_, host, port, settings.shutdown_grace):
        raise typer.Exit(STARTUP_FAILURE)


def _base_url(host: str, port: int) -> str:
    """Where a local client reaches ``commq serve --host host --port port``."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _first_start_key(settings: Settings, base_url: str) -> None:
    async with services(settings) as container:
        if await container.keys.any_exist():
            typer.echo(
                "API keys exist (only their hashes are stored): "
                "`commq keys create --role admin --name NAME` makes another."
            )
            return
        _, plain = await container.keys.create("first admin", Role.ADMIN, None, CLI_ACTOR)
    typer.echo("")
    typer.echo("First start: created an admin API key. It is shown only this once:")
    typer.echo(f"    {plain}")
    typer.echo(f"Try: curl -H 'Authorization: Bearer {plain}' {base_url}/communication-queue/stats")
    typer.echo("")


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Sends in flight", show_default="COMMQ_CONCURRENCY, 100"),
    ] = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    from commq.entrypoints.worker import run_worker

    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    settings = read_settings()
    try:
        with usable_database(settings.database_url, existing=True):
            asyncio.run(run_worker(settings, concurrency))
    except CommqError as exc:
        raise fail(str(exc)) from None
