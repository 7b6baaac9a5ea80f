"""The JobStore over SQLite or PostgreSQL.

Every state change is one compare-and-set UPDATE on the row's id, status and
(for a worker's changes) lease token, so a stale worker or a raced operator
changes nothing. Times that matter for scheduling come from the database clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commq.adapters.store.claims import (
    RECLAIM_BATCH,
    claim_on_driver,
    lost_attempt,
    reclaim_statement,
)
from commq.adapters.store.engine import Transactions
from commq.adapters.store.job_inserts import FreshJob, insert_jobs
from commq.adapters.store.paging import encode_cursor, page_on_driver
from commq.adapters.store.results import (
    record_postgresql,
    record_sqlite,
)
from commq.adapters.store.rows import (
    action_values,
    attempt_from_row,
    audit_insert,
    job_from_row,
)
from commq.adapters.store.stats_queries import read_stats
from commq.adapters.store.tables import (
    attempts,
    db_after,
    db_now,
    jobs,
    sql_status,
)
from commq.application.ports import AttemptReport, ClaimedJobs, Enqueued, WorkerResult
from commq.domain.audit import AuditEntry
from commq.domain.errors import InvalidTransitionError
from commq.domain.jobs import (
    Attempt,
    Channel,
    Job,
    JobStatus,
    NewJob,
    Page,
    QueueStats,
)
from commq.domain.listing import MAX_PAGE_SIZE, JobFilter, PageRequest
from commq.domain.outcomes import Decision
from commq.domain.transitions import Action, allowed_sources, check_action

_c = jobs.c
_PROCESSING = sql_status(JobStatus.PROCESSING)
_IN_CHUNK = 500
_LEASE_CLEARED = {"lease_token": None, "lease_expires_at": None, "worker_id": None}


class SqlJobStore:
    """Durable jobs in SQL; see the JobStore protocol for each method's contract."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = Transactions(engine)

    async def enqueue(self, new_jobs: Sequence[NewJob]) -> list[Enqueued]:
        if not new_jobs:
            return []
        fresh = FreshJob.all(new_jobs)
        created = await self._insert_new(fresh)
        replayed = await self._by_idempotency_key(fresh, created)
        return [
            Enqueued(created[f.id], True)
            if f.id in created
            else Enqueued(replayed[(f.job.business_id, f.job.idempotency_key)], False)
            for f in fresh
        ]

    async def _insert_new(self, fresh: Sequence[FreshJob]) -> dict[str, Job]:
        # One statement, atomic on its own, so no transaction around it (job_inserts).
        # The unique index decides between concurrent enqueues with one key: the
        # loser inserts nothing and reads the winner's job below.
        return await insert_jobs(self._tx, fresh)

    async def _by_idempotency_key(
        self, fresh: Sequence[FreshJob], created: dict[str, Job]
    ) -> dict[tuple[str | None, str | None], Job]:
        # Only after a conflict: the winner has committed, so a new read sees its job.
        keys = {(f.job.business_id, f.job.idempotency_key) for f in fresh if f.id not in created}
        if not keys:
            return {}
        query = jobs.select().where(tuple_(_c.business_id, _c.idempotency_key).in_(list(keys)))
        async with self._tx.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return {(r["business_id"], r["idempotency_key"]): job_from_row(r) for r in rows}

    async def find_job(self, job_id: str, business_id: str | None) -> Job | None:
        if not _storable_id(job_id):
            return None
        async with self._tx.read() as conn:
            row = (await conn.execute(jobs.select().where(*_one(job_id, business_id)))).mappings()
            found = row.first()
        return None if found is None else job_from_row(found)

    async def list_jobs(self, where: JobFilter, page: PageRequest) -> Page:
        limit = max(1, min(page.limit, MAX_PAGE_SIZE))
        on_driver, params = page_on_driver(self._tx.dialect, where, page.order, page.cursor, limit)
        async with self._tx.on_driver() as conn:
            rows = await on_driver.statement.rows(conn, params)
        found = [on_driver.read_job(row) for row in rows[:limit]]
        cursor = encode_cursor(page.order, found[-1]) if len(rows) > limit else None
        return Page(found, cursor)

    async def history(self, job_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = {job_id: [] for job_id in job_ids}
        ids = list(found)
        async with self._tx.read() as conn:
            # Chunks keep each IN list far below the drivers' bound-parameter limits.
            for start in range(0, len(ids), _IN_CHUNK):
                query = (
                    attempts.select()
                    .where(attempts.c.job_id.in_(ids[start : start + _IN_CHUNK]))
                    .order_by(attempts.c.job_id, attempts.c.seq)
                )
                for row in (await conn.execute(query)).mappings():
                    found[row["job_id"]].append(attempt_from_row(row))
        return found

    async def stats(self, business_id: str | None) -> QueueStats:
        return await read_stats(self._tx, business_id)

    async def claim(
        self,
        worker_id: str,
        limit: int,
        lease: timedelta,
        business_id: str | None = None,
        skip_channels: Collection[Channel] = (),
    ) -> list[Job]:
        claimed = await self.claim_to_send(worker_id, limit, lease, business_id, skip_channels)
        return claimed.jobs

    async def claim_to_send(
        self,
        worker_id: str,
        limit: int,
        lease: timedelta,
        business_id: str | None = None,
        skip_channels: Collection[Channel] = (),
    ) -> ClaimedJobs:
        if limit <= 0:
            return ClaimedJobs([])
        # The hottest statement: straight on the driver, a statement of its own.
        claim, params = claim_on_driver(
            self._tx.dialect, worker_id, limit, lease, business_id, skip_channels
        )
        async with self._tx.on_driver() as conn:
            rows = await claim.statement.rows(conn, params, self._tx.write_lock())
        return claim.claimed(rows)

    async def extend_leases(self, leases: Sequence[tuple[str, str]], lease: timedelta) -> set[str]:
        if not leases:
            return set()
        statement = (
            update(jobs)
            .where(tuple_(_c.id, _c.lease_token).in_(list(leases)), _c.status == _PROCESSING)
            .values(lease_expires_at=db_after(lease.total_seconds()))
            .returning(_c.id)
        )
        async with self._tx.write() as conn:
            return set((await conn.execute(statement)).scalars())

    async def record_result(
        self, job: Job, lease_token: str, decision: Decision, report: AttemptReport
    ) -> bool:
        recorded = await self.record_results([WorkerResult(job, lease_token, decision, report)])
        return recorded[0]

    async def record_results(self, results: Sequence[WorkerResult]) -> list[bool]:
        if not results:
            return []
        async with self._tx.on_driver() as conn:
            if self._tx.dialect == "postgresql":
                recorded = await record_postgresql(conn, results)
            else:
                recorded = await record_sqlite(conn, results, self._tx.write_lock())
        return [r.job.id in recorded for r in results]

    async def release(self, job_id: str, lease_token: str) -> bool:
        statement = (
            update(jobs)
            .where(*_held(job_id, lease_token))
            .values(status=JobStatus.PENDING.value, attempts=_c.attempts - 1, **_LEASE_CLEARED)
            .values(updated_at=db_now())
            .returning(_c.id)
        )
        async with self._tx.write() as conn:
            return (await conn.execute(statement)).first() is not None

    async def reclaim_expired(self) -> int:
        reclaimed = 0
        while True:  # one bounded transaction per batch
            async with self._tx.write() as conn:
                rows = (await conn.execute(reclaim_statement(self._tx.dialect))).mappings().all()
                if rows:
                    await conn.execute(attempts.insert(), [lost_attempt(r) for r in rows])
            reclaimed += len(rows)
            if len(rows) < RECLAIM_BATCH:
                return reclaimed

    async def apply_action(self, job_id: str, action: Action, audit: AuditEntry) -> Job | None:
        if not _storable_id(job_id):
            return None
        async with self._tx.write() as conn:
            row = await _change(conn, job_id, action, audit.business_id)
            if row is None:
                # Tell "no such job" from "not allowed now", on a locked re-read.
                locked = select(_c.status).where(*_one(job_id, audit.business_id))
                status = (await conn.execute(locked.with_for_update())).scalar()
                if status is None:
                    return None
                check_action(action, JobStatus(status))
                # Allowed now: a concurrent change committed between the two reads.
                row = await _change(conn, job_id, action, audit.business_id)
                if row is None:
                    raise InvalidTransitionError()
            await conn.execute(audit_insert(audit, row["business_id"], job_id))
        return job_from_row(row)

    async def record_audit(self, audit: AuditEntry) -> None:
        async with self._tx.write() as conn:
            await conn.execute(audit_insert(audit, audit.business_id, audit.job_id))


def _storable_id(job_id: str) -> bool:
    """False for an id no job can have: PostgreSQL text cannot even be compared with NUL."""
    return "\x00" not in job_id


def _one(job_id: str, business_id: str | None) -> list[ColumnElement[bool]]:
    where = [_c.id == job_id]
    return where if business_id is None else [*where, _c.business_id == business_id]


def _held(job_id: str, lease_token: str) -> list[ColumnElement[bool]]:
    return [_c.id == job_id, _c.lease_token == lease_token, _c.status == _PROCESSING]


async def _change(
    conn: AsyncConnection, job_id: str, action: Action, business_id: str | None
) -> RowMapping | None:
    sources = [status.value for status in allowed_sources(action)]
    where = [*_one(job_id, business_id), _c.status.in_(sources)]
    if action is Action.DELETE:
        statement: Any = delete(jobs).where(*where)  # attempts go with it (migration 0009)
    else:
        statement = update(jobs).where(*where).values(**action_values(action))
    return (await conn.execute(statement.returning(*jobs.c))).mappings().first()
