"""The `commq` command line (DESIGN §6). It only translates arguments into calls."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from commq.adapters.store import check_schema
from commq.adapters.store import migrate as apply_migrations
from commq.domain.audit import Principal
from commq.domain.errors import CommqError
from commq.domain.jobs import Channel, NewJob
from commq.domain.permissions import Role
from commq.entrypoints.bootstrap import build
from commq.entrypoints.database_errors import shown_url, usable_database
from commq.entrypoints.migration_steps import migration_steps
from commq.entrypoints.runtime import settle_garbage_collector
from commq.entrypoints.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="commq: a durable communication queue.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

#: Who the CLI acts as: whoever can run it already holds the database.
CLI_ACTOR = Principal("cli", "commq cli", Role.ADMIN, None)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(message: str | CommqError) -> typer.Exit:
    field = getattr(message, "field", None)
    typer.echo(f"error: {field + ': ' if field else ''}{message}", err=True)
    return typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply database migrations (under an advisory lock on PostgreSQL)."""
    settings = _settings()
    with usable_database(settings.database_url), migration_steps(_note) as applied:
        apply_migrations(settings.database_url)
    where = f"database at {shown_url(settings.database_url)} is up to date"
    if applied:
        typer.echo(f"applied {len(applied)} migration{'s' * (len(applied) > 1)}: {where}")
    else:
        typer.echo(f"nothing to apply: {where}")


def _note(line: str) -> None:
    typer.echo(line, err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False,
) -> None:
    """Serve the API (and, unless --no-worker, a worker in the same process)."""
    from commq.entrypoints.api.app import create_app
    from commq.entrypoints.api.server import STARTUP_FAILURE, serve_app

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
    container = await build(settings)
    try:
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
        typer.echo(
            f"Try: curl -H 'Authorization: Bearer {plain}' {base_url}/communication-queue/stats"
        )
        typer.echo("")
    finally:
        await container.close()


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Sends in flight", show_default="COMMQ_CONCURRENCY, 100"),
    ] = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    from commq.entrypoints.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings()
    try:
        with usable_database(settings.database_url, existing=True):
            asyncio.run(run_worker(settings, concurrency))
    except CommqError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin, manager, support or producer")],
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    business: Annotated[str | None, typer.Option(help="Limit the key to one business")] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    if not name.strip():
        raise _fail("--name must name who or what uses the key")
    if business is not None and not business.strip():
        # An unset "$BUSINESS" must not quietly make a key that sees every business.
        raise _fail("--business is empty: name the business, or leave it out for a platform key")
    settings = _settings()
    with usable_database(settings.database_url):
        apply_migrations(settings.database_url)
        stored, plain = asyncio.run(_create_key(settings, name, role, business))
    scope = f"business {business}" if business else "all businesses"
    typer.echo(f"created {role.value} key {stored.id} ({name}, {scope})")
    typer.echo(plain)


async def _create_key(settings: Settings, name: str, role: Role, business: str | None) -> Any:
    container = await build(settings)
    try:
        return await container.keys.create(name, role, business, CLI_ACTOR)
    finally:
        await container.close()


