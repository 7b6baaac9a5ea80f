"""A worker's changes to a job it holds, besides recording the final result.

Failover records the faulted provider's attempt and keeps the claim; a job
whose providers are all down (or paused) goes back unsent without using up
an attempt; a job to a suppressed recipient fails without being sent. Each is
a compare-and-set on the job's id, status and lease token, like every other
change a worker makes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.engine import Transactions
from commq.adapters.store.tables import attempts, db_after, db_now, jobs, sql_status
from commq.application.ports import AttemptReport
from commq.domain.jobs import AttemptOutcome, ErrorType, Job, JobStatus, duration_between

_c = jobs.c
_RELEASED = {"lease_token": None, "lease_expires_at": None, "worker_id": None}


def _held(job_id: str, lease_token: str) -> list[ColumnElement[bool]]:
    processing = sql_status(JobStatus.PROCESSING)
    return [_c.id == job_id, _c.lease_token == lease_token, _c.status == processing]


class SqlHeldJobStore:
    """See the HeldJobStore protocol for each method's contract."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def record_attempt(
        self, job: Job, lease_token: str, outcome: AttemptOutcome, report: AttemptReport
    ) -> bool:
        statement = (
            update(jobs)
            .where(*_held(job.id, lease_token))
            .values(seq=_c.seq + 1, provider=report.result.provider, updated_at=db_now())
            .returning(_c.seq, _c.attempts, _c.business_id)
        )
        async with self._tx.write() as conn:
            row = (await conn.execute(statement)).mappings().first()
            if row is None:
                return False
            await conn.execute(
                attempts.insert().values(**_attempt_values(job.id, row, outcome, report))
            )
        return True

    async def defer(self, job_id: str, lease_token: str, delay: timedelta, reason: str) -> bool:
        return await self._change(
            job_id,
            lease_token,
            status=JobStatus.PENDING.value,
            run_at=db_after(delay.total_seconds()),
            last_error=reason,
        )

    async def fail_unsent(self, job_id: str, lease_token: str, error: str) -> bool:
        return await self._change(
            job_id,
            lease_token,
            status=JobStatus.FAILED.value,
            failed_at=db_now(),
            error_type=ErrorType.PERMANENT.value,
            last_error=error,
        )

    async def _change(self, job_id: str, lease_token: str, **values: Any) -> bool:
        statement = (
            update(jobs)
            .where(*_held(job_id, lease_token))
            .values(**values, **_RELEASED, attempts=_c.attempts - 1, updated_at=db_now())
            .returning(_c.id)
        )
        async with self._tx.write() as conn:
            return (await conn.execute(statement)).first() is not None


def _attempt_values(
    job_id: str, row: Any, outcome: AttemptOutcome, report: AttemptReport
) -> dict[str, Any]:
    result = report.result
    return {
        "job_id": job_id,
        "seq": row["seq"],
        "business_id": row["business_id"],
        "attempt": row["attempts"],
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "duration_ms": duration_between(report.started_at, report.finished_at),
        "outcome": outcome.value,
        "error": result.error,
        "provider": result.provider,
        "provider_message_id": result.provider_message_id,
    }
