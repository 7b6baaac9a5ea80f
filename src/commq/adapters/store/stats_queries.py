"""GET /stats from counters, rollups and small index ranges, never a scan of the jobs.

- counts by status, channel and provider: ``job_counts`` (kept by triggers);
- due, scheduled and the oldest due job: the partial index of pending jobs;
- throughput, failure rate and mean processing time: minute rollups of the
  last hour (a sliding-window estimate, exact to the minute);
- the top errors: the latest failed attempts of the last hour, at most
  TOP_ERRORS_SAMPLE of them, through the partial index of failed attempts.

The five statements are compiled once per scope (all businesses, or one given
as a bound value) and run on the driver (driver_calls): together they take well
under a millisecond in the database, where building and executing each through
SQLAlchemy's async engine cost milliseconds of Python per call. Each is a
statement of its own, as at PostgreSQL's READ COMMITTED they always were; there
they travel in one pipeline (one round trip, where they were five).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, Text, bindparam, func, select
from sqlalchemy.sql.elements import BindParameter

from commq.adapters.store.driver_calls import DriverStatement, fetch_each
from commq.adapters.store.engine import Dialect, Transactions
from commq.adapters.store.rollup_queries import (
    business_scope,
    counts_statement,
    figures_of,
    minutes_since,
)
from commq.adapters.store.tables import (
    attempt_rollups,
    attempts,
    db_after,
    db_now,
    jobs,
    rollups,
    sql_status,
)
from commq.domain.analytics import Figures, window_sum
from commq.domain.jobs import AttemptOutcome, ErrorCount, JobStatus, QueueStats

TOP_ERRORS = 10
#: The top errors are counted over at most this many of the latest failed attempts.
TOP_ERRORS_SAMPLE = 10_000
_HOUR = timedelta(hours=1)
#: The minute buckets read: the last hour, and two minutes for the window's edges.
_RECENT_SECONDS = 3600 + 120
_c = jobs.c
_a = attempts.c
_BUSINESS: BindParameter[str] = bindparam("stats_business", type_=Text())
_ROLLUPS = (rollups, attempt_rollups)


@dataclass(frozen=True, slots=True)
class _StatsStatements:
    counts: DriverStatement
    pending: DriverStatement
    minutes: tuple[DriverStatement, DriverStatement]  # rollups, attempt_rollups
    top_errors: DriverStatement


@cache
def _statements(dialect: Dialect, scoped: bool) -> _StatsStatements:
    business = _BUSINESS if scoped else None
    minutes = tuple(
        DriverStatement.compile(minutes_since(table, business, _RECENT_SECONDS), dialect)
        for table in _ROLLUPS
    )
    return _StatsStatements(
        DriverStatement.compile(counts_statement(business), dialect),
        DriverStatement.compile(_pending(business), dialect),
        (minutes[0], minutes[1]),
        DriverStatement.compile(_top_errors(business), dialect),
    )


async def read_stats(tx: Transactions, business_id: str | None) -> QueueStats:
    """Every /stats figure for one business (None: all)."""
    statements = _statements(tx.dialect, business_id is not None)
    params = {} if business_id is None else {_BUSINESS.key: business_id}
    reads = [statements.counts, statements.pending, *statements.minutes, statements.top_errors]
    async with tx.on_driver() as conn:
        counted, pending_rows, *sums, errors = await fetch_each(conn, [(s, params) for s in reads])
    counts = [(channel, provider, status, int(n)) for channel, provider, status, n in counted]
    [(now, oldest_run_at, scheduled)] = statements.pending.values(pending_rows)
    minutes: dict[datetime, Figures] = defaultdict(Figures)
    for table, statement, rows in zip(_ROLLUPS, statements.minutes, sums, strict=True):
        for bucket_start, *figures in statement.values(rows):
            minutes[bucket_start] += figures_of(table.name, figures)
    by_status: dict[str, int] = defaultdict(int)
    for _, _, status, n in counts:
        by_status[status] += n
    pending = by_status[JobStatus.PENDING.value]
    last_hour = window_sum(minutes, now, _HOUR)
    return QueueStats(
        **{s.value: by_status[s.value] for s in JobStatus},
        avg_processing_time_seconds=last_hour.avg_processing_time_seconds,
        oldest_pending_age_seconds=_age(now, oldest_run_at),
        # Counters and the index are read by two statements: keep the pair consistent.
        due=max(0, pending - scheduled),
        scheduled=min(scheduled, pending),
        completed_last_minute=round(window_sum(minutes, now, timedelta(minutes=1)).completed),
        completed_last_hour=round(last_hour.completed),
        failure_rate_last_hour=last_hour.failure_rate,
        by_channel=_breakdown((ch, s, n) for ch, _, s, n in counts),
        by_provider=_breakdown((p, s, n) for _, p, s, n in counts if p),
        top_errors_last_hour=tuple(ErrorCount(error, int(n)) for error, n in errors),
    )


def _pending(business_id: BindParameter[str] | None) -> Select[Any]:
    pending = [_c.status == sql_status(JobStatus.PENDING), *business_scope(jobs, business_id)]
    oldest = select(func.min(_c.run_at)).where(*pending, _c.run_at <= db_now())
    scheduled = select(func.count()).select_from(jobs).where(*pending, _c.run_at > db_now())
    return select(
        db_now().label("now"),
        oldest.scalar_subquery().label("oldest"),
        scheduled.scalar_subquery().label("scheduled"),
    )


def _top_errors(business_id: BindParameter[str] | None) -> Select[Any]:
    recent = (
        select(_a.error)
        .where(
            _a.outcome != sql_status(AttemptOutcome.SUCCEEDED),
            _a.finished_at >= db_after(-3600),
            *business_scope(attempts, business_id),
        )
        .order_by(_a.finished_at.desc())
        .limit(TOP_ERRORS_SAMPLE)
        .subquery()
    )
    count = func.count()
    return (
        select(recent.c.error, count)
        .where(recent.c.error.is_not(None))
        .group_by(recent.c.error)
        .order_by(count.desc(), recent.c.error)
        .limit(TOP_ERRORS)
    )


def _age(now: datetime, oldest_run_at: datetime | None) -> float:
    return 0.0 if oldest_run_at is None else max(0.0, (now - oldest_run_at).total_seconds())


def _breakdown(rows: Any) -> dict[str, dict[str, int]]:
    """{key: {status: count}} with every status present for each key that has jobs."""
    found: dict[str, dict[str, int]] = {}
    for key, status, n in rows:
        if n:
            counts = found.setdefault(key, {s.value: 0 for s in JobStatus})
            counts[status] += n
    return found
