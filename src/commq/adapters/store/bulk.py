"""Bulk retry and cancel by filter, one bounded transaction per chunk.

A chunk is picked in the keyset order of the partial index of its status
(failed: latest failedAt first; pending: oldest runAt first), so each chunk
reads about CHUNK_SIZE index entries however many jobs match. The pick is a
compare-and-set on the status the action starts from and locks the rows it
takes (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the write lock), so a job
a worker claimed, or an operator changed, meanwhile is left alone. Between
chunks no lock is held, so workers keep claiming and completing.

Named ``ids`` are changed by a plain compare-and-set UPDATE, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from commq.adapters.store.engine import Dialect
from commq.adapters.store.paging import filter_conditions
from commq.adapters.store.rows import action_values
from commq.adapters.store.tables import jobs, sql_status
from commq.domain.jobs import JobStatus
from commq.domain.listing import JobFilter
from commq.domain.operations import CHUNK_SIZE
from commq.domain.transitions import Action

_c = jobs.c


@dataclass(frozen=True, slots=True)
class _Keyset:
    """The status a bulk action changes and the index order its chunks follow."""

    status: JobStatus
    columns: tuple[Any, ...]
    descending: bool


_KEYSETS = {
    # Bulk retry covers failed jobs only (the route is /failed/retry).
    Action.RETRY: _Keyset(JobStatus.FAILED, (_c.failed_at, _c.id), True),
    Action.CANCEL: _Keyset(JobStatus.PENDING, (_c.run_at, _c.id), False),
}


def source_status(action: Action) -> JobStatus:
    """The status the jobs of a bulk ``action`` are in."""
    return _KEYSETS[action].status


def matching(action: Action, where: JobFilter) -> list[ColumnElement[bool]]:
    """The conditions of jobs that ``action`` changes under ``where``."""
    status = sql_status(_KEYSETS[action].status)  # a literal: partial indexes need one
    return [_c.status == status, *filter_conditions(replace(where, status=None))]


def count_statement(action: Action, where: JobFilter, ids: Sequence[str] | None) -> Select[Any]:
    """How many jobs match (``ids``: a chunk of the named ids)."""
    query = select(func.count()).select_from(jobs).where(*matching(action, where))
    return query if ids is None else query.where(_c.id.in_(ids))


def chunk_statement(action: Action, where: JobFilter, after: tuple[Any, ...] | None) -> Select[Any]:
    """Lock the next chunk of matching jobs (their sort keys, id last) after ``after``.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` passes over rows a worker is claiming
    (they are changing anyway) and keeps the chunk's rows as they are until the
    UPDATE. SQLite: the transaction's write lock does the same.
    """
    keyset = _KEYSETS[action]
    query = select(*keyset.columns).where(*matching(action, where))
    if after is not None:
        key = tuple_(*keyset.columns)
        query = query.where(key < after if keyset.descending else key > after)
    order = [c.desc() if keyset.descending else c.asc() for c in keyset.columns]
    return query.order_by(*order).limit(CHUNK_SIZE).with_for_update(skip_locked=True)


async def change_next_chunk(
    conn: AsyncConnection,
    dialect: Dialect,
    action: Action,
    where: JobFilter,
    after: tuple[Any, ...] | None,
) -> list[tuple[Any, ...]]:
    """Pick, lock and change the next chunk; returns the sort keys of the jobs changed."""
    picking = chunk_statement(action, where, after)
    if dialect == "sqlite":
        keys = [tuple(row) for row in await conn.execute(picking)]
        await change_locked(conn, action, [key[-1] for key in keys])
        return keys
    # One statement: the picked rows join back by primary key, so the plan stays a key
    # lookup even while the table's statistics lag behind a burst of failures.
    picked = picking.cte("picked").prefix_with("MATERIALIZED")
    statement = (
        update(jobs)
        .where(_c.id == picked.c.id)
        .values(**action_values(action))
        .returning(*(picked.c[column.name] for column in _KEYSETS[action].columns))
    )
    return [tuple(row) for row in await conn.execute(statement)]


def last_key(action: Action, keys: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Where the next chunk starts: after the furthest key of this one."""
    # A row re-checked under its lock may come back slightly out of order.
    return min(keys) if _KEYSETS[action].descending else max(keys)


async def change_locked(conn: AsyncConnection, action: Action, ids: Sequence[str]) -> int:
    """Apply ``action`` to jobs this transaction picked and locked with chunk_statement."""
    if not ids:
        return 0
    return await _update(conn, action, [_c.id.in_(ids)])


async def change_named(
    conn: AsyncConnection, action: Action, where: JobFilter, ids: Sequence[str]
) -> int:
    """Apply ``action`` to those of ``ids`` still matching (a compare-and-set)."""
    if not ids:
        return 0
    return await _update(conn, action, [_c.id.in_(ids), *matching(action, where)])


async def _update(conn: AsyncConnection, action: Action, where: list[ColumnElement[bool]]) -> int:
    statement = update(jobs).where(*where).values(**action_values(action))
    result = await conn.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
