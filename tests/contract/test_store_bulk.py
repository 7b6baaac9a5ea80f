"""Bulk retry and cancel by filter, in chunks, on every backend."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import LocalWakeup, SqlJobStore
from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.adapters.store.tables import audit_events
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.domain.jobs import Channel, ErrorType, Job, JobStatus, NewJob
from commq.domain.listing import JobFilter
from commq.domain.operations import CHUNK_SIZE
from commq.domain.outcomes import SendResult
from commq.domain.retry import RetryPolicy
from commq.domain.transitions import Action
from commq.entrypoints.bootstrap import SystemClock

from .operations_support import insert_jobs, scalar
from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    claim_one,
    enqueue,
    failed,
    finish,
    now,
    reread,
)

ACME = JobFilter(business_id=BUSINESS)


async def _failed(store: SqlJobStore, **fields: object) -> Job:
    job = await enqueue(store, **fields)
    claimed = await claim_one(store, business_id=job.business_id)
    await finish(store, claimed, failed())
    return await reread(store, job.id)


async def test_bulk_retry_changes_exactly_the_matching_failed_jobs(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    email = await _failed(job_store)
    sms = await _failed(job_store, channel=Channel.SMS, recipient="+14155550100")
    pending = await enqueue(job_store)
    where = JobFilter(business_id=BUSINESS, channel=Channel.EMAIL)
    assert await operations.count_bulk(Action.RETRY, where, None) == 1
    assert await operations.apply_bulk(Action.RETRY, where, None, audit("jobs.bulk_retry")) == 1
    retried = await reread(job_store, email.id)
    assert (retried.status, retried.attempts, retried.last_error) == (JobStatus.PENDING, 0, None)
    assert (retried.error_type, retried.failed_at) == (None, None)
    assert retried.run_at <= now()
    assert (await reread(job_store, sms.id)).status is JobStatus.FAILED
    assert (await reread(job_store, pending.id)).status is JobStatus.PENDING


async def test_a_bulk_retry_never_touches_another_business(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    ours = await _failed(job_store)
    theirs = await _failed(job_store, business_id=OTHER_BUSINESS)
    await insert_jobs(store_engine, 30, business=OTHER_BUSINESS)
    by_filter = await operations.apply_bulk(Action.RETRY, ACME, None, audit("jobs.bulk_retry"))
    by_ids = await operations.apply_bulk(
        Action.RETRY, ACME, [theirs.id, ours.id], audit("jobs.bulk_retry")
    )
    assert (by_filter, by_ids) == (1, 0)
    assert (await reread(job_store, theirs.id)).status is JobStatus.FAILED
    still_failed = "SELECT count(*) FROM jobs WHERE business_id = :b AND status = 'failed'"
    assert await scalar(store_engine, still_failed, b=OTHER_BUSINESS) == 31


async def test_named_ids_change_only_those_still_in_the_right_status(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    first, second = await _failed(job_store), await _failed(job_store)
    claimed = await _failed(job_store)
    await job_store.apply_action(claimed.id, Action.RETRY, audit("job.retry"))
    await claim_one(job_store)  # a worker holds it now
    ids = [first.id, claimed.id, "no-such-job"]
    assert await operations.count_bulk(Action.RETRY, ACME, ids) == 1
    assert await operations.apply_bulk(Action.RETRY, ACME, ids, audit("jobs.bulk_retry")) == 1
    assert (await reread(job_store, claimed.id)).status is JobStatus.PROCESSING
    assert (await reread(job_store, second.id)).status is JobStatus.FAILED


async def test_a_dry_run_only_counts(job_store: SqlJobStore, store_engine: AsyncEngine) -> None:
    operations = SqlOperationsStore(store_engine)
    await insert_jobs(store_engine, 7)
    assert await operations.count_bulk(Action.RETRY, ACME, None) == 7
    where = JobFilter(business_id=BUSINESS, error_type=ErrorType.TRANSIENT)
    assert await operations.count_bulk(Action.RETRY, where, None) == 0
    assert await scalar(store_engine, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 7


async def test_bulk_cancel_takes_due_and_scheduled_pending_jobs(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    done = await _failed(job_store, communication_id="promo")
    due = await enqueue(job_store, communication_id="promo")
    later = await enqueue(job_store, communication_id="promo", run_at=now() + timedelta(days=1))
    other = await enqueue(job_store, communication_id="receipt")
    where = JobFilter(business_id=BUSINESS, communication_id="promo")
    assert await operations.apply_bulk(Action.CANCEL, where, None, audit("jobs.bulk_cancel")) == 2
    for job in (due, later):
        cancelled = await reread(job_store, job.id)
        assert cancelled.status is JobStatus.CANCELLED and cancelled.cancelled_at is not None
    assert (await reread(job_store, other.id)).status is JobStatus.PENDING
    assert (await reread(job_store, done.id)).status is JobStatus.FAILED


async def test_chunks_cover_every_job_and_one_audit_event_holds_filter_and_count(
    store_engine: AsyncEngine,
) -> None:
    operations = SqlOperationsStore(store_engine)
    total = 2 * CHUNK_SIZE + 17
    await insert_jobs(store_engine, total)
    entry = audit("jobs.bulk_retry")
    entry = type(entry)(entry.action, entry.actor, BUSINESS, filter={"errorType": "permanent"})
    where = JobFilter(business_id=BUSINESS, error_type=ErrorType.PERMANENT)
    assert await operations.apply_bulk(Action.RETRY, where, None, entry) == total
    assert await scalar(store_engine, "SELECT count(*) FROM jobs WHERE status = 'pending'") == total
    async with store_engine.connect() as conn:
        events = (await conn.execute(select(audit_events))).mappings().all()
    assert [(e["action"], e["filter"], e["count"], e["business_id"]) for e in events] == [
        ("jobs.bulk_retry", {"errorType": "permanent"}, total, BUSINESS)
    ]


class _QuickSender:
    """Succeeds at once and notes when each job was sent."""

    name = "quick"

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}

    async def send(self, job: Job) -> SendResult:
        self.sent_at[job.id] = time.monotonic()
        return SendResult.ok(self.name, job.id)

    async def close(self) -> None:
        return None


async def test_a_bulk_retry_of_100000_jobs_finishes_while_a_worker_keeps_sending(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await insert_jobs(store_engine, 100_000, at=now() - timedelta(hours=1))
    others = [
        NewJob(OTHER_BUSINESS, Channel.EMAIL, "bo@example.com", {"subject": "s", "text": "t"})
    ]
    other_ids = {e.job.id for e in await job_store.enqueue(others * 1000)}
    sender = _QuickSender()
    dispatcher = Dispatcher(
        store=job_store,
        senders={channel: sender for channel in Channel},
        wakeup=LocalWakeup(),
        clock=SystemClock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(concurrency=4, batch_size=4, poll_interval=0.02),
        worker_id="busy-worker",
    )
    # The worker sends the other business's jobs only, so the bulk's own jobs stay put.
    worker = asyncio.create_task(dispatcher.drain(OTHER_BUSINESS))
    await asyncio.sleep(0.2)  # the worker is under way
    started = time.monotonic()
    retried = await SqlOperationsStore(store_engine).apply_bulk(
        Action.RETRY, ACME, None, audit("jobs.bulk_retry")
    )
    finished = time.monotonic()
    await worker
    assert retried == 100_000
    during = [at for job_id, at in sender.sent_at.items() if started <= at <= finished]
    assert len(during) >= 20, f"only {len(during)} sends in {finished - started:.1f}s of bulk retry"
    assert set(sender.sent_at) == other_ids
    assert await scalar(store_engine, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 0


async def test_on_sqlite_a_bulk_action_leaves_the_database_free_between_chunks(
    store_engine: AsyncEngine,
) -> None:
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    operations = SqlOperationsStore(store_engine, pause=pause)
    await insert_jobs(store_engine, 2 * CHUNK_SIZE + 17)
    where = JobFilter(business_id=BUSINESS)
    assert await operations.apply_bulk(Action.RETRY, where, None, audit("jobs.bulk_retry")) > 0
    if store_engine.dialect.name == "sqlite":
        # After each full chunk, half as long as it held the single write lock: a worker
        # in another process, polling from SQLite's busy handler, finds it free between.
        assert len(pauses) == 2 and all(0 < p < 5 for p in pauses)
    else:
        assert pauses == []  # PostgreSQL's workers write alongside the chunks
