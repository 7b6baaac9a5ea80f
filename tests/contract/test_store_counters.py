"""The counters and rollups the triggers keep, and the richer /stats built on them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, make_engine, migrate
from commq.adapters.store.engine import make_sync_engine
from commq.adapters.store.migrate import _config
from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.domain.analytics import Bucket, GroupBy, HistoryQuery
from commq.domain.jobs import Channel, ErrorCount
from commq.domain.listing import JobFilter
from commq.domain.transitions import Action

from .operations_support import counts_from_counters, counts_from_jobs, insert_jobs, scalar
from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    claim_one,
    enqueue,
    failed,
    finish,
    new_job,
    now,
    retry_later,
    succeeded,
)


async def test_the_counters_follow_every_change_of_every_job(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    await job_store.enqueue([new_job(channel=Channel.SMS, recipient="+14155550100")] * 3)
    made = [await enqueue(job_store) for _ in range(6)]
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, await claim_one(job_store), succeeded())
    await finish(job_store, await claim_one(job_store), failed())
    await finish(job_store, await claim_one(job_store), retry_later())
    held = await claim_one(job_store)
    assert held.lease_token is not None
    await job_store.release(held.id, held.lease_token)
    await claim_one(job_store)
    await job_store.apply_action(made[5].id, Action.CANCEL, audit("job.cancel"))
    await job_store.apply_action(made[4].id, Action.DELETE, audit("job.delete"))
    await insert_jobs(store_engine, 25, status="failed")
    await operations.apply_bulk(Action.RETRY, JobFilter(BUSINESS), None, audit("jobs.bulk_retry"))
    await insert_jobs(store_engine, 5, status="completed", at=now() - timedelta(days=40))
    await operations.prune_batch(timedelta(days=30), 1000, None)
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)
    await operations.compact()
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)
    assert await scalar(store_engine, "SELECT count(*) FROM job_counts WHERE slot > 0") == 0


async def test_rollups_count_jobs_and_attempts_per_bucket_and_group(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    for _ in range(3):
        await enqueue(job_store)
    await enqueue(job_store, channel=Channel.SMS, recipient="+14155550100")
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, await claim_one(job_store), succeeded(), seconds=1.0)
    await finish(job_store, await claim_one(job_store), retry_later(), seconds=9.0)
    await finish(job_store, await claim_one(job_store), succeeded(), seconds=3.0)
    await finish(job_store, await claim_one(job_store), failed(), seconds=5.0)
    query = HistoryQuery(
        now() - timedelta(hours=1), now() + timedelta(hours=1), Bucket.HOUR, GroupBy.CHANNEL
    )
    sums = await SqlOperationsStore(store_engine).rollup_sums(
        HistoryQuery(query.start, query.end, query.bucket, query.group_by, BUSINESS)
    )
    by_channel: dict[str | None, list[float]] = {}
    for (group, _), f in sums.items():
        totals = by_channel.setdefault(group, [0.0] * 6)
        for i, value in enumerate(
            (
                f.enqueued,
                f.completed,
                f.failed,
                f.succeeded_attempts,
                f.failed_attempts,
                f.duration_ms,
            )
        ):
            totals[i] += value
    # Claims take the highest priority, then the oldest runAt: the three e-mails, then the SMS.
    assert by_channel == {
        "email": [3, 2, 0, 2, 1, 4000],
        "sms": [1, 0, 1, 0, 1, 0],
    }


async def test_history_groups_by_provider_and_error_type(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await enqueue(job_store)
    await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), succeeded())
    await finish(job_store, await claim_one(job_store), failed())
    operations = SqlOperationsStore(store_engine)
    start, end = now() - timedelta(minutes=5), now() + timedelta(minutes=5)
    by_provider = await operations.rollup_sums(
        HistoryQuery(start, end, Bucket.MINUTE, GroupBy.PROVIDER)
    )
    providers = {group for group, _ in by_provider}
    assert providers == {None, "outbox", "smtp"}  # None: enqueued before any attempt
    by_error = await operations.rollup_sums(
        HistoryQuery(start, end, Bucket.DAY, GroupBy.ERROR_TYPE)
    )
    failed_by_type = {group: f.failed for (group, _), f in by_error.items() if f.failed}
    assert failed_by_type == {"permanent": 1}


async def test_stats_give_throughput_failure_rate_breakdowns_and_top_errors(
    job_store: SqlJobStore,
) -> None:
    for _ in range(5):
        await enqueue(job_store)
    await enqueue(job_store, channel=Channel.SMS, recipient="+14155550100")
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, await claim_one(job_store), succeeded())
    await finish(job_store, await claim_one(job_store), succeeded())
    await finish(job_store, await claim_one(job_store), failed("550 mailbox unknown"))
    await finish(job_store, await claim_one(job_store), failed("550 mailbox unknown"))
    await finish(job_store, await claim_one(job_store), retry_later("421 try later"))
    other = await claim_one(job_store, business_id=OTHER_BUSINESS)
    await finish(job_store, other, failed("554 spam"))
    stats = await job_store.stats(BUSINESS)
    assert (stats.completed_last_minute, stats.completed_last_hour) == (2, 2)
    assert stats.failure_rate_last_hour == pytest.approx(3 / 5)
    assert stats.top_errors_last_hour == (
        ErrorCount("550 mailbox unknown", 2),
        ErrorCount("421 try later", 1),
    )
    assert stats.by_channel == {
        "email": {"pending": 1, "processing": 0, "completed": 2, "failed": 2, "cancelled": 0},
        "sms": {"pending": 1, "processing": 0, "completed": 0, "failed": 0, "cancelled": 0},
    }
    assert stats.by_provider["outbox"]["completed"] == 2
    assert stats.by_provider["smtp"] == {
        "pending": 1,
        "processing": 0,
        "completed": 0,
        "failed": 2,
        "cancelled": 0,
    }
    everyone = await job_store.stats(None)
    assert everyone.top_errors_last_hour[0] == ErrorCount("550 mailbox unknown", 2)
    assert ErrorCount("554 spam", 1) in everyone.top_errors_last_hour
    assert everyone.failure_rate_last_hour == pytest.approx(4 / 6)


async def test_an_idle_queue_has_no_rate_and_no_errors(job_store: SqlJobStore) -> None:
    await enqueue(job_store)
    stats = await job_store.stats(BUSINESS)
    assert stats.failure_rate_last_hour is None
    assert stats.top_errors_last_hour == ()
    assert stats.by_provider == {}
    assert (stats.completed_last_minute, stats.completed_last_hour) == (0, 0)


async def test_counters_stay_exact_with_concurrent_workers_and_compaction(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    operations = SqlOperationsStore(store_engine)
    await job_store.enqueue([new_job()] * 300)
    outcomes = [succeeded(), failed(), retry_later()]
    done = asyncio.Event()

    async def worker(n: int) -> None:
        while batch := await job_store.claim(f"worker-{n}", 5, timedelta(seconds=30)):
            for i, job in enumerate(batch):
                await finish(
                    job_store, job, outcomes[(n + i) % 3] if job.attempts < 3 else failed()
                )

    async def compactor() -> None:
        while not done.is_set():
            await operations.compact()
            await asyncio.sleep(0.005)

    folding = asyncio.create_task(compactor())
    await asyncio.gather(*(worker(n) for n in range(4)))
    done.set()
    await folding
    assert await counts_from_counters(store_engine) == await counts_from_jobs(store_engine)
    totals = await SqlOperationsStore(store_engine).rollup_sums(
        HistoryQuery(now() - timedelta(days=1), now() + timedelta(days=1), Bucket.DAY)
    )
    completed = sum(f.completed for f in totals.values())
    failed_jobs = sum(f.failed for f in totals.values())
    assert (completed, failed_jobs) == (
        await scalar(store_engine, "SELECT count(*) FROM jobs WHERE status = 'completed'"),
        await scalar(store_engine, "SELECT count(*) FROM jobs WHERE status = 'failed'"),
    )
    assert completed + failed_jobs == 300


async def test_upgrading_a_database_with_jobs_fills_the_counters_and_the_history(
    empty_database_url: str,
) -> None:
    config = _config()
    sync_engine = make_sync_engine(empty_database_url)
    try:
        with sync_engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
    finally:
        sync_engine.dispose()
    engine = make_engine(empty_database_url)
    try:
        for status in ("completed", "failed", "pending", "completed"):
            await insert_jobs(engine, 4, status=status, at=now() - timedelta(hours=3))
        async with engine.begin() as conn:
            await conn.execute(text(_ATTEMPT_PER_FINISHED_JOB))
        migrate(empty_database_url)
        assert await counts_from_counters(engine) == await counts_from_jobs(engine)
        query = HistoryQuery(now() - timedelta(days=1), now() + timedelta(hours=1), Bucket.HOUR)
        sums = (await SqlOperationsStore(engine).rollup_sums(query)).values()
        totals = [sum(getattr(f, name) for f in sums) for name in _TOTALS]
        assert totals == [16, 8, 4, 8, 4, 8 * 7]
    finally:
        await engine.dispose()


_TOTALS = (
    "enqueued",
    "completed",
    "failed",
    "succeeded_attempts",
    "failed_attempts",
    "duration_ms",
)
_ATTEMPT_PER_FINISHED_JOB = (
    "INSERT INTO attempts (job_id, seq, business_id, attempt, started_at, finished_at,"
    " duration_ms, outcome, error) SELECT id, 1, business_id, 1, updated_at, updated_at, 7,"
    " CASE status WHEN 'completed' THEN 'succeeded' ELSE 'permanent_error' END, last_error"
    " FROM jobs WHERE status IN ('completed', 'failed')"
)
