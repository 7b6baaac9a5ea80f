"""`commq keys`: API keys for the REST API and the dashboard."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Annotated, Any

import typer

from commq.application.keys import KEY_CACHE_SECONDS, split_key
from commq.application.ports import StoredKey
from commq.domain.errors import CommqError, LastAdminKeyError
from commq.domain.permissions import Role
from commq.entrypoints.cli.console import (
    CLI_ACTOR,
    apply_migrations,
    check_schema,
    fail,
    note,
    read_settings,
    services,
    usable_database,
)
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


@app.command("list")
def list_(
    business: Annotated[str | None, typer.Option(help="Only this business's keys")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List every API key: id, prefix, role, business, created, name (never the secret)."""
    if business is not None and not business.strip():
        raise fail("--business is empty: name the business, or leave it out for every key")
    settings = read_settings()
    with usable_database(settings.database_url, existing=True):
        keys = asyncio.run(_list(settings, business))
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in keys], indent=2))
    elif keys:
        _print_table(keys)
    else:
        where = f" for business {business}" if business else ""
        typer.echo(f"no API keys{where}: `commq keys create` makes one")


async def _list(settings: Settings, business: str | None) -> list[StoredKey]:
    # Only reads, like stats: a database beside running workers is never migrated here.
    await asyncio.to_thread(check_schema, settings.database_url)
    async with services(settings) as container:
        return await container.keys.list_keys(business)


def _key_json(key: StoredKey) -> dict[str, Any]:
    from commq.entrypoints.api.schemas import iso

    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role.value,
        "businessId": key.business_id,
        "createdAt": iso(key.created_at),
    }


def _print_table(keys: list[StoredKey]) -> None:
    rows = [("ID", "PREFIX", "ROLE", "BUSINESS", "CREATED", "NAME")]
    rows += [
        (k.id, k.prefix, k.role.value, _scope(k.business_id), _created(k), k.name) for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        # The name, last and unpadded, may be as long as it likes.
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]))


def _created(key: StoredKey) -> str:
    return "-" if key.created_at is None else f"{key.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def _scope(business_id: str | None) -> str:
    return "(platform)" if business_id is None else business_id


@app.command("revoke")
def revoke(
    key_id: Annotated[
        str,
        typer.Argument(
            metavar="KEY_ID",
            help="The key's id, as `commq keys list` shows it, or its 12-character prefix",
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Revoke even the last admin platform key")
    ] = False,
) -> None:
    """Revoke an API key: the API and the dashboard stop accepting it (audited)."""
    if split_key(key_id) is not None:
        # Not echoed: it is a live secret, and now it sits in the shell's history too.
        raise fail(
            "that is a whole API key: pass its id or its prefix (the 12 characters after cq_)"
        )
    settings = read_settings()
    try:
        with usable_database(settings.database_url, existing=True):
            revoked, admins_left = asyncio.run(_revoke(settings, key_id, force))
    except LastAdminKeyError as exc:
        raise fail(
            f"{exc} Make another first (`commq keys create --role admin --name NAME`),"
            " or pass --force"
        ) from None
    except CommqError as exc:
        raise fail(exc) from None
    scope = f"business {revoked.business_id}" if revoked.business_id else "all businesses"
    typer.echo(f"revoked {revoked.role.value} key {revoked.id} ({revoked.name}, {scope})")
    # Each API process remembers a verified key (application/keys.py); this one cannot reach them.
    typer.echo(
        f"API processes may accept it for up to {KEY_CACHE_SECONDS:g} more seconds;"
        " dashboard sessions signed in with it end at their next request."
    )
    if _platform_admin(revoked) and not admins_left:
        note(
            "warning: no admin platform key is left:"
            " `commq keys create --role admin --name NAME` makes one"
        )


async def _revoke(settings: Settings, reference: str, force: bool) -> tuple[StoredKey, bool]:
    await asyncio.to_thread(check_schema, settings.database_url)
    async with services(settings) as container:
        revoked = await container.keys.revoke(reference, CLI_ACTOR, force=force)
        left = await container.keys.list_keys()
    return revoked, any(_platform_admin(key) for key in left)


def _platform_admin(key: StoredKey) -> bool:
    return key.role is Role.ADMIN and key.business_id is None
