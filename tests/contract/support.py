"""Small builders shared by the store contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.application.ports import AttemptReport
from commq.domain.audit import AuditEntry, Principal
from commq.domain.jobs import AttemptOutcome, Channel, ErrorType, Job, JobStatus, NewJob
from commq.domain.outcomes import Decision, SendOutcome, SendResult
from commq.domain.permissions import Role

BUSINESS = "acme"
OTHER_BUSINESS = "globex"
LEASE = timedelta(seconds=30)


def now() -> datetime:
    """This machine's clock, for test data only (the store reads the database's)."""
    return datetime.now(UTC)


def new_job(**fields: Any) -> NewJob:
    """An e-mail job of BUSINESS; ``fields`` override any field."""
    defaults: dict[str, Any] = {
        "business_id": BUSINESS,
        "channel": Channel.EMAIL,
        "recipient": "ana@example.com",
        "payload": {"subject": "Hello", "text": "Hi Ana"},
    }
    return NewJob(**{**defaults, **fields})


async def enqueue(store: SqlJobStore, **fields: Any) -> Job:
    """Enqueue one job and return it as stored."""
    [stored] = await store.enqueue([new_job(**fields)])
    return stored.job


async def reread(store: SqlJobStore, job_id: str) -> Job:
    """The job as stored now (fails the test if it is gone)."""
    job = await store.find_job(job_id, None)
    assert job is not None, f"job {job_id} is gone"
    return job


async def claim_one(store: SqlJobStore, lease: timedelta = LEASE, **kw: Any) -> Job:
    """Claim exactly one job (fails the test otherwise)."""
    claimed = await store.claim("worker-1", 1, lease, **kw)
    assert len(claimed) == 1, claimed
    return claimed[0]


def report(
    result: SendResult, seconds: float = 1.0, finished: datetime | None = None
) -> AttemptReport:
    """An attempt that took ``seconds`` and finished at ``finished`` (default now)."""
    end = finished or now()
    return AttemptReport(
        started_at=end - timedelta(seconds=seconds), finished_at=end, result=result
    )


def succeeded() -> tuple[Decision, SendResult]:
    """The provider took the message."""
    return (
        Decision(JobStatus.COMPLETED, AttemptOutcome.SUCCEEDED, None, None),
        SendResult.ok("outbox", "msg-1"),
    )


def failed(error: str = "550 mailbox unknown") -> tuple[Decision, SendResult]:
    """A permanent failure: the job fails."""
    return (
        Decision(JobStatus.FAILED, AttemptOutcome.PERMANENT_ERROR, ErrorType.PERMANENT, error),
        SendResult(SendOutcome.PERMANENT, "smtp", error=error),
    )


def retry_later(
    error: str = "421 try later", retry_in: timedelta = timedelta(0)
) -> tuple[Decision, SendResult]:
    """A transient failure: the job is due again after ``retry_in``."""
    decision = Decision(
        JobStatus.PENDING, AttemptOutcome.TRANSIENT_ERROR, ErrorType.TRANSIENT, error, retry_in
    )
    return decision, SendResult(SendOutcome.TRANSIENT, "smtp", error=error)


async def finish(
    store: SqlJobStore, job: Job, outcome: tuple[Decision, SendResult], seconds: float = 1.0
) -> bool:
    """Record ``outcome`` for a claimed job under its own lease."""
    decision, result = outcome
    assert job.lease_token is not None
    return await store.record_result(job, job.lease_token, decision, report(result, seconds))


def audit(action: str, business_id: str | None = BUSINESS) -> AuditEntry:
    """An audit entry by an admin key of ``business_id`` (None: a platform key)."""
    actor = Principal("key-1", "ops", Role.ADMIN, business_id)
    return AuditEntry(action=action, actor=actor, business_id=business_id)


async def count_rows(engine: AsyncEngine, table: Table, **equal: Any) -> int:
    """How many rows of ``table`` have the given column values."""
    query = select(func.count()).select_from(table)
    query = query.where(*(table.c[name] == value for name, value in equal.items()))
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@contextmanager
def sqlalchemy_calls(
    engine: AsyncEngine, events: tuple[str, ...] = ("begin", "before_cursor_execute")
) -> Iterator[list[object]]:
    """Every ``events`` of SQLAlchemy's on ``engine`` inside the block (none: the block
    ran on the driver alone)."""
    seen: list[object] = []

    def note(*args: object) -> None:
        seen.append(args)

    for name in events:
        event.listen(engine.sync_engine, name, note)
    try:
        yield seen
    finally:
        for name in events:
            event.remove(engine.sync_engine, name, note)
