"""The database fails under a dispatching worker: connections killed mid-statement; a
PostgreSQL server that refuses connections for a while (under a worker process, in the
middle of one send, and under the LISTEN connection); SQLite's write lock held by
another process; several worker processes on one SQLite file.

Real `commq worker` processes where the fault can be made from outside, an in-process
dispatcher where it must come at one moment (mid-send) or SQLite's busy timeout must be
shortened; a real webhook receiver on 127.0.0.1 and a TCP proxy in front of the real
PostgreSQL server (never restarted: other tests share it); the queue read back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from commq.adapters.store import LocalWakeup, PgWakeup, SqlJobStore, make_engine
from commq.adapters.store import engine as store_engine
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.domain.jobs import Channel, Job, NewJob
from commq.domain.outcomes import SendResult
from commq.domain.retry import RetryPolicy
from commq.entrypoints.bootstrap import SystemClock
from commq.entrypoints.reliability import build_guards
from commq.entrypoints.settings import Settings
from fakes.modes import Slow
from fakes.receiver import FakeReceiver
from fakes.tcp_proxy import TcpProxy
from sqlite_lock import write_lock_held

from .processes import (
    Queue,
    enqueue_webhooks,
    every_delivery_accounted_for,
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)


def _terminate_backends(url: str) -> int:
    """What an operator's pg_terminate_backend does to every connection of the database."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return sum(1 for (done,) in rows if done)


@pytest.mark.postgres
def test_connections_killed_again_and_again_mid_dispatch_lose_and_repeat_nothing_unseen(
    postgres_url: str, tmp_path: Path, receiver: FakeReceiver
) -> None:
    receiver.set_mode(Slow(0.05))  # 300 sends, 5 at a time: about three seconds
    ids = enqueue_webhooks(postgres_url, receiver.url, 300)
    queue = Queue(postgres_url)
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(postgres_url, tmp_path, CONCURRENCY="5"), log)
    try:
        killed, chaos_ends = 0, time.monotonic() + 3.0
        while time.monotonic() < chaos_ends and not queue.settled(len(ids)):
            killed += _terminate_backends(postgres_url)
            time.sleep(0.2)
        wait_for(lambda: queue.settled(len(ids)), "every job to be settled")
        assert worker.poll() is None, log.read_text()
    finally:
        code = stop_worker(worker)
        queue_outcomes = queue.outcomes()
        queue.close()
    assert code == 0, log.read_text()
    assert killed >= 5  # the worker's statements really were cut, not just idle sockets
    assert set(queue_outcomes) == set(ids)
    assert every_delivery_accounted_for(queue_outcomes, receiver.deliveries()) == []


@pytest.mark.postgres
def test_a_database_refusing_connections_shorter_than_a_lease_costs_no_message_twice(
    postgres_url: str, tmp_path: Path, receiver: FakeReceiver
) -> None:
    # The worker reaches PostgreSQL through a proxy that the test takes down for two
    # seconds (connections cut, new ones refused), as a restart does. The lease (10 s)
    # outlasts the outage, with room for reconnecting on a slow, busy machine, so every
    # result must be kept and written afterwards, and no message may go out twice.
    server = make_url(postgres_url)
    receiver.set_mode(Slow(0.1))
    ids = enqueue_webhooks(postgres_url, receiver.url, 100)
    queue = Queue(postgres_url)
    log = tmp_path / "worker.log"
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        proxied = server.set(port=proxy.port).render_as_string(hide_password=False)
        env = worker_env(proxied, tmp_path, LEASE_SECONDS="10", CONCURRENCY="10")
        worker = start_worker(env, log)
        try:
            wait_for(lambda: len(receiver.requests) >= 30, "the worker to be under way")
            proxy.down()
            time.sleep(2.0)
            proxy.up()
            wait_for(lambda: queue.settled(len(ids)), "every job to be settled")
            assert worker.poll() is None, log.read_text()
        finally:
            code = stop_worker(worker)
            outcomes = queue.outcomes()
            queue.close()
    assert code == 0, log.read_text()
    deliveries = receiver.deliveries()
    assert every_delivery_accounted_for(outcomes, deliveries) == []
    assert deliveries == Counter({job_id: 1 for job_id in ids})


@pytest.mark.postgres
async def test_the_listener_comes_back_after_the_database_refused_it_for_a_while(
    postgres_url: str,
) -> None:
    # Workers with a long poll interval rely on LISTEN: after a restart it must be back
    # (with backoff while refused) and wake them, not leave them to poll.
    server = make_url(postgres_url)
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        proxied = server.set(port=proxy.port).render_as_string(hide_password=False)
        listener, notifier = PgWakeup(proxied, backoff=0.1, max_backoff=0.5), PgWakeup(postgres_url)
        try:
            await listener.start()
            await _until(lambda: listener.listening)
            proxy.down()
            await _until(lambda: not listener.listening)
            await asyncio.sleep(1.5)  # several refused reconnections
            proxy.up()
            await _until(lambda: listener.listening, timeout=10)
            await listener.wait(0)  # absorb the wakeup every (re)connection gives
            waiting = asyncio.create_task(listener.wait(30))
            await asyncio.sleep(0.05)
            await notifier.notify()
            await asyncio.wait_for(waiting, 10)
        finally:
            await listener.close()
            await notifier.close()


class CutsTheDatabaseSender:
    """Takes every message; the first time, the database goes away while it is sending
    (once the dispatcher holds a second job, claimed ahead and waiting for the slot)."""

    name = "cutting"

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.sent: Counter[str] = Counter()
        self.dispatcher: Dispatcher | None = None
        self.cut_at: float | None = None

    async def send(self, job: Job) -> SendResult:
        if self.cut_at is None:
            await _until(lambda: self.dispatcher is not None and self.dispatcher.in_flight == 2)
            self.proxy.down()
            self.cut_at = time.monotonic()
            await asyncio.sleep(0.4)  # the circuits' and pauses' copies are stale now
        self.sent[job.id] += 1
        return SendResult.ok(self.name)

    async def close(self) -> None:
        return None


