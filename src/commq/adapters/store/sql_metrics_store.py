"""The figures /metrics reads from the database at scrape time."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.tables import db_now, jobs, sql_status
from commq.domain.jobs import JobStatus

_c = jobs.c


class SqlMetricsStore:
    """Job counts by status and channel, and the age of the oldest due pending job."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def job_gauges(self) -> tuple[list[tuple[str, str, int]], float]:
        """(status, channel, count) for every pair with jobs, and the oldest due job's age.

        The age is the database's now minus the oldest due runAt, in seconds
        (0 when nothing is due), exactly as /stats computes it.
        """
        counts = select(_c.status, _c.channel, func.count()).group_by(_c.status, _c.channel)
        oldest = select(db_now(), func.min(_c.run_at)).where(
            _c.status == sql_status(JobStatus.PENDING), _c.run_at <= db_now()
        )
        async with self._tx.read() as conn:
            rows = [(status, channel, n) for status, channel, n in await conn.execute(counts)]
            now, oldest_run_at = (await conn.execute(oldest)).one()
        age = 0.0 if oldest_run_at is None else max(0.0, (now - oldest_run_at).total_seconds())
        return rows, age
