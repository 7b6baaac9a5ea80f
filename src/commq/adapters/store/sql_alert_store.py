"""The AlertStore over SQLite or PostgreSQL: stored alerts and the figures rules read.

One evaluator at a time: on PostgreSQL a round holds a session advisory lock
on a dedicated connection (in autocommit, so it holds no snapshot open), and
a process that cannot take it skips the round. SQLite is the embedded,
one-process mode, so its rounds simply run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, literal_column, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.tables import alerts, attempts, db_after, db_now, jobs, sql_status
from commq.domain.alerts import (
    Alert,
    AlertPolicy,
    AlertRuleKind,
    AlertStatus,
    HealthFigures,
    HealthReading,
)
from commq.domain.jobs import AttemptOutcome, JobStatus

#: pg_try_advisory_lock key of alert rounds ("commqa" in ASCII); held for one round.
ALERT_LOCK_KEY = 0x636F6D6D7161

#: The ``scope`` of an alert about every business together (no business id is empty).
ALL_BUSINESSES = ""

#: The alert list is bounded: a flapping rule over many businesses cannot flood it.
MAX_LISTED = 1000

_a = alerts.c
_j = jobs.c
_t = attempts.c
_FIRING = literal_column(f"'{AlertStatus.FIRING.value}'")
_SUCCEEDED = sql_status(AttemptOutcome.SUCCEEDED)


class SqlAlertStore:
    """Alerts in SQL; see the AlertStore protocol for each method's contract."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._tx = Transactions(engine)

    @asynccontextmanager
    async def evaluation_lock(self) -> AsyncIterator[bool]:
        if self._tx.dialect != "postgresql":
            yield True
            return
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            key = {"key": ALERT_LOCK_KEY}
            acquired = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key)).scalar()
            if not acquired:
                yield False
                return
            try:
                yield True
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)

    async def health(self, policy: AlertPolicy) -> HealthReading:
        by_business: dict[str, dict[str, Any]] = {}
        async with self._tx.read() as conn:
            now = (await conn.execute(select(db_now()))).scalar_one()
            if policy.needs(AlertRuleKind.FAILED_JOBS):
                await _collect(conn, by_business, "failed_jobs", _failed_jobs())
            if policy.needs(AlertRuleKind.OLDEST_PENDING_AGE):
                for business_id, run_at in await conn.execute(_oldest_due()):
                    age = max(0.0, (now - run_at).total_seconds())
                    by_business.setdefault(business_id, {})["oldest_pending_age_seconds"] = age
            if policy.needs(AlertRuleKind.FAILURE_RATE):
                seconds = policy.window.total_seconds()
                await _collect(conn, by_business, "ok", _attempts_since(seconds, failed=False))
                await _collect(conn, by_business, "failed_attempts", _attempts_since(seconds))
        return HealthReading(now, tuple(_figures(b, v) for b, v in sorted(by_business.items())))

    async def firing_alerts(self) -> list[Alert]:
        query = alerts.select().where(_a.status == _FIRING)
        async with self._tx.read() as conn:
            return [_alert(row) for row in (await conn.execute(query)).mappings()]

    async def save_alert(self, alert: Alert) -> None:
        values = _row(alert)
        insert = postgresql.insert if self._tx.dialect == "postgresql" else sqlite.insert
        statement = (
            insert(alerts)
            .values(values)
            .on_conflict_do_update(
                index_elements=[_a.id], set_={k: v for k, v in values.items() if k != "id"}
            )
        )
        async with self._tx.write() as conn:
            await conn.execute(statement)

    async def list_alerts(self, business_id: str | None, resolved_within: timedelta) -> list[Alert]:
        recent = _a.resolved_at >= db_after(-resolved_within.total_seconds())
        query = alerts.select().where(or_(_a.status == _FIRING, recent))
        if business_id is not None:
            query = query.where(_a.scope == business_id)
        query = query.order_by(_a.started_at.desc(), _a.id.desc()).limit(MAX_LISTED)
        async with self._tx.read() as conn:
            return [_alert(row) for row in (await conn.execute(query)).mappings()]


def _failed_jobs() -> Select[Any]:
    return (
        select(_j.business_id, func.count())
        .where(_j.status == sql_status(JobStatus.FAILED))
        .group_by(_j.business_id)
    )


def _oldest_due() -> Select[Any]:
    return (
        select(_j.business_id, func.min(_j.run_at))
        .where(_j.status == sql_status(JobStatus.PENDING), _j.run_at <= db_now())
        .group_by(_j.business_id)
    )


def _attempts_since(seconds: float, failed: bool = True) -> Select[Any]:
    # Two partial indexes (succeeded, and not) each cover one half of the window.
    outcome = _t.outcome != _SUCCEEDED if failed else _t.outcome == _SUCCEEDED
    return (
        select(_t.business_id, func.count())
        .where(outcome, _t.finished_at >= db_after(-seconds))
        .group_by(_t.business_id)
    )


async def _collect(
    conn: AsyncConnection, into: dict[str, dict[str, Any]], name: str, query: Select[Any]
) -> None:
    for business_id, count in await conn.execute(query):
        into.setdefault(business_id, {})[name] = count


def _figures(business_id: str, values: dict[str, Any]) -> HealthFigures:
    failed_attempts = values.get("failed_attempts", 0)
    return HealthFigures(
        business_id=business_id,
        failed_jobs=values.get("failed_jobs", 0),
        oldest_pending_age_seconds=values.get("oldest_pending_age_seconds", 0.0),
        attempts=values.get("ok", 0) + failed_attempts,
        failed_attempts=failed_attempts,
    )


def _row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule.value,
        "scope": ALL_BUSINESSES if alert.business_id is None else alert.business_id,
        "status": alert.status.value,
        "threshold": alert.threshold,
        "value": alert.value,
        "message": alert.message,
        "started_at": alert.started_at,
        "updated_at": alert.updated_at,
        "last_notified_at": alert.last_notified_at,
        "resolved_at": alert.resolved_at,
        "notifications": alert.notifications,
    }


def _alert(row: RowMapping) -> Alert:
    return Alert(
        id=row["id"],
        rule=AlertRuleKind(row["rule"]),
        business_id=None if row["scope"] == ALL_BUSINESSES else row["scope"],
        status=AlertStatus(row["status"]),
        threshold=row["threshold"],
        value=row["value"],
        message=row["message"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        last_notified_at=row["last_notified_at"],
        resolved_at=row["resolved_at"],
        notifications=row["notifications"],
    )
