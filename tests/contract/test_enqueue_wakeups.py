"""On PostgreSQL an enqueue's own INSERT wakes the listening workers (NOTIFY at commit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from commq.adapters.store import PgWakeup, SqlJobStore, make_engine
from commq.application.queue import QueueService
from commq.domain.audit import Principal
from commq.domain.permissions import Role

from .support import new_job

pytestmark = pytest.mark.postgres

ADMIN = Principal("key-1", "ops", Role.ADMIN, None)


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[SqlJobStore]:
    engine = make_engine(postgres_url)
    yield SqlJobStore(engine)
    await engine.dispose()


@pytest.fixture
async def listener(postgres_url: str) -> AsyncIterator[PgWakeup]:
    """Another process's wakeup, listening, with the wakeup of its connecting absorbed."""
    wakeup = PgWakeup(postgres_url, backoff=0.02, max_backoff=0.1)
    await wakeup.start()
    deadline = time.monotonic() + 5
    while not wakeup.listening:
        assert time.monotonic() < deadline, "the listener never connected"
        await asyncio.sleep(0.01)
    await wakeup.wait(0)
    yield wakeup
    await wakeup.close()


async def _woken(wakeup: PgWakeup, within: float) -> bool:
    start = time.monotonic()
    await wakeup.wait(within)
    return time.monotonic() - start < within * 0.9


async def test_an_enqueue_wakes_a_listening_worker(store: SqlJobStore, listener: PgWakeup) -> None:
    waiting = asyncio.create_task(_woken(listener, 5))
    await asyncio.sleep(0.05)
    await store.enqueue([new_job()])
    assert await waiting
    waiting = asyncio.create_task(_woken(listener, 5))
    await asyncio.sleep(0.05)
    await store.enqueue([new_job() for _ in range(3)])
    assert await waiting


async def test_an_enqueue_that_stores_nothing_new_wakes_nobody(
    store: SqlJobStore, listener: PgWakeup
) -> None:
    await store.enqueue([new_job(idempotency_key="k-1")])
    assert await _woken(listener, 5)
    waiting = asyncio.create_task(_woken(listener, 0.5))
    [again] = await store.enqueue([new_job(idempotency_key="k-1")])
    assert not again.created
    assert not await waiting


async def test_the_queue_wakes_its_own_workers_at_once_and_sends_no_second_notify(
    store: SqlJobStore, listener: PgWakeup, postgres_url: str
) -> None:
    own = PgWakeup(postgres_url)  # not started: only the local wake can reach its waiters
    queue = QueueService(store, own, dispatch_pass=lambda _: asyncio.sleep(0, 0))
    try:
        local = asyncio.create_task(_woken(own, 5))
        other = asyncio.create_task(_woken(listener, 5))
        await asyncio.sleep(0.05)
        await queue.enqueue(ADMIN, [new_job()])
        assert await local
        assert await other
        async with await psycopg.AsyncConnection.connect(postgres_url) as admin:
            cursor = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'commq-notify' AND datname = current_database()"
            )
            assert await cursor.fetchone() == (0,)
    finally:
        await own.close()
