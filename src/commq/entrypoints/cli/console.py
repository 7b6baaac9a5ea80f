"""What every command shares: its settings, who it acts as, and how it fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer

from commq.domain.audit import Principal
from commq.domain.errors import CommqError
from commq.domain.permissions import Role
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.settings import Settings, SettingsError, load_settings

#: Who the CLI acts as: whoever can run it already holds the database.
CLI_ACTOR = Principal("cli", "commq cli", Role.ADMIN, None)


def read_settings() -> Settings:
    """The configuration; a setting that cannot be used ends the command (exit 2)."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def fail(message: str | CommqError) -> typer.Exit:
    """Print ``message`` as one ``error:`` line (naming its field, if any); raise the result."""
    field = getattr(message, "field", None)
    typer.echo(f"error: {field + ': ' if field else ''}{message}", err=True)
    return typer.Exit(1)


def note(line: str) -> None:
    """A progress line, on stderr so that stdout stays the command's answer."""
    typer.echo(line, err=True)


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Container]:
    """The wired services for one command, closed when it is done."""
    container = await build(settings)
    try:
        yield container
    finally:
        await container.close()
