"""The commands about the queue as a whole: stats, prune."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Annotated

import typer

from commq.domain.jobs import QueueStats
from commq.entrypoints.cli.console import (
    CLI_ACTOR,
    check_schema,
    fail,
    note,
    read_settings,
    services,
    usable_database,
)
from commq.entrypoints.settings import Settings

_STATUSES = ("pending", "processing", "failed", "completed", "cancelled")


def stats(
    business: Annotated[str | None, typer.Option(help="One business only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show queue statistics as a table (only reads: the database must be migrated)."""
    from commq.entrypoints.api.schemas import stats_json

    settings = read_settings()
    with usable_database(settings.database_url, existing=True):
        figures = stats_json(asyncio.run(_stats(settings, business)))
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    total = sum(figures[s] for s in _STATUSES)
    typer.echo(f"{'status':<12}{'jobs':>10}{'share':>8}")
    for status in _STATUSES:
        count = figures[status]
        share = f"{100 * count / total:.0f}%" if total else "-"
        typer.echo(f"{status:<12}{count:>10}{share:>8}")
    avg = figures["avgProcessingTimeSeconds"]
    typer.echo(f"{'avg processing (last hour)':<30}{'-' if avg is None else f'{avg:.3f} s'}")
    typer.echo(f"{'oldest due pending':<30}{figures['oldestPendingAgeSeconds']:.1f} s")


async def _stats(settings: Settings, business: str | None) -> QueueStats:
    # A look at the figures must not migrate a database beside running workers.
    await asyncio.to_thread(check_schema, settings.database_url)
    async with services(settings) as container:
        return await container.queue.stats(CLI_ACTOR, business)


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

    settings = read_settings()
    if older_than is None and settings.retention_days <= 0:
        raise fail("COMMQ_RETENTION_DAYS is 0 (retention off): pass --older-than")
    try:
        age = parse_age(older_than or f"{settings.retention_days}d")
    except ValueError as exc:
        raise fail(f"--older-than: {exc}") from None
    with usable_database(settings.database_url, existing=True):
        deleted = asyncio.run(_prune(settings, age))
    typer.echo(f"deleted {deleted} completed or cancelled job{'s' * (deleted != 1)}")


async def _prune(settings: Settings, age: timedelta) -> int:
    await asyncio.to_thread(check_schema, settings.database_url)  # as _stats
    async with services(settings) as container:
        return await container.retention.prune(age, _show_progress)


def _show_progress(total: int) -> None:
    note(f"deleted {total} so far...")
