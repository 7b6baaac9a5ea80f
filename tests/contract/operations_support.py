"""Builders for the operations contract tests: many jobs fast, and the counters' truth."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import dialect_of
from commq.adapters.store.tables import UtcDateTime

from .support import BUSINESS, now

_batches = itertools.count(1)

_COLUMNS = (
    "id, business_id, channel, recipient, payload, status, priority, attempts, max_attempts,"
    " seq, run_at, last_error, error_type, provider, created_at, updated_at, failed_at,"
    " completed_at, cancelled_at"
)
_VALUES = (
    '{id}, :business, :channel, \'bulk@example.com\', \'{{"subject":"s","text":"t"}}\','
    " :status, 0, :attempts, 3, :attempts, :at, :error, :error_type, :provider, :at, :at,"
    " :failed_at, :completed_at, :cancelled_at"
)


async def insert_jobs(
    engine: AsyncEngine,
    count: int,
    *,
    status: str = "failed",
    business: str = BUSINESS,
    channel: str = "email",
    at: datetime | None = None,
    error: str | None = "550 mailbox unknown",
) -> str:
    """Insert ``count`` jobs in one statement (as a test set-up, not through the store).

    Returns the id prefix they share. Failed jobs get a permanent error from smtp,
    completed ones complete at ``at``, cancelled ones are cancelled at ``at``.
    """
    prefix = f"{next(_batches):08x}-0000-7000-8000-"
    when = at or now()
    if dialect_of(engine.url) == "postgresql":
        id_sql, rows = ":prefix || lpad(g::text, 12, '0')", "generate_series(1, :count) AS g"
        statement = f"INSERT INTO jobs ({_COLUMNS}) SELECT {_VALUES.format(id=id_sql)} FROM {rows}"
    else:
        id_sql = ":prefix || substr('000000000000' || n, -12, 12)"
        statement = (
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)"
            f" INSERT INTO jobs ({_COLUMNS}) SELECT {_VALUES.format(id=id_sql)} FROM g"
        )
    times = [
        bindparam(n, type_=UtcDateTime())
        for n in ("at", "failed_at", "completed_at", "cancelled_at")
    ]
    values: dict[str, Any] = {
        "prefix": prefix,
        "count": count,
        "business": business,
        "channel": channel,
        "status": status,
        "attempts": 3 if status == "failed" else 1 if status == "completed" else 0,
        "error": error if status == "failed" else None,
        "error_type": "permanent" if status == "failed" else None,
        "provider": None if status in ("pending", "cancelled") else "smtp",
        "at": when,
        "failed_at": when if status == "failed" else None,
        "completed_at": when if status == "completed" else None,
        "cancelled_at": when if status == "cancelled" else None,
    }
    async with engine.begin() as conn:
        await conn.execute(text(statement).bindparams(*times), values)
    return prefix


async def counts_from_jobs(engine: AsyncEngine) -> dict[tuple[str, str, str, str], int]:
    """Jobs by (business, channel, provider, status), counted the slow way."""
    query = (
        "SELECT business_id, channel, coalesce(provider, ''), status, count(*) FROM jobs"
        " GROUP BY business_id, channel, coalesce(provider, ''), status"
    )
    async with engine.connect() as conn:
        return {tuple(row[:4]): int(row[4]) for row in await conn.execute(text(query))}


async def counts_from_counters(engine: AsyncEngine) -> dict[tuple[str, str, str, str], int]:
    """The same figures as the triggers keep them in job_counts."""
    query = (
        "SELECT business_id, channel, provider, status, sum(n) FROM job_counts"
        " GROUP BY business_id, channel, provider, status HAVING sum(n) <> 0"
    )
    async with engine.connect() as conn:
        return {tuple(row[:4]): int(row[4]) for row in await conn.execute(text(query))}


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """One value of one query."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()
