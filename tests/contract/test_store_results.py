"""What workers write back: results, releases, lost leases, fencing and history."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.claims import LEASE_LOST_ERROR
from commq.adapters.store.tables import attempts, jobs
from commq.application.ports import AttemptReport, WorkerResult
from commq.domain.jobs import AttemptOutcome, ErrorType, JobStatus
from commq.domain.outcomes import Blame, Decision, SendOutcome, SendResult
from commq.domain.transitions import Action

from .operations_support import counts_from_counters, counts_from_jobs
from .support import (
    BUSINESS,
    audit,
    claim_one,
    count_rows,
    enqueue,
    failed,
    finish,
    now,
    report,
    reread,
    retry_later,
    sqlalchemy_calls,
    succeeded,
)

TINY_LEASE = timedelta(seconds=0.05)
LEASE_5 = timedelta(minutes=5)


async def test_success_completes_the_job_and_clears_the_last_error(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    assert await finish(job_store, await claim_one(job_store), retry_later("421 busy"))
    claimed = await claim_one(job_store)
    assert await finish(job_store, claimed, succeeded(), seconds=2.5)
    done = await reread(job_store, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.completed_at is not None
    assert (done.provider, done.provider_message_id) == ("outbox", "msg-1")
    assert (done.last_error, done.error_type) == (None, None)
    assert (done.lease_token, done.lease_expires_at) == (None, None)
    assert done.attempts == 2
    history = (await job_store.history([job.id]))[job.id]
    assert [(a.seq, a.attempt, a.outcome) for a in history] == [
        (1, 1, AttemptOutcome.TRANSIENT_ERROR),
        (2, 2, AttemptOutcome.SUCCEEDED),
    ]
    assert history[0].error == "421 busy"
    assert history[1].duration_ms == 2500
    assert history[1].provider_message_id == "msg-1"
    finished_at = history[1].finished_at
    assert finished_at and finished_at - history[1].started_at == timedelta(seconds=2.5)


async def test_a_permanent_failure_fails_the_job(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    assert await finish(job_store, await claim_one(job_store), failed("550 no such user"))
    gone = await reread(job_store, job.id)
    assert gone.status is JobStatus.FAILED
    assert gone.failed_at is not None
    assert (gone.last_error, gone.error_type) == ("550 no such user", ErrorType.PERMANENT)
    assert gone.lease_token is None


async def test_a_transient_failure_is_due_again_after_its_delay(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    before = now()
    outcome = retry_later("timeout", timedelta(minutes=10))
    assert await finish(job_store, await claim_one(job_store), outcome)
    waiting = await reread(job_store, job.id)
    assert waiting.status is JobStatus.PENDING
    assert (waiting.last_error, waiting.error_type) == ("timeout", ErrorType.TRANSIENT)
    assert before + timedelta(minutes=9) < waiting.run_at < now() + timedelta(minutes=11)
    assert await job_store.claim("w", 5, timedelta(seconds=5)) == []


async def test_a_released_job_is_pending_again_without_an_attempt(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    claimed = await claim_one(job_store)
    assert claimed.lease_token
    assert not await job_store.release(job.id, "someone-else")
    assert await job_store.release(job.id, claimed.lease_token)
    back = await reread(job_store, job.id)
    assert (back.status, back.attempts, back.lease_token) == (JobStatus.PENDING, 0, None)
    assert (await job_store.history([job.id]))[job.id] == []
    assert not await job_store.release(job.id, claimed.lease_token)


async def test_an_expired_lease_is_reclaimed_as_a_lost_attempt(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    await claim_one(job_store, lease=TINY_LEASE)
    await enqueue(job_store)
    await claim_one(job_store, lease=LEASE_5)  # still held: not reclaimed
    await asyncio.sleep(0.1)
    assert await job_store.reclaim_expired() == 1
    back = await reread(job_store, job.id)
    assert (back.status, back.attempts, back.lease_token) == (JobStatus.PENDING, 1, None)
    assert back.run_at <= now() + timedelta(seconds=1)
    assert (back.last_error, back.error_type) == (LEASE_LOST_ERROR, ErrorType.AMBIGUOUS)
    [lost] = (await job_store.history([job.id]))[job.id]
    assert (lost.seq, lost.attempt, lost.outcome) == (1, 1, AttemptOutcome.LOST)
    assert lost.error == LEASE_LOST_ERROR
    assert await job_store.reclaim_expired() == 0


async def test_a_lost_last_attempt_fails_the_job_as_ambiguous(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store, max_attempts=1)
    await claim_one(job_store, lease=TINY_LEASE)
    await asyncio.sleep(0.1)
    assert await job_store.reclaim_expired() == 1
    gone = await reread(job_store, job.id)
    assert gone.status is JobStatus.FAILED
    assert gone.failed_at is not None
    assert (gone.last_error, gone.error_type) == (LEASE_LOST_ERROR, ErrorType.AMBIGUOUS)


async def test_a_stale_worker_cannot_write_over_a_reclaimed_job(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    job = await enqueue(job_store)
    stale = await claim_one(job_store, lease=TINY_LEASE)
    await asyncio.sleep(0.1)
    assert await job_store.reclaim_expired() == 1
    current = await claim_one(job_store, lease=LEASE_5)
    assert current.lease_token != stale.lease_token
    assert not await finish(job_store, stale, succeeded())
    assert not await job_store.release(job.id, stale.lease_token or "")
    assert await job_store.extend_leases([(job.id, stale.lease_token or "")], LEASE_5) == set()
    assert await job_store.find_job(job.id, BUSINESS) == current
    assert await count_rows(store_engine, attempts, job_id=job.id) == 1  # only the lost one
    assert await finish(job_store, current, succeeded())


async def test_concurrent_reclaimers_reclaim_each_lease_once(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    for _ in range(20):
        await enqueue(job_store)
    await job_store.claim("w", 20, TINY_LEASE)
    await asyncio.sleep(0.1)
    counts = await asyncio.gather(*(job_store.reclaim_expired() for _ in range(4)))
    assert sum(counts) == 20
    assert await count_rows(store_engine, attempts, outcome="lost") == 20


async def test_attempt_seq_keeps_counting_across_a_manual_retry(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store, max_attempts=2)
    await finish(job_store, await claim_one(job_store), retry_later())
    await finish(job_store, await claim_one(job_store), failed())
    await job_store.apply_action(job.id, Action.RETRY, audit("job.retry"))
    await finish(job_store, await claim_one(job_store), succeeded())
    history = await job_store.history([job.id, "no-such-job"])
    assert history["no-such-job"] == []
    assert [(a.seq, a.attempt) for a in history[job.id]] == [(1, 1), (2, 2), (3, 1)]


async def test_a_provider_failure_gives_its_attempt_back(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    decision, result = retry_later("503 from the provider")
    uncounted = (replace(decision, counts_attempt=False), result)
    for _ in range(5):
        assert await finish(job_store, await claim_one(job_store), uncounted)
    waiting = await reread(job_store, job.id)
    assert waiting.status is JobStatus.PENDING
    assert waiting.attempts == 0
    history = (await job_store.history([job.id]))[job.id]
    assert [a.seq for a in history] == [1, 2, 3, 4, 5]


async def test_a_batch_of_results_applies_each_decision_and_refuses_only_stale_leases(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    for _ in range(5):
        await enqueue(job_store)
    claimed = await job_store.claim("worker-1", 5, LEASE_5)
    done, dead, later, outage, stale = claimed
    assert stale.lease_token is not None
    await job_store.release(stale.id, stale.lease_token)  # someone else has it now
    provider_down = SendResult(SendOutcome.TRANSIENT, "smtp", error="503", blame=Blame.PROVIDER)
    outage_decision = Decision(
        JobStatus.PENDING,
        AttemptOutcome.TRANSIENT_ERROR,
        ErrorType.TRANSIENT,
        "503",
        timedelta(minutes=10),
        counts_attempt=False,
    )
    batch = [
        (done, succeeded()),
        (dead, failed()),
        (later, retry_later(retry_in=timedelta(hours=1))),
        (outage, (outage_decision, provider_down)),
        (stale, succeeded()),
    ]
    recorded = await job_store.record_results(
        [
            WorkerResult(job, job.lease_token or "", decision, report(result, 2.0))
            for job, (decision, result) in batch
        ]
    )

    assert recorded == [True, True, True, True, False]
    completed, failed_job, waiting, outage_job, untouched = [
        await reread(job_store, job.id) for job in claimed
    ]
    assert completed.status is JobStatus.COMPLETED and completed.completed_at is not None
    assert (completed.provider_message_id, completed.last_error) == ("msg-1", None)
    assert failed_job.status is JobStatus.FAILED and failed_job.failed_at is not None
    assert failed_job.error_type is ErrorType.PERMANENT
    assert waiting.status is JobStatus.PENDING and waiting.attempts == 1
    assert waiting.run_at - now() > timedelta(minutes=59)
    assert outage_job.status is JobStatus.PENDING and outage_job.attempts == 0
    assert timedelta(minutes=9) < outage_job.run_at - now() <= timedelta(minutes=10)
    assert untouched.status is JobStatus.PENDING and untouched.completed_at is None
    for job in (completed, failed_job, waiting, outage_job):
        assert (job.lease_token, job.lease_expires_at) == (None, None)
    histories = await job_store.history([job.id for job in claimed])
    assert [a.outcome for a in histories[done.id]] == [AttemptOutcome.SUCCEEDED]
    assert histories[done.id][0].duration_ms == 2000
    assert [a.outcome for a in histories[dead.id]] == [AttemptOutcome.PERMANENT_ERROR]
    assert [a.outcome for a in histories[outage.id]] == [AttemptOutcome.TRANSIENT_ERROR]
    assert histories[outage.id][0].error == "503"
    assert histories[stale.id] == []
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)


async def test_an_empty_batch_of_results_writes_nothing(job_store: SqlJobStore) -> None:
    assert await job_store.record_results([]) == []


async def test_a_batch_is_recorded_on_the_driver_without_sqlalchemys_transactions(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    for _ in range(3):
        await enqueue(job_store)
    claimed = await job_store.claim("worker-1", 3, LEASE_5)
    with sqlalchemy_calls(store_engine) as through_sqlalchemy:
        recorded = await job_store.record_results(
            [WorkerResult(job, job.lease_token or "", *_ok(2.0)) for job in claimed]
        )
    assert recorded == [True, True, True]
    # PostgreSQL: one autocommit statement updates the jobs and appends their attempts
    # (BEGIN and COMMIT would be two more round trips). SQLite: one write transaction
    # run on aiosqlite's connection itself, a trip to its thread per statement.
    assert through_sqlalchemy == []
    histories = await job_store.history([job.id for job in claimed])
    assert all([a.outcome for a in h] == [AttemptOutcome.SUCCEEDED] for h in histories.values())
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)


async def test_results_whose_attempts_cannot_be_appended_leave_their_jobs_held(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    first, second = await enqueue(job_store), await enqueue(job_store)
    claimed = await job_store.claim("worker-1", 2, LEASE_5)
    async with store_engine.begin() as conn:
        # The attempt row the second job's result would append exists already, so the
        # jobs' UPDATE succeeds and the attempts' INSERT fails after it.
        seq = (await conn.execute(select(jobs.c.seq).where(jobs.c.id == second.id))).scalar()
        await conn.execute(
            attempts.insert().values(
                job_id=second.id,
                seq=seq + 1,
                business_id=BUSINESS,
                attempt=1,
                started_at=now(),
                outcome=AttemptOutcome.SUCCEEDED.value,
            )
        )
    with pytest.raises(DBAPIError):
        await job_store.record_results(
            [WorkerResult(job, job.lease_token or "", *_ok(1.0)) for job in claimed]
        )
    # All or nothing: neither job was moved on, and the next write goes through.
    for job in claimed:
        held = await reread(job_store, job.id)
        assert (held.status, held.lease_token) == (JobStatus.PROCESSING, job.lease_token)
    assert (await job_store.history([first.id]))[first.id] == []
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)
    by_id = {job.id: job for job in claimed}
    assert await finish(job_store, by_id[first.id], succeeded())
    assert (await reread(job_store, first.id)).status is JobStatus.COMPLETED


def _ok(seconds: float) -> tuple[Decision, AttemptReport]:
    decision, result = succeeded()
    return decision, report(result, seconds)


async def test_a_batch_the_database_refuses_is_an_error_and_the_store_goes_on(
    job_store: SqlJobStore,
) -> None:
    job = await enqueue(job_store)
    claimed = await claim_one(job_store)
    # Due again in 2.7 million years: past the last time either database can store.
    never = Decision(
        JobStatus.PENDING,
        AttemptOutcome.TRANSIENT_ERROR,
        ErrorType.TRANSIENT,
        "later",
        timedelta(days=999_999_999),
    )
    _, result = retry_later()
    with pytest.raises(DBAPIError):
        await job_store.record_results(
            [WorkerResult(claimed, claimed.lease_token or "", never, report(result))]
        )
    # All or nothing: the job is still held, with no attempt written...
    held = await reread(job_store, job.id)
    assert (held.status, held.lease_token) == (JobStatus.PROCESSING, claimed.lease_token)
    assert (await job_store.history([job.id]))[job.id] == []
    # ...and the next write, on the same connections, goes through.
    assert await finish(job_store, claimed, succeeded())
    assert (await reread(job_store, job.id)).status is JobStatus.COMPLETED
