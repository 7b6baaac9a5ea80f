"""SQLite: a lone job's INSERT runs on the event loop's thread, never waits there for
another process's write lock, and commits as durably as every other write."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, job_inserts
from commq.adapters.store.engine import Transactions
from commq.adapters.store.inline_sqlite import InlineWriter
from sqlite_lock import write_lock_held

from .support import enqueue, new_job, reread


def _inline(engine: AsyncEngine) -> InlineWriter:
    writer = Transactions(engine).inline
    assert writer is not None, "every SQLite engine of make_engine has one"
    return writer


@pytest.fixture
def through_aiosqlite(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the jobs of each INSERT sent through aiosqlite's thread (and sends it)."""
    sizes: list[int] = []
    real = job_inserts._insert_sqlite

    async def recording(conn: Any, rows: list[tuple[Any, ...]], lock: Any) -> list[Any]:
        sizes.append(len(rows))
        return await real(conn, rows, lock)

    monkeypatch.setattr(job_inserts, "_insert_sqlite", recording)
    return sizes


async def test_a_lone_job_is_inserted_without_a_trip_to_aiosqlites_thread(
    engine: AsyncEngine, through_aiosqlite: list[int]
) -> None:
    store = SqlJobStore(engine)
    job = await enqueue(store, idempotency_key="lone")
    assert (await reread(store, job.id)).recipient == "ana@example.com"
    assert through_aiosqlite == []

    # The same key again: the row exists, so the stored job comes back, not a new one.
    [again] = await store.enqueue([new_job(idempotency_key="lone")])
    assert (again.job.id, again.created) == (job.id, False)
    # A batch goes through the thread: its statement is long enough to be worth the overlap.
    stored = await store.enqueue([new_job(), new_job()])
    assert len(stored) == 2
    assert through_aiosqlite == [2]


async def test_a_lone_job_waits_for_another_processs_write_lock_off_the_event_loop(
    engine: AsyncEngine, sqlite_url: str, through_aiosqlite: list[int]
) -> None:
    store = SqlJobStore(engine)
    await enqueue(store)  # the inline connection is open before the lock is taken
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        async with write_lock_held(str(make_url(sqlite_url).database), 0.6):
            started = time.monotonic()
            job = await enqueue(store)
            waited = time.monotonic() - started
    finally:
        ticker.cancel()
    assert waited > 0.3, "it waited for the other process's lock"
    assert through_aiosqlite == [1], "after SQLITE_BUSY the INSERT went to aiosqlite's thread"
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.3f} s"
    assert (await reread(store, job.id)).id == job.id


async def test_its_connection_commits_as_durably_as_the_engines(engine: AsyncEngine) -> None:
    writer = _inline(engine)
    assert writer.rows("PRAGMA synchronous", ()) == [(2,)]  # FULL
    assert writer.rows("PRAGMA journal_mode", ()) == [("wal",)]
    assert writer.rows("PRAGMA foreign_keys", ()) == [(1,)]


async def test_a_failed_statement_is_sqlalchemys_error_and_the_next_one_runs(
    engine: AsyncEngine,
) -> None:
    writer = _inline(engine)
    with pytest.raises(IntegrityError):
        writer.rows("INSERT INTO jobs (id) VALUES (NULL)", ())
    store = SqlJobStore(engine)
    job = await enqueue(store)
    assert (await reread(store, job.id)).id == job.id


async def test_disposing_of_the_engine_closes_it_and_the_next_job_opens_it_again(
    engine: AsyncEngine, through_aiosqlite: list[int]
) -> None:
    store = SqlJobStore(engine)
    first = await enqueue(store)
    await engine.dispose()
    second = await enqueue(store)
    assert [(await reread(store, job.id)).id for job in (first, second)] == [first.id, second.id]
    assert through_aiosqlite == []
