"""Enqueue's single statement (adapters/store/job_inserts.py), on every backend.

The store builds the returned jobs from what the caller gave plus a few returned
columns, writes without a transaction of its own, and lets one-job enqueues made
at the same time share one statement; these tests hold it to what a plain
transaction per call gave.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.tables import jobs
from commq.domain.jobs import Channel, JobStatus

from .support import BUSINESS, count_rows, new_job, now, reread

_AWKWARD = 'Ané 😀 "quoted" \\ back\\slash\ttab\nline'


async def test_a_batch_comes_back_exactly_as_a_read_gives_it(job_store: SqlJobStore) -> None:
    later = now() + timedelta(days=3, microseconds=123_457)
    batch = [
        new_job(
            channel=Channel.SMS,
            recipient="+14155550100",
            payload={"body": _AWKWARD, "n": [1, 2.5, None, True], "z": {}, "a": "first"},
            communication_id=_AWKWARD,
            priority=-1000,
            max_attempts=100,
            run_at=later,
            idempotency_key=_AWKWARD,
        ),
        new_job(payload={"subject": "Hi", "text": "x" * 10_000}, priority=1000, max_attempts=1),
        new_job(channel=Channel.WEBHOOK, recipient="https://example.com/hook", payload={}),
    ]
    stored = await job_store.enqueue(batch)
    assert [s.created for s in stored] == [True, True, True]
    for item in stored:
        assert await reread(job_store, item.job.id) == item.job
    first, second, third = (s.job for s in stored)
    assert first.run_at == later
    assert list(first.payload) == ["body", "n", "z", "a"]
    assert second.run_at == second.created_at == second.updated_at
    assert (third.status, third.attempts, third.channel) == (JobStatus.PENDING, 0, Channel.WEBHOOK)
    assert first.payload is not batch[0].payload  # the job's own copy, as a read gives


async def test_payloads_orjson_cannot_write_come_back_equal(job_store: SqlJobStore) -> None:
    # An int beyond 64 bits makes the payload's writer fall back to the stdlib.
    payloads = [
        {"big": 2**70, "text": _AWKWARD},
        {"e": 1e16, "tiny": 5e-324, "neg": -0.0, "deep": [[{"x": None}]], "text": _AWKWARD},
    ]
    stored = await job_store.enqueue([new_job(payload=p) for p in payloads])
    for item, payload in zip(stored, payloads, strict=True):
        assert item.job.payload == payload
        assert (await reread(job_store, item.job.id)).payload == payload


async def test_an_enqueue_runs_no_transaction_of_its_own(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    begun: list[Any] = []

    def on_begin(conn: Any) -> None:
        begun.append(conn)

    event.listen(store_engine.sync_engine, "begin", on_begin)
    try:
        await job_store.enqueue([new_job()])
        await job_store.enqueue([new_job() for _ in range(50)])
    finally:
        event.remove(store_engine.sync_engine, "begin", on_begin)
    # One autocommit statement each (BEGIN and COMMIT would be two more round trips).
    assert begun == []
    assert await count_rows(store_engine, jobs) == 51


async def test_one_job_enqueues_made_together_share_one_statement(
    job_store: SqlJobStore,
) -> None:
    results = await asyncio.gather(*(job_store.enqueue([new_job()]) for _ in range(20)))
    jobs_made = [job for [job] in results]
    assert all(item.created for item in jobs_made)
    assert len({item.job.id for item in jobs_made}) == 20
    # The database's clock stamps every row of one statement alike.
    assert len({item.job.created_at for item in jobs_made}) == 1
    for item in jobs_made:
        assert await reread(job_store, item.job.id) == item.job


async def test_a_bad_job_fails_only_its_own_caller_when_it_shared_a_statement(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    calls = [job_store.enqueue([new_job(recipient=f"{i}@example.com")]) for i in range(4)]
    calls.insert(2, job_store.enqueue([new_job(recipient=None)]))  # NOT NULL
    calls.append(job_store.enqueue([new_job(run_at=now().replace(tzinfo=None))]))  # naive
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[2], IntegrityError)
    assert isinstance(results[5], StatementError) and "naive datetime" in str(results[5])
    good = [r for i, r in enumerate(results) if i not in (2, 5)]
    assert all(isinstance(r, list) and r[0].created for r in good)
    assert await count_rows(store_engine, jobs) == 4


async def test_one_key_enqueued_together_is_stored_once(job_store: SqlJobStore) -> None:
    results = await asyncio.gather(
        *(job_store.enqueue([new_job(idempotency_key="same", priority=i)]) for i in range(6))
    )
    made = [item for [item] in results]
    assert sum(item.created for item in made) == 1
    assert len({item.job.id for item in made}) == 1
    assert all(item.job == made[0].job for item in made)


async def test_a_failed_batch_stores_nothing_and_leaves_the_connection_as_it_was(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    [kept] = await job_store.enqueue([new_job()])
    with pytest.raises(IntegrityError):
        await job_store.enqueue([new_job(), new_job(business_id=None)])
    assert await count_rows(store_engine, jobs) == 1
    # The pooled connection the failed statement ran on is transactional again: a
    # rolled-back delete deletes nothing (in autocommit it would have).
    async with store_engine.connect() as conn:
        await conn.execute(jobs.delete())
        await conn.rollback()
    assert await reread(job_store, kept.job.id) == kept.job
    [again] = await job_store.enqueue([new_job()])
    assert again.created and again.job.business_id == BUSINESS


async def test_a_payload_that_is_not_json_is_refused_as_a_statement_error(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    with pytest.raises(StatementError, match=r"\(builtins.TypeError\) .*not JSON serializable"):
        await job_store.enqueue([new_job(), new_job(payload={"when": {1, 2}})])
    assert await count_rows(store_engine, jobs) == 0
