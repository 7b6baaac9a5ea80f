"""Enqueue, find and idempotency, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, make_engine
from commq.adapters.store.tables import jobs
from commq.domain.jobs import Channel, JobStatus

from .support import BUSINESS, OTHER_BUSINESS, count_rows, enqueue, new_job, now, reread


async def test_an_enqueued_job_is_stored_pending_and_found_as_it_was_given(
    job_store: SqlJobStore,
) -> None:
    payload = {"subject": "Hi", "text": "b", "headers": {"Z-Last": "1", "A-First": "2"}}
    before = now() - timedelta(seconds=5)
    [stored] = await job_store.enqueue(
        [new_job(payload=payload, communication_id="c-1", priority=3, max_attempts=5)]
    )
    assert stored.created
    job = await reread(job_store, stored.job.id)
    assert job == await job_store.find_job(job.id, BUSINESS)
    assert job == stored.job
    assert job.status is JobStatus.PENDING
    assert (job.attempts, job.max_attempts, job.priority) == (0, 5, 3)
    assert job.communication_id == "c-1"
    assert list(job.payload["headers"]) == ["Z-Last", "A-First"]  # key order kept
    assert job.payload == payload
    # run_at None means the database's now, which also stamps created/updated.
    assert job.run_at == job.created_at == job.updated_at
    assert before < job.created_at < now() + timedelta(seconds=5)
    assert job.created_at.tzinfo is not None and job.created_at.utcoffset() == timedelta(0)


async def test_a_given_run_at_is_kept_to_the_microsecond(job_store: SqlJobStore) -> None:
    later = now() + timedelta(hours=2)
    job = await enqueue(job_store, run_at=later)
    assert job.run_at == later
    assert (await reread(job_store, job.id)).run_at == later


async def test_a_job_of_another_business_is_not_found(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    assert await job_store.find_job(job.id, OTHER_BUSINESS) is None
    assert await job_store.find_job(job.id, None) == job
    assert await job_store.find_job("no-such-id", None) is None


async def test_an_idempotency_key_seen_before_returns_the_existing_job(
    job_store: SqlJobStore,
) -> None:
    first = await enqueue(job_store, idempotency_key="order-1")
    [again] = await job_store.enqueue(
        [new_job(idempotency_key="order-1", recipient="someone@else.com")]
    )
    assert not again.created
    assert again.job == first
    # The same key in another business is another job.
    [other] = await job_store.enqueue(
        [new_job(business_id=OTHER_BUSINESS, idempotency_key="order-1")]
    )
    assert other.created and other.job.id != first.id


async def test_a_batch_keeps_its_order_and_replays_known_keys_in_place(
    job_store: SqlJobStore,
) -> None:
    known = await enqueue(job_store, idempotency_key="k-2")
    batch = [
        new_job(recipient="1@example.com", idempotency_key="k-1"),
        new_job(recipient="2@example.com", idempotency_key="k-2"),
        new_job(recipient="3@example.com"),
        new_job(recipient="4@example.com", idempotency_key="k-1"),
    ]
    results = await job_store.enqueue(batch)
    assert [r.created for r in results] == [True, False, True, False]
    assert results[1].job == known
    assert results[3].job == results[0].job
    assert [r.job.recipient for r in results] == [
        "1@example.com",
        "ana@example.com",
        "3@example.com",
        "1@example.com",
    ]


async def test_a_batch_is_stored_all_or_nothing(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    bad = new_job(recipient=None)  # NOT NULL: the database refuses the whole batch
    with pytest.raises(IntegrityError):
        await job_store.enqueue([new_job(), new_job(), bad])
    assert await count_rows(store_engine, jobs) == 0


async def test_concurrent_enqueues_with_one_key_store_one_job(
    job_store: SqlJobStore, database_url: str, store_engine: AsyncEngine
) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    try:
        stores = [SqlJobStore(engine) for engine in engines]
        results = await asyncio.gather(
            *(stores[i % 4].enqueue([new_job(idempotency_key="same")]) for i in range(20))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    ids = {result.job.id for [result] in results}
    assert len(ids) == 1
    assert sum(result.created for [result] in results) == 1
    assert await count_rows(store_engine, jobs) == 1


async def test_an_empty_batch_stores_nothing(job_store: SqlJobStore) -> None:
    assert await job_store.enqueue([]) == []


async def test_every_channel_round_trips(job_store: SqlJobStore) -> None:
    for channel in Channel:
        job = await enqueue(job_store, channel=channel, payload={"body": {"n": [1, 2.5, None]}})
        assert (await reread(job_store, job.id)).channel is channel
        assert job.payload == {"body": {"n": [1, 2.5, None]}}


async def test_a_naive_time_is_refused_rather_than_guessed(job_store: SqlJobStore) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await enqueue(job_store, run_at=now().replace(tzinfo=None))
