"""Claiming: order, schedule, scope, leases and exactly-once under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, make_engine
from commq.domain.jobs import JobStatus

from .support import (
    BUSINESS,
    LEASE,
    OTHER_BUSINESS,
    claim_one,
    enqueue,
    finish,
    new_job,
    now,
    reread,
    retry_later,
)


async def test_claim_takes_highest_priority_then_oldest_run_at(job_store: SqlJobStore) -> None:
    t = now()
    low_old = await enqueue(job_store, priority=0, run_at=t - timedelta(minutes=9))
    high_new = await enqueue(job_store, priority=5, run_at=t - timedelta(minutes=1))
    high_old = await enqueue(job_store, priority=5, run_at=t - timedelta(minutes=2))
    mid = await enqueue(job_store, priority=1, run_at=t - timedelta(minutes=5))
    first = await job_store.claim("w", 2, LEASE)
    rest = await job_store.claim("w", 10, LEASE)
    assert [j.id for j in first] == [high_old.id, high_new.id]
    assert [j.id for j in rest] == [mid.id, low_old.id]


async def test_a_claimed_job_is_processing_under_a_fresh_lease(job_store: SqlJobStore) -> None:
    job = await enqueue(job_store)
    [claimed] = await job_store.claim("worker-7", 5, timedelta(seconds=60))
    assert claimed.id == job.id
    assert claimed.status is JobStatus.PROCESSING
    assert claimed.attempts == 1
    assert claimed.lease_token
    assert claimed.started_at is not None and claimed.lease_expires_at is not None
    lease = claimed.lease_expires_at - claimed.started_at
    assert timedelta(seconds=59) < lease < timedelta(seconds=61)
    assert await job_store.find_job(job.id, BUSINESS) == claimed
    assert await job_store.claim("worker-8", 5, LEASE) == []


async def test_a_job_claimed_again_carries_every_field_a_read_gives(
    job_store: SqlJobStore,
) -> None:
    job = await enqueue(
        job_store, communication_id="c-1", idempotency_key="k-1", payload={"n": [1, {"x": None}]}
    )
    await finish(job_store, await claim_one(job_store), retry_later("421 busy"))
    again = await claim_one(job_store)
    assert again == await reread(job_store, job.id)
    assert (again.attempts, again.last_error, again.provider) == (2, "421 busy", "smtp")
    assert again.error_type is not None and again.communication_id == "c-1"
    assert again.payload == {"n": [1, {"x": None}]} and again.idempotency_key == "k-1"


async def test_scheduled_jobs_are_not_claimed_before_their_time(job_store: SqlJobStore) -> None:
    await enqueue(job_store, run_at=now() + timedelta(minutes=5), priority=9)
    due = await enqueue(job_store)
    assert [j.id for j in await job_store.claim("w", 10, LEASE)] == [due.id]


async def test_claim_can_be_narrowed_to_one_business(job_store: SqlJobStore) -> None:
    await enqueue(job_store, priority=9)
    other = await enqueue(job_store, business_id=OTHER_BUSINESS)
    claimed = await job_store.claim("w", 10, LEASE, business_id=OTHER_BUSINESS)
    assert [j.id for j in claimed] == [other.id]


async def test_claiming_nothing_returns_nothing(job_store: SqlJobStore) -> None:
    await enqueue(job_store)
    assert await job_store.claim("w", 0, LEASE) == []


async def test_concurrent_claimers_take_every_job_exactly_once(
    job_store: SqlJobStore, database_url: str
) -> None:
    made = await job_store.enqueue([new_job(recipient=f"{i}@example.com") for i in range(300)])
    engines = [make_engine(database_url) for _ in range(6)]

    async def drain(engine: AsyncEngine, worker: str) -> list[str]:
        store, taken = SqlJobStore(engine), list[str]()
        while claimed := await store.claim(worker, 5, LEASE):
            taken.extend(j.id for j in claimed)
        return taken

    try:
        batches = await asyncio.gather(*(drain(e, f"w{i}") for i, e in enumerate(engines)))
    finally:
        for engine in engines:
            await engine.dispose()
    claimed_ids = [job_id for batch in batches for job_id in batch]
    assert len(claimed_ids) == len(set(claimed_ids)) == 300
    assert set(claimed_ids) == {m.job.id for m in made}
    assert sum(1 for batch in batches if batch) > 1  # they really ran side by side


async def test_extending_leases_keeps_only_the_ones_still_held(job_store: SqlJobStore) -> None:
    await enqueue(job_store)
    await enqueue(job_store)
    a, b = await job_store.claim("w", 2, timedelta(seconds=5))
    assert a.lease_token and b.lease_token
    held = await job_store.extend_leases(
        [(a.id, a.lease_token), (b.id, "not-the-token")], timedelta(minutes=10)
    )
    assert held == {a.id}
    a_now = await reread(job_store, a.id)
    b_now = await reread(job_store, b.id)
    assert a_now.lease_expires_at and a.lease_expires_at
    assert a_now.lease_expires_at > a.lease_expires_at + timedelta(minutes=9)
    assert b_now == b
    assert await job_store.extend_leases([], LEASE) == set()
