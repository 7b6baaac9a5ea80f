"""Bulk actions, the audit listing, analytics rollups and retention over SQL.

Implements the BulkJobStore, AuditReader, RollupStore and RetentionStore
protocols; see them for each method's contract.

On SQLite a bulk action leaves the database to others between its chunks, for
half as long as each chunk held it. SQLite has one writer, and a worker in another
process waits for the write lock in SQLite's busy handler, which polls at
intervals of up to 100 ms: back-to-back chunks left it a gap of microseconds, and
a 100,000-job retry kept dispatch at 13-37 % of its rate (the benchmark's g, two
runs). With the pauses it kept 62-72 % and the retry took 6.8-8.5 s instead of
2.7-3.9 s (the worker's writes now come in between). PostgreSQL's workers write
alongside the chunks, so nothing pauses there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.audit_listing import audit_query, encode_audit_cursor, event_from_row
from commq.adapters.store.bulk import (
    change_named,
    change_next_chunk,
    count_statement,
    last_key,
)
from commq.adapters.store.compaction import FOLDS, fold
from commq.adapters.store.engine import Transactions
from commq.adapters.store.rollup_queries import history_sums
from commq.adapters.store.rows import audit_insert
from commq.adapters.store.tables import db_after, jobs, sql_status
from commq.application.ports import PruneBatch
from commq.domain.analytics import HistoryQuery, RollupSums
from commq.domain.audit import AuditEntry
from commq.domain.jobs import JobStatus
from commq.domain.listing import MAX_PAGE_SIZE, JobFilter
from commq.domain.operations import CHUNK_SIZE, AuditFilter, AuditPage
from commq.domain.transitions import Action

_c = jobs.c
#: Jobs created this long after the retention cutoff are still looked at (clock skew).
_CUTOFF_MARGIN = timedelta(hours=1)


class SqlOperationsStore:
    """Operations over the jobs and audit tables, on SQLite or PostgreSQL."""

    def __init__(
        self, engine: AsyncEngine, pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self._tx = Transactions(engine)
        self._pause = pause

    async def count_bulk(self, action: Action, where: JobFilter, ids: Sequence[str] | None) -> int:
        async with self._tx.read() as conn:
            if ids is None:
                return int((await conn.execute(count_statement(action, where, None))).scalar_one())
            total = 0
            for chunk in _chunks(ids):
                total += (await conn.execute(count_statement(action, where, chunk))).scalar_one()
            return total

    async def apply_bulk(
        self, action: Action, where: JobFilter, ids: Sequence[str] | None, audit: AuditEntry
    ) -> int:
        if ids is not None:
            return await self._apply_to_ids(action, where, ids, audit)
        changed, after = 0, None
        while True:  # one bounded transaction per chunk; workers run in between
            async with self._tx.write() as conn:
                held_from = time.monotonic()
                keys = await change_next_chunk(conn, self._tx.dialect, action, where, after)
                changed += len(keys)
                if len(keys) < CHUNK_SIZE:
                    await conn.execute(_audit(audit, changed))
                    return changed
            await self._leave_to_others(time.monotonic() - held_from)
            after = last_key(action, keys)

    async def _apply_to_ids(
        self, action: Action, where: JobFilter, ids: Sequence[str], audit: AuditEntry
    ) -> int:
        chunks = _chunks(ids)
        changed = 0
        for index, chunk in enumerate(chunks):
            async with self._tx.write() as conn:
                held_from = time.monotonic()
                changed += await change_named(conn, action, where, chunk)
                if index == len(chunks) - 1:
                    await conn.execute(_audit(audit, changed))
                    return changed
            await self._leave_to_others(time.monotonic() - held_from)
        return changed

    async def _leave_to_others(self, held: float) -> None:
        """SQLite: between two chunks, leave the write lock free half as long as one held it."""
        if self._tx.dialect == "sqlite":
            await self._pause(held / 2)

    async def list_audit(self, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        async with self._tx.read() as conn:
            rows = (await conn.execute(audit_query(where, limit, cursor))).mappings().all()
        events = [event_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(events, encode_audit_cursor(events[-1].id) if more else None)

    async def rollup_sums(self, query: HistoryQuery) -> RollupSums:
        async with self._tx.read() as conn:
            return await history_sums(conn, query)

    async def prune_batch(self, older_than: timedelta, limit: int, after: str | None) -> PruneBatch:
        expired = _expired(older_than)
        query = select(_c.id).where(*expired).order_by(_c.id).limit(limit)
        if after is not None:
            query = query.where(_c.id > after)
        async with self._tx.read() as conn:
            ids = list((await conn.execute(query)).scalars())
        if not ids:
            return PruneBatch(0, None)
        # Checked again as the rows are deleted: a job retried meanwhile stays.
        statement = delete(jobs).where(_c.id.in_(ids), *expired)
        async with self._tx.write() as conn:
            deleted = int((await conn.execute(statement)).rowcount)  # type: ignore[attr-defined]
        return PruneBatch(deleted, ids[-1] if len(ids) == limit else None)

    async def compact(self) -> None:
        if self._tx.dialect != "postgresql":
            return
        for statement in FOLDS:
            async with self._tx.write() as conn:
                if not await fold(conn, statement):
                    return


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    unique = sorted(set(ids))
    return [unique[i : i + CHUNK_SIZE] for i in range(0, len(unique), CHUNK_SIZE)] or [[]]


def _audit(entry: AuditEntry, count: int) -> Any:
    return audit_insert(replace(entry, count=count), entry.business_id, None)


def _expired(older_than: timedelta) -> list[ColumnElement[bool]]:
    """Completed or cancelled before now - ``older_than`` (database clock)."""
    seconds = older_than.total_seconds()
    finished = or_(
        and_(_c.status == sql_status(JobStatus.COMPLETED), _c.completed_at < db_after(-seconds)),
        and_(_c.status == sql_status(JobStatus.CANCELLED), _c.cancelled_at < db_after(-seconds)),
    )
    return [_c.id < _first_id_at(time.time() - seconds + _CUTOFF_MARGIN.total_seconds()), finished]


def _first_id_at(epoch_seconds: float) -> str:
    """The smallest UUIDv7 of that moment: ids sort by creation, and a job finishes after it
    was created, so only ids below this can belong to jobs that finished before it."""
    return str(uuid.UUID(int=max(0, int(epoch_seconds * 1000)) << 80))
