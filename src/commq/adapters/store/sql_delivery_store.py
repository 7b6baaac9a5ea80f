"""Delivery events over SQLite or PostgreSQL: applied once, moving deliveryStatus forward.

One transaction per event: remember its id (a redelivered event stops there),
find the job by the job id the message carried or by the provider's message
id, move its deliveryStatus forward only (a compare-and-set on the statuses
the new one may replace), and list the recipient when the event suppresses.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.sql_suppression_store import suppression_insert
from commq.adapters.store.tables import db_now, delivery_events, jobs
from commq.domain.delivery import DeliveryEvent, EventEffect, replaceable_by
from commq.domain.jobs import Channel
from commq.domain.suppression import Suppression

_c = jobs.c


class SqlDeliveryStore:
    """See the DeliveryStore protocol for the contract."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def apply_delivery_event(self, event: DeliveryEvent) -> EventEffect:
        insert = postgresql.insert if self._tx.dialect == "postgresql" else sqlite.insert
        remember = (
            insert(delivery_events)
            .values(
                provider=event.provider,
                event_id=event.event_id,
                job_id=event.job_id,
                received_at=db_now(),
            )
            .on_conflict_do_nothing()
            .returning(delivery_events.c.event_id)
        )
        async with self._tx.write() as conn:
            if (await conn.execute(remember)).first() is None:
                return EventEffect.DUPLICATE
            job = await _find_job(conn, event)
            if job is None:
                return EventEffect.UNKNOWN_JOB
            moved = await _move_status(conn, job["id"], event)
            listed = await self._suppress(conn, job, event)
        return EventEffect.APPLIED if moved or listed else EventEffect.STALE

    async def _suppress(self, conn: AsyncConnection, job: RowMapping, event: DeliveryEvent) -> bool:
        if event.suppress is None:
            return False
        entry = Suppression(
            job["business_id"], Channel(job["channel"]), job["recipient"], event.suppress, job["id"]
        )
        return (await conn.execute(suppression_insert(self._tx.dialect, entry))).first() is not None


async def _find_job(conn: AsyncConnection, event: DeliveryEvent) -> RowMapping | None:
    matches: list[ColumnElement[bool]] = []
    if event.job_id:
        matches.append(_c.id == event.job_id)
    if event.provider_message_id:
        matches.append(
            (_c.provider == event.provider) & (_c.provider_message_id == event.provider_message_id)
        )
    if not matches:
        return None
    query = select(_c.id, _c.business_id, _c.channel, _c.recipient).where(or_(*matches)).limit(1)
    return (await conn.execute(query)).mappings().first()


async def _move_status(conn: AsyncConnection, job_id: str, event: DeliveryEvent) -> bool:
    if event.status is None:
        return False
    earlier = sorted(s.value for s in replaceable_by(event.status))
    statement = (
        update(jobs)
        .where(
            _c.id == job_id,
            or_(_c.delivery_status.is_(None), _c.delivery_status.in_(earlier)),
        )
        .values(delivery_status=event.status.value, updated_at=db_now())
        .returning(_c.id)
    )
    return (await conn.execute(statement)).first() is not None