@app.command()
def enqueue(
    channel: Annotated[Channel, typer.Option(help="email, sms or webhook")],
    to: Annotated[str, typer.Option(help="Address, E.164 number or URL")],
    business: Annotated[str, typer.Option(help="The business (tenant) id")],
    payload: Annotated[str | None, typer.Option(help="Payload as JSON")] = None,
    subject: Annotated[str | None, typer.Option(help="E-mail subject")] = None,
    text: Annotated[str | None, typer.Option(help="E-mail text, or SMS body")] = None,
    communication_id: Annotated[str | None, typer.Option(help="Your reference")] = None,
    run_at: Annotated[datetime | None, typer.Option(help="When to send (ISO-8601 UTC)")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first")] = 0,
) -> None:
    """Enqueue one job and print it as JSON."""
    from commq.entrypoints.api.schemas import job_json

    settings = _settings()
    body = _payload(channel, payload, subject, text)
    job = NewJob(
        business,
        channel,
        to,
        body,
        communication_id,
        priority,
        settings.max_attempts,
        _aware(run_at),
    )
    try:
        with usable_database(settings.database_url):
            [stored] = asyncio.run(_enqueue(settings, job))
    except CommqError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(job_json(stored.job), indent=2))


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def _payload(channel: Channel, raw: str | None, subject: str | None, text: str | None) -> Any:
    if raw is not None:
        if subject is not None or text is not None:
            raise _fail("--payload is the whole payload: leave out --subject and --text")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(f"--payload is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _fail("--payload must be a JSON object")
        return body
    # Name the option left out, not the payload field the user never wrote.
    if channel is Channel.EMAIL:
        if subject is None:
            raise _fail("an e-mail needs --subject (and --text), or a whole --payload")
        return {"subject": subject, "text": text or ""}
    if channel is Channel.SMS:
        if text is None:
            raise _fail("an SMS needs --text, or a whole --payload")
        return {"body": text}
    return {"body": {"text": text}}


async def _enqueue(settings: Settings, job: NewJob) -> Any:
    await asyncio.to_thread(apply_migrations, settings.database_url)
    container = await build(settings)
    try:
        return await container.queue.enqueue(CLI_ACTOR, [job])
    finally:
        await container.close()


@app.command()
def stats(
    business: Annotated[str | None, typer.Option(help="One business only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show queue statistics as a table (only reads: the database must be migrated)."""
    from commq.entrypoints.api.schemas import stats_json

    settings = _settings()
    with usable_database(settings.database_url, existing=True):
        figures = stats_json(asyncio.run(_stats(settings, business)))
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    total = sum(figures[s] for s in ("pending", "processing", "failed", "completed", "cancelled"))
    typer.echo(f"{'status':<12}{'jobs':>10}{'share':>8}")
    for status in ("pending", "processing", "failed", "completed", "cancelled"):
        count = figures[status]
        share = f"{100 * count / total:.0f}%" if total else "-"
        typer.echo(f"{status:<12}{count:>10}{share:>8}")
    avg = figures["avgProcessingTimeSeconds"]
    typer.echo(f"{'avg processing (last hour)':<30}{'-' if avg is None else f'{avg:.3f} s'}")
    typer.echo(f"{'oldest due pending':<30}{figures['oldestPendingAgeSeconds']:.1f} s")


async def _stats(settings: Settings, business: str | None) -> Any:
    # A look at the figures must not migrate a database beside running workers.
    await asyncio.to_thread(check_schema, settings.database_url)
    container = await build(settings)
    try:
        return await container.queue.stats(CLI_ACTOR, business)
    finally:
        await container.close()


@app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Age: 30d, 12h, 90m, 45s or seconds", show_default="COMMQ_RETENTION_DAYS"
        ),
    ] = None,
) -> None:
    """Delete completed and cancelled jobs (and their attempts) older than --older-than.

    Failed, pending and processing jobs, the rollups behind /stats/history and
    the audit trail are kept. Works in batches of 1000; safe beside running workers.
    """
    from commq.domain.operations import parse_age

    settings = _settings()
    if older_than is None and settings.retention_days <= 0:
        raise _fail("COMMQ_RETENTION_DAYS is 0 (retention off): pass --older-than")
    try:
        age = parse_age(older_than or f"{settings.retention_days}d")
    except ValueError as exc:
        raise _fail(f"--older-than: {exc}") from None
    with usable_database(settings.database_url, existing=True):
        deleted = asyncio.run(_prune(settings, age))
    typer.echo(f"deleted {deleted} completed or cancelled job{'s' * (deleted != 1)}")


async def _prune(settings: Settings, age: timedelta) -> int:
    await asyncio.to_thread(check_schema, settings.database_url)  # as _stats
    container = await build(settings)
    try:
        return await container.retention.prune(age, _show_progress)
    finally:
        await container.close()


def _show_progress(total: int) -> None:
    typer.echo(f"deleted {total} so far...", err=True)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SettingsError as exc:
        # Settings read when the services are built (a provider's key, say) are as
        # much the operator's to fix as those _settings() reads: one line, exit 2.
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