@pytest.mark.postgres
async def test_a_database_gone_mid_send_costs_no_second_send_and_no_attempt_of_the_next_job(
    postgres_url: str,
) -> None:
    # The send guards (circuits, pauses) read the database when their copy is stale: after
    # a provider took the first job, and before any provider is asked about the second.
    server = make_url(postgres_url)
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        proxied = server.set(port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(proxied)
        store = SqlJobStore(engine)
        made = await store.enqueue(
            [NewJob("acme", Channel.SMS, "+14155550100", {"body": "hi"}) for _ in range(2)]
        )
        sender = CutsTheDatabaseSender(proxy)
        settings = Settings(lease_seconds=3.0)
        dispatcher = sender.dispatcher = Dispatcher(
            store=store,
            senders={Channel.SMS: [sender]},
            wakeup=LocalWakeup(),
            clock=SystemClock(),
            policy=RetryPolicy(timedelta(0), timedelta(0)),
            settings=DispatchSettings(
                concurrency=1, batch_size=1, lease=timedelta(seconds=3), poll_interval=0.05
            ),
            worker_id="in-process",
            guards=build_guards(settings, engine, "in-process", [sender.name]),
        )
        running = asyncio.create_task(dispatcher.run())
        try:
            await _until(lambda: sender.cut_at is not None)
            await asyncio.sleep(1.0)  # shorter than the lease: nothing may run out
            proxy.up()
            await _until_settled(store, 2)
        finally:
            dispatcher.stop()
            await asyncio.wait_for(running, 15)
            history = await store.history([item.job.id for item in made])
            jobs = [await store.find_job(item.job.id, None) for item in made]
            await engine.dispose()
    # Before: the first job's known result was dropped and it went out again after its
    # lease; the second, never sent, lost an attempt and was marked as maybe sent.
    assert sender.sent == Counter({item.job.id: 1 for item in made})
    assert [[a.outcome.value for a in attempts] for attempts in history.values()] == [
        ["succeeded"],
        ["succeeded"],
    ]
    assert [job.attempts for job in jobs if job is not None] == [1, 1]


class CountingSender:
    """Answers every send at once and counts the sends per job."""

    name = "counting"

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    async def send(self, job: Job) -> SendResult:
        await asyncio.sleep(0.02)
        self.sent[job.id] += 1
        return SendResult.ok(self.name)

    async def close(self) -> None:
        return None


async def test_sqlites_write_lock_held_by_another_process_delays_sends_and_repeats_none(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # commq waits 10 s for another process's write lock; a lock held longer makes its
    # claims, result writes and lease extensions fail. A 100 ms wait here stands for
    # that, so the test need not hold the lock for more than 10 s.
    pragmas = [p for p in store_engine._SQLITE_PRAGMAS if "busy_timeout" not in p]
    monkeypatch.setattr(store_engine, "_SQLITE_PRAGMAS", (*pragmas, "PRAGMA busy_timeout=100"))
    engine = make_engine(sqlite_url)
    store = SqlJobStore(engine)
    made = await store.enqueue(
        [NewJob("acme", Channel.SMS, "+14155550100", {"body": "hi"}) for _ in range(80)]
    )
    sender = CountingSender()
    dispatcher = Dispatcher(
        store=store,
        senders={channel: sender for channel in Channel},
        wakeup=LocalWakeup(),
        clock=SystemClock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(
            concurrency=8, batch_size=8, lease=timedelta(seconds=5), poll_interval=0.05
        ),
        worker_id="in-process",
    )
    running = asyncio.create_task(dispatcher.run())
    try:
        await _until(lambda: sum(sender.sent.values()) >= 10)
        async with write_lock_held(str(make_url(sqlite_url).database), 1.5):
            await _until(lambda: sum(sender.sent.values()) >= 80)
            await _until_settled(store, 80)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(running, 15)
        await engine.dispose()
    assert sender.sent == Counter({item.job.id: 1 for item in made})
    assert "database is locked" in caplog.text  # the lock really got in the way


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _until_settled(store: SqlJobStore, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (stats := await store.stats(None)).completed < count:
        assert stats.failed == 0, stats
        assert time.monotonic() < deadline, f"timed out: {stats}"
        await asyncio.sleep(0.05)


def test_worker_processes_sharing_one_sqlite_file_send_each_job_once(
    sqlite_url: str, tmp_path: Path, receiver: FakeReceiver
) -> None:
    # Three processes claim and record through one file (every write under BEGIN
    # IMMEDIATE, each waiting its turn in the busy handler) while jobs keep arriving.
    env = worker_env(sqlite_url, tmp_path, POLL_INTERVAL="0.05", CONCURRENCY="10")
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [start_worker(env, log) for log in logs]
    queue = Queue(sqlite_url)
    ids: list[str] = []
    try:
        for _ in range(5):
            ids += enqueue_webhooks(sqlite_url, receiver.url, 40)
            time.sleep(0.2)
        wait_for(lambda: queue.settled(len(ids)), "every job to be settled")
    finally:
        codes = [stop_worker(worker) for worker in workers]
        outcomes = queue.outcomes()
        queue.close()
    text = "\n".join(log.read_text() for log in logs)
    assert codes == [0, 0, 0], text
    assert receiver.deliveries() == Counter({job_id: 1 for job_id in ids})
    assert every_delivery_accounted_for(outcomes, receiver.deliveries()) == []
    assert "locked" not in text and "Traceback" not in text
