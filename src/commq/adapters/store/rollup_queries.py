"""Reads of the counters and rollups that the triggers of migration 0002 keep.

Every query sums over ``slot``: on PostgreSQL concurrent writers spread over
slot rows until compaction folds them together.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from commq.adapters.store.tables import attempt_rollups, db_after, job_counts, rollups
from commq.domain.analytics import Bucket, Figures, GroupBy, HistoryQuery, bucket_floor

#: Rollup columns and the Figures field each one feeds.
_FIELDS: dict[str, dict[str, str]] = {
    "rollups": {"enqueued": "enqueued", "completed": "completed", "failed": "failed"},
    "attempt_rollups": {
        "succeeded": "succeeded_attempts",
        "failed": "failed_attempts",
        "duration_ms": "duration_ms",
    },
}
_GROUP_COLUMNS = {
    GroupBy.CHANNEL: "channel",
    GroupBy.PROVIDER: "provider",
    GroupBy.ERROR_TYPE: "error_type",
}


#: A business id, or the bound parameter a statement compiled once takes it as.
Business = str | BindParameter[str]


def business_scope(table: Table, business_id: Business | None) -> list[ColumnElement[bool]]:
    """No condition for every business, else that business only."""
    return [] if business_id is None else [table.c.business_id == business_id]


def counts_statement(business_id: Business | None) -> Select[Any]:
    """Jobs by (channel, provider, status)."""
    c = job_counts.c
    return (
        select(c.channel, c.provider, c.status, func.sum(c.n))
        .where(*business_scope(job_counts, business_id))
        .group_by(c.channel, c.provider, c.status)
    )


def _sums(table: Table, grain: Bucket, business_id: Business | None, *group: Any) -> Select[Any]:
    t = table.c
    figures = [func.sum(t[column]) for column in _FIELDS[table.name]]
    return (
        select(t.bucket_start, *group, *figures)
        .where(t.grain == grain.value, *business_scope(table, business_id))
        .group_by(t.bucket_start, *group)
    )


def minutes_since(table: Table, business_id: Business | None, seconds: float) -> Select[Any]:
    """The sums of ``table`` per minute bucket that started at most ``seconds`` ago
    (database clock): the bucket's start, then one column per field of ``_FIELDS``."""
    query = _sums(table, Bucket.MINUTE, business_id)
    return query.where(table.c.bucket_start >= db_after(-seconds))


async def history_sums(
    conn: AsyncConnection, query: HistoryQuery
) -> dict[tuple[str | None, datetime], Figures]:
    """Figures per (group, bucket start) over the query's range."""
    found: dict[tuple[str | None, datetime], Figures] = defaultdict(Figures)
    first = bucket_floor(query.start, query.bucket)
    for table in (rollups, attempt_rollups):
        group = [] if query.group_by is None else [table.c[_GROUP_COLUMNS[query.group_by]]]
        statement = _sums(table, query.bucket, query.business_id, *group).where(
            table.c.bucket_start >= first, table.c.bucket_start < query.end
        )
        for bucket_start, *rest in await conn.execute(statement):
            name = rest.pop(0) if group else None
            found[(name or None, bucket_start)] += figures_of(table.name, rest)
    return dict(found)


def figures_of(table_name: str, sums: list[Any]) -> Figures:
    """The Figures of one row of sums of the rollup table ``table_name``."""
    names = _FIELDS[table_name].values()
    return Figures(**{name: int(value or 0) for name, value in zip(names, sums, strict=True)})
