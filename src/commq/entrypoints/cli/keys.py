"""`commq keys`: API keys for the REST API and the dashboard."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commq.adapters.store import migrate as apply_migrations
from commq.application.ports import StoredKey
from commq.domain.permissions import Role
from commq.entrypoints.cli.console import CLI_ACTOR, fail, read_settings, services
from commq.entrypoints.database_errors import usable_database
from commq.entrypoints.settings import Settings

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
def create(
    role: Annotated[Role, typer.Option(help="admin, manager, support or producer")],
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    business: Annotated[str | None, typer.Option(help="Limit the key to one business")] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    if not name.strip():
        raise fail("--name must name who or what uses the key")
    if business is not None and not business.strip():
        # An unset "$BUSINESS" must not quietly make a key that sees every business.
        raise fail("--business is empty: name the business, or leave it out for a platform key")
    settings = read_settings()
    with usable_database(settings.database_url):
        apply_migrations(settings.database_url)
        stored, plain = asyncio.run(_create(settings, name, role, business))
    scope = f"business {business}" if business else "all businesses"
    typer.echo(f"created {role.value} key {stored.id} ({name}, {scope})")
    typer.echo(plain)


async def _create(
    settings: Settings, name: str, role: Role, business: str | None
) -> tuple[StoredKey, str]:
    async with services(settings) as container:
        return await container.keys.create(name, role, business, CLI_ACTOR)
