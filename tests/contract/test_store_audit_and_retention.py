"""The audit trail's listing and append-only rule, and retention, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.domain.analytics import Bucket, HistoryQuery
from commq.domain.audit import AuditEntry, Principal
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import JobStatus
from commq.domain.operations import AuditFilter
from commq.domain.permissions import Role
from commq.domain.transitions import Action

from .operations_support import insert_jobs, scalar
from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    enqueue,
    now,
    reread,
)


async def _record(store: SqlJobStore, action: str, business: str | None, **fields: object) -> None:
    actor = Principal(f"key-{action}", f"name-{business}", Role.ADMIN, business)
    await store.record_audit(AuditEntry(action, actor, business, **fields))  # type: ignore[arg-type]


async def test_the_audit_trail_lists_newest_first_in_pages(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    for n in range(5):
        await _record(job_store, f"step.{n}", BUSINESS)
    first = await operations.list_audit(AuditFilter(), 2, None)
    assert [e.action for e in first.items] == ["step.4", "step.3"]
    assert first.next_cursor is not None
    second = await operations.list_audit(AuditFilter(), 2, first.next_cursor)
    third = await operations.list_audit(AuditFilter(), 2, second.next_cursor)
    assert [e.action for e in second.items + third.items] == ["step.2", "step.1", "step.0"]
    assert third.next_cursor is None


async def test_audit_filters_narrow_by_business_action_actor_job_and_time(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    job = await enqueue(job_store)
    await job_store.apply_action(job.id, Action.CANCEL, audit("job.cancel"))
    await _record(job_store, "queue.process_now", OTHER_BUSINESS)
    await _record(job_store, "jobs.bulk_retry", None, filter={"channel": "sms"}, count=3)

    async def actions(**where: object) -> list[str]:
        page = await operations.list_audit(AuditFilter(**where), 50, None)  # type: ignore[arg-type]
        return [e.action for e in page.items]

    assert await actions(business_id=BUSINESS) == ["job.cancel"]
    assert await actions(action="jobs.bulk_retry") == ["jobs.bulk_retry"]
    assert await actions(actor_key_id="key-queue.process_now") == ["queue.process_now"]
    assert await actions(actor_name="ops") == ["job.cancel"]
    assert await actions(job_id=job.id) == ["job.cancel"]
    assert await actions(at_from=now() + timedelta(minutes=1)) == []
    assert (
        len(await actions(at_from=now() - timedelta(minutes=1), at_to=now() + timedelta(minutes=1)))
        == 3
    )
    [bulk] = (await operations.list_audit(AuditFilter(action="jobs.bulk_retry"), 5, None)).items
    assert (bulk.filter, bulk.count, bulk.business_id, bulk.job_id) == (
        {"channel": "sms"},
        3,
        None,
        None,
    )


@pytest.mark.parametrize(
    "cursor", ["nope", "eyJhdWRpdCI6IDF9", "eyJvIjoibmV3ZXN0IiwiayI6WyJ4Il19", "%%%"]
)
async def test_a_cursor_the_audit_listing_did_not_issue_is_refused(
    store_engine: AsyncEngine, cursor: str
) -> None:
    with pytest.raises(InvalidCursorError):
        await SqlOperationsStore(store_engine).list_audit(AuditFilter(), 10, cursor)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"]
)
async def test_audit_events_cannot_be_changed_or_deleted(
    job_store: SqlJobStore, store_engine: AsyncEngine, statement: str
) -> None:
    await _record(job_store, "job.delete", BUSINESS)
    with pytest.raises(DBAPIError, match="append-only"):
        async with store_engine.begin() as conn:
            await conn.execute(text(statement))
    assert await scalar(store_engine, "SELECT action FROM audit_events") == "job.delete"


async def test_pruning_deletes_only_old_completed_and_cancelled_jobs(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    old = now() - timedelta(days=40)
    for status in ("completed", "cancelled", "failed", "pending"):
        await insert_jobs(store_engine, 3, status=status, at=old)
    await insert_jobs(store_engine, 2, status="completed", at=now() - timedelta(days=10))
    fresh = await enqueue(job_store)
    await _record(job_store, "job.delete", BUSINESS)
    batch = await operations.prune_batch(timedelta(days=30), 1000, None)
    assert (batch.deleted, batch.next_after) == (6, None)
    left = "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status"
    async with store_engine.connect() as conn:
        rows = {status: n for status, n in await conn.execute(text(left))}
    assert rows == {"completed": 2, "failed": 3, "pending": 4}
    assert (await reread(job_store, fresh.id)).status is JobStatus.PENDING
    assert await scalar(store_engine, "SELECT count(*) FROM audit_events") == 1


async def test_pruning_goes_in_batches_and_takes_the_attempts_but_not_the_history(
    store_engine: AsyncEngine,
) -> None:
    operations = SqlOperationsStore(store_engine)
    two_days_ago = now() - timedelta(days=2)
    await insert_jobs(store_engine, 3, status="completed", at=two_days_ago)
    await insert_jobs(store_engine, 1, status="failed", at=two_days_ago)
    await _one_attempt_each(store_engine)
    before = await _history_totals(operations)
    assert before == (4, 3, 1)
    batch = await operations.prune_batch(timedelta(days=1), 2, None)
    assert batch.deleted == 2 and batch.next_after is not None
    rest = await operations.prune_batch(timedelta(days=1), 2, batch.next_after)
    assert (rest.deleted, rest.next_after) == (1, None)
    assert await scalar(store_engine, "SELECT count(*) FROM attempts") == 1  # the failed job's
    assert await _history_totals(operations) == before


async def _one_attempt_each(engine: AsyncEngine) -> None:
    outcome = "CASE status WHEN 'completed' THEN 'succeeded' ELSE 'permanent_error' END"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO attempts (job_id, seq, business_id, attempt, started_at,"
                f" finished_at, duration_ms, outcome) SELECT id, 1, business_id, 1, updated_at,"
                f" updated_at, 5, {outcome} FROM jobs"
            )
        )


async def _history_totals(operations: SqlOperationsStore) -> tuple[float, float, float]:
    query = HistoryQuery(now() - timedelta(days=3), now() + timedelta(days=1), Bucket.DAY)
    sums = (await operations.rollup_sums(query)).values()
    return (
        sum(f.enqueued for f in sums),
        sum(f.completed for f in sums),
        sum(f.failed for f in sums),
    )
