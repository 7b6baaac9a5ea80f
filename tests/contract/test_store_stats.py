"""Queue statistics, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commq.adapters.store import SqlJobStore
from commq.domain.jobs import QueueStats
from commq.domain.transitions import Action

from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    claim_one,
    enqueue,
    failed,
    finish,
    now,
    report,
    retry_later,
    succeeded,
)


async def test_an_empty_queue_has_zero_counts_and_no_average(job_store: SqlJobStore) -> None:
    assert await job_store.stats(None) == QueueStats()


async def test_counts_follow_each_status(job_store: SqlJobStore) -> None:
    made = [await enqueue(job_store) for _ in range(6)]
    await job_store.apply_action(made[5].id, Action.CANCEL, audit("job.cancel"))
    await finish(job_store, await claim_one(job_store), succeeded())
    await finish(job_store, await claim_one(job_store), failed())
    await claim_one(job_store)
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    stats = await job_store.stats(BUSINESS)
    assert (stats.pending, stats.processing, stats.completed, stats.failed, stats.cancelled) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert (await job_store.stats(None)).pending == 3
    assert (await job_store.stats(OTHER_BUSINESS)).pending == 1


async def test_the_oldest_due_job_gives_the_age_and_scheduled_jobs_do_not_count(
    job_store: SqlJobStore,
) -> None:
    await enqueue(job_store, run_at=now() - timedelta(seconds=60))
    await enqueue(job_store, run_at=now() - timedelta(seconds=10))
    await enqueue(job_store, run_at=now() + timedelta(hours=1))
    await enqueue(job_store, business_id=OTHER_BUSINESS, run_at=now() - timedelta(hours=1))
    stats = await job_store.stats(BUSINESS)
    assert (stats.pending, stats.due, stats.scheduled) == (3, 2, 1)
    assert 59 <= stats.oldest_pending_age_seconds < 70
    assert 3599 <= (await job_store.stats(None)).oldest_pending_age_seconds < 3610


async def test_only_scheduled_jobs_mean_no_pending_age(job_store: SqlJobStore) -> None:
    await enqueue(job_store, run_at=now() + timedelta(minutes=5))
    stats = await job_store.stats(BUSINESS)
    assert (stats.due, stats.scheduled, stats.oldest_pending_age_seconds) == (0, 1, 0.0)


async def test_the_average_covers_successes_of_the_last_hour_only(job_store: SqlJobStore) -> None:
    for seconds in (1.0, 3.0):
        await enqueue(job_store)
        await finish(job_store, await claim_one(job_store), succeeded(), seconds=seconds)
    await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), retry_later(), seconds=30.0)
    await enqueue(job_store)
    old = await claim_one(job_store)
    decision, result = succeeded()
    two_hours_ago = report(result, seconds=50.0, finished=now() - timedelta(hours=2))
    assert old.lease_token is not None
    assert await job_store.record_result(old, old.lease_token, decision, two_hours_ago)
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    other = await claim_one(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, other, succeeded(), seconds=9.0)
    assert (await job_store.stats(BUSINESS)).avg_processing_time_seconds == pytest.approx(2.0)
    assert (await job_store.stats(None)).avg_processing_time_seconds == pytest.approx(13 / 3)
