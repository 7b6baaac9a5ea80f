"""What every command shares: its settings, who it acts as, how it fails, its database.

The services and the database load on first use: bootstrap brings in SQLAlchemy,
Alembic, the drivers and httpx (about 2 s on a 2-core machine), which `commq --help`,
a mistyped option or a refused argument never need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import typer

from commq.domain.audit import Principal
from commq.domain.errors import CommqError
from commq.domain.permissions import Role
from commq.entrypoints.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from commq.entrypoints.bootstrap import Container

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
    from commq.entrypoints.bootstrap import build

    container = await build(settings)
    try:
        yield container
    finally:
        await container.close()


@contextmanager
def usable_database(database_url: str, *, existing: bool = False) -> Iterator[None]:
    """database_errors.usable_database: one line, exit 1, for a database it cannot use."""
    from commq.entrypoints import database_errors

    with database_errors.usable_database(database_url, existing=existing):
        yield


def check_schema(database_url: str) -> None:
    """Raise SchemaMismatchError unless the database is at the newest schema."""
    from commq.adapters import store

    store.check_schema(database_url)


def apply_migrations(database_url: str) -> None:
    """Bring the database to the newest schema (commq.adapters.store.migrate)."""
    from commq.adapters import store

    store.migrate(database_url)
