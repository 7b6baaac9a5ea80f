"""Wakeups: in-process events and PostgreSQL LISTEN/NOTIFY with reconnection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from commq.adapters.store import LocalWakeup, PgWakeup
from commq.adapters.store.wakeup import LISTENER_NAME
from commq.entrypoints.bootstrap import build
from commq.entrypoints.settings import Settings, parse_providers


async def _elapsed(waiting: asyncio.Future[None] | asyncio.Task[None]) -> float:
    start = time.monotonic()
    await waiting
    return time.monotonic() - start


async def test_a_local_wait_returns_by_its_timeout() -> None:
    assert 0.04 < await _elapsed(asyncio.ensure_future(LocalWakeup().wait(0.05))) < 1


async def test_a_local_notify_wakes_every_waiter_and_is_kept_for_the_next() -> None:
    wakeup = LocalWakeup()
    waiters = [asyncio.create_task(wakeup.wait(10)) for _ in range(3)]
    await asyncio.sleep(0.01)
    await wakeup.notify()
    done, _ = await asyncio.wait(waiters, timeout=1)
    assert len(done) == 3
    await wakeup.notify()  # nobody waits: the next wait returns at once
    assert await _elapsed(asyncio.ensure_future(wakeup.wait(10))) < 0.5
    assert await _elapsed(asyncio.ensure_future(wakeup.wait(0.05))) >= 0.04


@pytest.fixture
async def wakeups(postgres_url: str) -> AsyncIterator[tuple[PgWakeup, PgWakeup]]:
    listener = PgWakeup(postgres_url, backoff=0.02, max_backoff=0.1)
    notifier = PgWakeup(postgres_url)
    await listener.start()
    yield listener, notifier
    await listener.close()
    await notifier.close()
    assert not listener.listening


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


@pytest.mark.postgres
async def test_a_notify_from_another_process_wakes_a_listener(
    wakeups: tuple[PgWakeup, PgWakeup],
) -> None:
    listener, notifier = wakeups
    await _until(lambda: listener.listening)
    await listener.wait(0)  # absorb the wakeup every (re)connection gives
    waiting = asyncio.create_task(listener.wait(10))
    await asyncio.sleep(0.05)
    await notifier.notify()
    assert await _elapsed(waiting) < 2
    assert 0.04 < await _elapsed(asyncio.ensure_future(listener.wait(0.05))) < 1


@pytest.mark.postgres
async def test_the_listener_reconnects_after_its_connection_is_killed(
    wakeups: tuple[PgWakeup, PgWakeup], postgres_url: str
) -> None:
    listener, notifier = wakeups
    await _until(lambda: listener.listening)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        killed = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (LISTENER_NAME,),
        )
        assert (await killed.fetchall()) == [(True,)]
    await _until(lambda: not listener.listening)
    await _until(lambda: listener.listening)
    await listener.wait(0)
    waiting = asyncio.create_task(listener.wait(10))
    await asyncio.sleep(0.05)
    await notifier.notify()
    assert await _elapsed(waiting) < 2


@pytest.mark.postgres
async def test_a_process_listens_only_once_a_worker_waits(postgres_url: str) -> None:
    # An API-only server never waits, so it is not sent every enqueue's NOTIFY.
    wakeup = PgWakeup(postgres_url)
    try:
        await wakeup.notify()
        await asyncio.sleep(0.2)
        assert not wakeup.listening
        await wakeup.wait(0)
        await _until(lambda: wakeup.listening)
    finally:
        await wakeup.close()


@pytest.mark.postgres
async def test_a_container_listens_once_its_worker_goes_idle(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=postgres_url,
        providers=parse_providers("email=outbox,sms=outbox,webhook=outbox"),
        outbox_dir=tmp_path / "outbox",
        poll_interval=0.05,
    )
    container = await build(settings)
    try:
        wakeup = container.wakeup
        assert isinstance(wakeup, PgWakeup)
        await asyncio.sleep(0.2)
        assert not wakeup.listening  # `commq serve --no-worker` stays here
        dispatcher = container.dispatcher()
        worker = asyncio.create_task(dispatcher.run())
        await _until(lambda: wakeup.listening)
        dispatcher.stop()
        await worker
    finally:
        await container.close()
