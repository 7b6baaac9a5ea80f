"""Operator actions (retry, cancel, delete) and the audit trail, on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.tables import attempts, audit_events
from commq.domain.audit import AuditEntry, Principal
from commq.domain.errors import InvalidTransitionError
from commq.domain.jobs import Job, JobStatus
from commq.domain.permissions import Role
from commq.domain.transitions import Action

from .support import (
    BUSINESS,
    LEASE,
    OTHER_BUSINESS,
    audit,
    claim_one,
    count_rows,
    enqueue,
    failed,
    finish,
    now,
    succeeded,
)


async def _failed_job(store: SqlJobStore) -> Job:
    job = await enqueue(store)
    await finish(store, await claim_one(store), failed())
    return job


async def test_retry_puts_a_failed_job_back_due_now_with_a_clean_slate(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    job = await _failed_job(job_store)
    retried = await job_store.apply_action(job.id, Action.RETRY, audit("job.retry"))
    assert retried is not None
    assert retried == await job_store.find_job(job.id, BUSINESS)
    assert (retried.status, retried.attempts) == (JobStatus.PENDING, 0)
    assert (retried.last_error, retried.error_type, retried.failed_at) == (None, None, None)
    assert retried.run_at <= now()
    assert await count_rows(store_engine, audit_events, job_id=job.id, action="job.retry") == 1


async def test_retry_also_takes_cancelled_jobs(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    await job_store.apply_action(job.id, Action.CANCEL, audit("job.cancel"))
    retried = await job_store.apply_action(job.id, Action.RETRY, audit("job.retry"))
    assert retried is not None
    assert (retried.status, retried.cancelled_at) == (JobStatus.PENDING, None)


async def test_cancel_stops_a_pending_job(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    cancelled = await job_store.apply_action(job.id, Action.CANCEL, audit("job.cancel"))
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert await job_store.claim("w", 5, LEASE) == []


async def test_delete_removes_the_job_and_its_history(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    job = await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), succeeded())
    deleted = await job_store.apply_action(job.id, Action.DELETE, audit("job.delete"))
    assert deleted is not None
    assert (deleted.id, deleted.status) == (job.id, JobStatus.COMPLETED)
    assert await job_store.find_job(job.id, None) is None
    assert await count_rows(store_engine, attempts, job_id=job.id) == 0
    assert await count_rows(store_engine, audit_events, job_id=job.id, action="job.delete") == 1


_REFUSED = [
    (Action.RETRY, JobStatus.PENDING),
    (Action.RETRY, JobStatus.PROCESSING),
    (Action.RETRY, JobStatus.COMPLETED),
    (Action.CANCEL, JobStatus.PROCESSING),
    (Action.CANCEL, JobStatus.FAILED),
    (Action.CANCEL, JobStatus.COMPLETED),
    (Action.DELETE, JobStatus.PROCESSING),
]


async def _one_job_per_status(store: SqlJobStore) -> dict[JobStatus, Job]:
    """A pending, a processing, a completed and a failed job (claims take the oldest)."""
    made = [await enqueue(store) for _ in range(4)]
    await finish(store, await claim_one(store), succeeded())
    await finish(store, await claim_one(store), failed())
    await claim_one(store)
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.PROCESSING, JobStatus.PENDING]
    return dict(zip(statuses, made, strict=True))


async def test_an_action_the_status_does_not_allow_changes_nothing(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    by_status = await _one_job_per_status(job_store)
    for action, status in _REFUSED:
        before = await job_store.find_job(by_status[status].id, None)
        assert before is not None and before.status is status
        with pytest.raises(InvalidTransitionError, match=status.value):
            await job_store.apply_action(before.id, action, audit(f"job.{action.value}"))
        assert await job_store.find_job(before.id, None) == before
    assert await count_rows(store_engine, audit_events) == 0


async def test_a_job_of_another_business_is_left_alone(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    job = await _failed_job(job_store)
    for action in Action:
        outsider = audit(f"job.{action.value}", business_id=OTHER_BUSINESS)
        assert await job_store.apply_action(job.id, action, outsider) is None
        assert await job_store.apply_action("no-such-job", action, audit("job.x")) is None
    assert await job_store.find_job(job.id, BUSINESS) is not None
    assert await count_rows(store_engine, audit_events) == 0


async def test_a_platform_key_acts_on_any_business_and_the_event_names_the_jobs(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    job = await enqueue(job_store, business_id=OTHER_BUSINESS)
    entry = audit("job.cancel", business_id=None)
    assert await job_store.apply_action(job.id, Action.CANCEL, entry) is not None
    query = select(audit_events).where(audit_events.c.job_id == job.id)
    async with store_engine.connect() as conn:
        [event] = (await conn.execute(query)).mappings().all()
    assert event["business_id"] == OTHER_BUSINESS
    assert (event["action"], event["actor_key_id"], event["actor_name"], event["role"]) == (
        "job.cancel",
        "key-1",
        "ops",
        "admin",
    )
    assert event["at"] is not None and event["filter"] is None and event["count"] is None


async def test_an_audit_event_of_its_own_is_appended_with_filter_and_count(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    actor = Principal("key-9", "bulk bot", Role.MANAGER, BUSINESS)
    filter_ = {"status": "failed", "channel": "email"}
    entry = AuditEntry("jobs.bulk_retry", actor, BUSINESS, filter=filter_, count=12)
    await job_store.record_audit(entry)
    async with store_engine.connect() as conn:
        [event] = (await conn.execute(select(audit_events))).mappings().all()
    assert (event["action"], event["business_id"], event["job_id"]) == (
        "jobs.bulk_retry",
        BUSINESS,
        None,
    )
    assert (event["filter"], event["count"], event["role"]) == (filter_, 12, "manager")
    assert list(event["filter"]) == ["status", "channel"]


@pytest.mark.parametrize("job_id", ["\x00", "a\x00b"])
async def test_a_job_id_holding_nul_finds_no_job_and_changes_nothing(
    job_store: SqlJobStore, job_id: str
) -> None:
    # PostgreSQL text cannot hold NUL: no job has such an id, on either backend.
    assert await job_store.find_job(job_id, None) is None
    assert await job_store.apply_action(job_id, Action.CANCEL, audit("job.cancel")) is None
