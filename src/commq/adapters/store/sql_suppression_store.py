"""Suppressed recipients over SQLite or PostgreSQL.

Recipients are stored in their listed form (``recipient_key``: e-mail
addresses lower-cased), keyed by (business, channel, recipient). Lists page by
that key with an opaque cursor, like the job lists.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, delete, or_, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import Dialect, Transactions
from commq.adapters.store.rows import audit_insert
from commq.adapters.store.tables import db_now, suppressions
from commq.domain.audit import AuditEntry
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import Channel, Job
from commq.domain.suppression import (
    Suppression,
    SuppressionPage,
    SuppressionReason,
    recipient_key,
)

_s = suppressions.c
_KEY = (_s.business_id, _s.channel, _s.recipient)
_IN_CHUNK = 300


def suppression_insert(dialect: Dialect, suppression: Suppression) -> Insert:
    """The INSERT listing one recipient; a recipient listed already keeps its first entry."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(suppressions)
        .values(
            business_id=suppression.business_id,
            channel=suppression.channel.value,
            recipient=recipient_key(suppression.channel, suppression.recipient),
            reason=suppression.reason.value,
            job_id=suppression.job_id,
            created_at=db_now(),
        )
        .on_conflict_do_nothing()
        .returning(_s.recipient)
    )


class SqlSuppressionStore:
    """See the SuppressionStore protocol for each method's contract."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def find_suppressions(self, jobs: Sequence[Job]) -> dict[str, Suppression]:
        keys = {
            (j.business_id, j.channel.value, recipient_key(j.channel, j.recipient)) for j in jobs
        }
        found: dict[tuple[str, str, str], Suppression] = {}
        ordered = sorted(keys)
        async with self._tx.read_one() as conn:
            for start in range(0, len(ordered), _IN_CHUNK):
                query = suppressions.select().where(
                    tuple_(*_KEY).in_(ordered[start : start + _IN_CHUNK])
                )
                for row in (await conn.execute(query)).mappings():
                    found[(row["business_id"], row["channel"], row["recipient"])] = _entry(row)
        by_job = {
            j.id: found.get((j.business_id, j.channel.value, recipient_key(j.channel, j.recipient)))
            for j in jobs
        }
        return {job_id: s for job_id, s in by_job.items() if s is not None}

    async def add_suppression(self, suppression: Suppression) -> bool:
        async with self._tx.write() as conn:
            added = await conn.execute(suppression_insert(self._tx.dialect, suppression))
            return added.first() is not None

    async def list_suppressions(
        self, business_id: str | None, limit: int, cursor: str | None
    ) -> SuppressionPage:
        query = suppressions.select()
        if business_id is not None:
            query = query.where(_s.business_id == business_id)
        if cursor is not None:
            query = query.where(tuple_(*_KEY) > tuple_(*_decode(cursor)))
        query = query.order_by(*_KEY).limit(limit + 1)
        async with self._tx.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        more = len(rows) > limit
        next_cursor = _encode(rows[limit - 1]) if more else None
        return SuppressionPage([_entry(r) for r in rows[:limit]], next_cursor)

    async def recipient_suppressions(
        self, business_id: str | None, recipient: str
    ) -> list[Suppression]:
        query = suppressions.select().where(_names(recipient))
        if business_id is not None:
            query = query.where(_s.business_id == business_id)
        async with self._tx.read() as conn:
            rows = (await conn.execute(query.order_by(*_KEY))).mappings().all()
        return [_entry(r) for r in rows]

    async def delete_suppression(self, business_id: str, recipient: str, audit: AuditEntry) -> int:
        statement = delete(suppressions).where(_s.business_id == business_id, _names(recipient))
        async with self._tx.write() as conn:
            removed = (await conn.execute(statement.returning(_s.recipient))).all()
            if removed:
                await conn.execute(audit_insert(audit, business_id, None))
        return len(removed)


def _names(recipient: str) -> ColumnElement[bool]:
    """Entries for ``recipient`` on any channel, compared as each channel stores it."""
    return or_(
        and_(
            _s.channel == Channel.EMAIL.value,
            _s.recipient == recipient_key(Channel.EMAIL, recipient),
        ),
        and_(_s.channel != Channel.EMAIL.value, _s.recipient == recipient.strip()),
    )


def _entry(row: RowMapping) -> Suppression:
    return Suppression(
        business_id=row["business_id"],
        channel=Channel(row["channel"]),
        recipient=row["recipient"],
        reason=SuppressionReason(row["reason"]),
        job_id=row["job_id"],
        created_at=row["created_at"],
    )


def _encode(row: RowMapping) -> str:
    raw = json.dumps([row["business_id"], row["channel"], row["recipient"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, ...]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
            raise ValueError("not a suppression cursor")
        return tuple(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError() from None
