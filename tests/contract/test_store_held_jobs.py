"""A worker's changes to a job it holds besides its result, and claims that pass channels over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.held_jobs import SqlHeldJobStore
from commq.domain.jobs import AttemptOutcome, Channel, ErrorType, JobStatus
from commq.domain.outcomes import Blame, SendOutcome, SendResult

from .support import LEASE, claim_one, enqueue, finish, report, reread, succeeded


async def test_claims_pass_over_the_channels_asked_to(job_store: SqlJobStore) -> None:
    email = await enqueue(job_store)
    sms = await enqueue(job_store, channel=Channel.SMS, recipient="+14155550100")
    claimed = await job_store.claim("w", 10, LEASE, skip_channels={Channel.EMAIL})
    assert [job.id for job in claimed] == [sms.id]
    assert (await reread(job_store, email.id)).status is JobStatus.PENDING


async def test_a_faulted_attempt_joins_the_history_and_the_claim_holds(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    held = SqlHeldJobStore(store_engine)
    await enqueue(job_store)
    job = await claim_one(job_store)
    assert job.lease_token is not None
    fault = SendResult(SendOutcome.TRANSIENT, "sendgrid", error="503", blame=Blame.PROVIDER)
    assert await held.record_attempt(
        job, job.lease_token, AttemptOutcome.TRANSIENT_ERROR, report(fault)
    )
    assert await finish(job_store, job, succeeded())
    history = (await job_store.history([job.id]))[job.id]
    assert [(a.seq, a.attempt, a.outcome, a.provider) for a in history] == [
        (1, 1, AttemptOutcome.TRANSIENT_ERROR, "sendgrid"),
        (2, 1, AttemptOutcome.SUCCEEDED, "outbox"),
    ]
    done = await reread(job_store, job.id)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1


async def test_a_deferred_job_is_pending_later_with_its_attempt_given_back(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    held = SqlHeldJobStore(store_engine)
    await enqueue(job_store)
    job = await claim_one(job_store)
    reason = "waiting: every email provider is unavailable (sendgrid)"
    assert await held.defer(job.id, job.lease_token or "", timedelta(seconds=60), reason)
    waiting = await reread(job_store, job.id)
    assert waiting.status is JobStatus.PENDING and waiting.attempts == 0
    assert waiting.last_error == reason and waiting.lease_token is None
    assert waiting.run_at - job.started_at > timedelta(seconds=55)  # type: ignore[operator]
    assert await job_store.claim("w", 10, LEASE) == []
    assert (await job_store.history([job.id]))[job.id] == []


async def test_a_job_failed_unsent_is_permanent_without_an_attempt(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    held = SqlHeldJobStore(store_engine)
    await enqueue(job_store)
    job = await claim_one(job_store)
    error = "recipient is suppressed: hard bounce on 2026-05-01"
    assert await held.fail_unsent(job.id, job.lease_token or "", error)
    failed = await reread(job_store, job.id)
    assert failed.status is JobStatus.FAILED and failed.error_type is ErrorType.PERMANENT
    assert failed.last_error == error and failed.attempts == 0 and failed.failed_at is not None


async def test_a_stale_lease_changes_nothing(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    held = SqlHeldJobStore(store_engine)
    await enqueue(job_store)
    job = await claim_one(job_store)
    ok = SendResult.ok("smtp")
    assert not await held.record_attempt(job, "stolen", AttemptOutcome.SUCCEEDED, report(ok))
    assert not await held.defer(job.id, "stolen", timedelta(0), "x")
    assert not await held.fail_unsent(job.id, "stolen", "x")
    assert (await reread(job_store, job.id)).status is JobStatus.PROCESSING
