"""The figures /metrics reads from the database at scrape time."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.rollup_queries import counts_statement
from commq.adapters.store.tables import db_now, jobs, sql_status
from commq.domain.jobs import Channel, JobStatus

_c = jobs.c


class SqlMetricsStore:
    """Job counts by status and channel, and the age of the oldest due pending job."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def job_gauges(self) -> tuple[list[tuple[str, str, int]], float]:
        """(status, channel, count) for every status and channel, and the oldest due job's age.

        The counts come from the counters the triggers keep (as /stats's do), never
        from a scan of the jobs table, which a scrape every few seconds would repeat
        over millions of rows. Every pair is present, 0 included, so a status that
        empties reads 0 rather than dropping out of the scrape. The age is the
        database's now minus the oldest due runAt, in seconds (0 when nothing is due),
        exactly as /stats computes it.
        """
        oldest = select(db_now(), func.min(_c.run_at)).where(
            _c.status == sql_status(JobStatus.PENDING), _c.run_at <= db_now()
        )
        async with self._tx.read() as conn:
            counted = (await conn.execute(counts_statement(None))).all()
            now, oldest_run_at = (await conn.execute(oldest)).one()
        counts = {(status.value, channel.value): 0 for status in JobStatus for channel in Channel}
        for channel, _provider, status, n in counted:
            counts[(status, channel)] = counts.get((status, channel), 0) + int(n)
        age = 0.0 if oldest_run_at is None else max(0.0, (now - oldest_run_at).total_seconds())
        return [(status, channel, n) for (status, channel), n in counts.items()], age
