"""Operators' changes racing the workers, on every backend: bulk cancel and bulk retry
while two workers (each with its own connections, as on two machines) claim the same
jobs; retention pruning a job an operator retries; workers whose clocks are wrong."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commq.adapters.store import LocalWakeup, SqlJobStore, make_engine
from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.adapters.store.tables import attempts, audit_events, jobs
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.domain.jobs import Channel, Job, JobStatus, NewJob
from commq.domain.listing import JobFilter
from commq.domain.operations import CHUNK_SIZE
from commq.domain.outcomes import SendOutcome, SendResult
from commq.domain.retry import RetryPolicy
from commq.domain.transitions import Action

from .operations_support import insert_jobs
from .support import BUSINESS, audit, now, reread

ACME = JobFilter(business_id=BUSINESS)


class RecordingSender:
    """Counts the sends per job; ``refuse_first`` fails each job's first send for good."""

    name = "recording"

    def __init__(self, refuse_first: bool = False, delay: float = 0.0) -> None:
        self.sent: Counter[str] = Counter()
        self.sent_at: dict[str, datetime] = {}
        self._refuse_first = refuse_first
        self._delay = delay
        self.release = asyncio.Event()
        self.release.set()

    async def send(self, job: Job) -> SendResult:
        await asyncio.sleep(self._delay)
        await self.release.wait()
        self.sent[job.id] += 1
        self.sent_at.setdefault(job.id, datetime.now(UTC))
        if self._refuse_first and self.sent[job.id] == 1:
            return SendResult(SendOutcome.PERMANENT, self.name, error="550 no such user")
        return SendResult.ok(self.name)

    async def close(self) -> None:
        return None


class SkewedClock:
    """This machine's clock, off by ``skew``: only attempt times may show it."""

    def __init__(self, skew: timedelta = timedelta(0)) -> None:
        self._skew = skew

    def now(self) -> datetime:
        return datetime.now(UTC) + self._skew


@asynccontextmanager
async def workers(
    database_url: str, sender: RecordingSender, *clocks: SkewedClock, **settings: object
) -> AsyncIterator[list[Dispatcher]]:
    """Dispatchers running on engines of their own (one per clock) until the block ends."""
    engines = [make_engine(database_url) for _ in clocks]
    options = {"concurrency": 8, "batch_size": 8, "poll_interval": 0.02} | settings
    dispatchers = [
        Dispatcher(
            store=SqlJobStore(engine),
            senders={channel: sender for channel in Channel},
            wakeup=LocalWakeup(),
            clock=clock,
            policy=RetryPolicy(timedelta(0), timedelta(0)),
            settings=DispatchSettings(**options),  # type: ignore[arg-type]
            worker_id=f"worker-{i}",
        )
        for i, (engine, clock) in enumerate(zip(engines, clocks, strict=True))
    ]
    running = [asyncio.create_task(d.run()) for d in dispatchers]
    try:
        yield dispatchers
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop()
        await asyncio.wait_for(asyncio.gather(*running), 30)
        for engine in engines:
            await engine.dispose()


async def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _until_none_pending(store: SqlJobStore, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (stats := await store.stats(None)).pending + stats.processing:
        assert time.monotonic() < deadline, f"timed out: {stats}"
        await asyncio.sleep(0.05)


async def _by_status(engine: AsyncEngine) -> dict[str, set[str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(jobs.c.id, jobs.c.status))
        found: dict[str, set[str]] = {}
        for job_id, status in rows:
            found.setdefault(status, set()).add(job_id)
        return found


async def _histories(engine: AsyncEngine) -> dict[str, list[tuple[str, int]]]:
    """Each job's (outcome, attempt) pairs in order."""
    query = select(attempts.c.job_id, attempts.c.outcome, attempts.c.attempt).order_by(
        attempts.c.job_id, attempts.c.seq
    )
    async with engine.connect() as conn:
        found: dict[str, list[tuple[str, int]]] = {}
        for job_id, outcome, attempt in await conn.execute(query):
            found.setdefault(job_id, []).append((outcome, attempt))
        return found


async def _audited_counts(engine: AsyncEngine, action: str) -> list[int]:
    query = select(audit_events.c.count).where(audit_events.c.action == action)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def test_a_bulk_cancel_racing_two_workers_cancels_exactly_the_jobs_none_took(
    job_store: SqlJobStore, database_url: str, store_engine: AsyncEngine
) -> None:
    new = [NewJob(BUSINESS, Channel.SMS, "+14155550100", {"body": "hi"})]
    made = {item.job.id for item in await job_store.enqueue(new * (2 * CHUNK_SIZE + 500))}
    sender = RecordingSender(delay=0.002)
    operations = SqlOperationsStore(store_engine)
    async with workers(database_url, sender, SkewedClock(), SkewedClock()):
        await _until(lambda: len(sender.sent) >= 50)
        bulk = audit("jobs.bulk_cancel")
        cancelled = await operations.apply_bulk(Action.CANCEL, ACME, None, bulk)
        await _until_none_pending(job_store)
    statuses = await _by_status(store_engine)
    histories = await _histories(store_engine)

    # Every job was either sent, once, or cancelled unsent; the count and the audit say
    # how many were cancelled.
    assert statuses.keys() <= {"completed", "cancelled"}
    assert statuses["completed"] | statuses["cancelled"] == made
    assert set(sender.sent) == statuses["completed"]
    assert set(sender.sent.values()) == {1}
    assert cancelled == len(statuses["cancelled"]) > 0
    assert not statuses["cancelled"] & histories.keys()
    assert await _audited_counts(store_engine, "jobs.bulk_cancel") == [cancelled]


async def test_a_bulk_retry_racing_two_workers_retries_each_failed_job_once(
    job_store: SqlJobStore, database_url: str, store_engine: AsyncEngine
) -> None:
    new = [NewJob(BUSINESS, Channel.SMS, "+14155550100", {"body": "hi"})]
    made = {item.job.id for item in await job_store.enqueue(new * (2 * CHUNK_SIZE + 200))}
    sender = RecordingSender(refuse_first=True)
    operations = SqlOperationsStore(store_engine)
    async with workers(database_url, sender, SkewedClock(), SkewedClock()):
        # Retried while the workers are still failing the rest, and claim the retried
        # jobs as the later chunks are being retried.
        await _until(lambda: len(sender.sent) >= CHUNK_SIZE + 200)
        bulk = audit("jobs.bulk_retry")
        retried = await operations.apply_bulk(Action.RETRY, ACME, None, bulk)
        await _until_none_pending(job_store)
    statuses = await _by_status(store_engine)
    histories = await _histories(store_engine)

    twice = {job_id for job_id, n in sender.sent.items() if n == 2}
    assert set(sender.sent) == made and set(sender.sent.values()) <= {1, 2}
    # The bulk retried each job that had failed when it reached it, once; those went out
    # again and succeeded; the rest failed after the bulk had passed them, and stay failed.
    assert retried == len(twice) >= CHUNK_SIZE
    assert statuses["completed"] == twice
    assert statuses["failed"] == made - twice
    assert {job_id: histories[job_id] for job_id in twice} == {
        job_id: [("permanent_error", 1), ("succeeded", 1)] for job_id in twice
    }
    assert await _audited_counts(store_engine, "jobs.bulk_retry") == [retried]


async def test_pruning_keeps_a_job_retried_between_its_pick_and_its_delete(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await insert_jobs(store_engine, 3, status="cancelled", at=now() - timedelta(days=40))
    old = sorted((await _by_status(store_engine))["cancelled"])
    operations = SqlOperationsStore(store_engine)
    # Prune picks its batch in one transaction and deletes it in the next; an operator's
    # retry lands in between (the one seam: the store's write transaction).
    transactions = operations._tx
    write = transactions.write

    @asynccontextmanager
    async def retry_first() -> AsyncIterator[AsyncConnection]:
        assert await job_store.apply_action(old[0], Action.RETRY, audit("job.retry"))
        async with write() as conn:
            yield conn

    transactions.write = retry_first  # type: ignore[method-assign]

    batch = await operations.prune_batch(timedelta(days=30), 1000, None)

    assert batch.deleted == 2
    assert (await reread(job_store, old[0])).status is JobStatus.PENDING
    assert await job_store.find_job(old[1], None) is None


async def test_workers_whose_clocks_are_wrong_neither_send_early_nor_take_a_live_lease(
    job_store: SqlJobStore, database_url: str
) -> None:
    # Schedules and leases are compared with the database's clock only: workers an hour
    # ahead and an hour behind claim nothing before it is due, and reclaim no lease that
    # another worker keeps alive.
    due_at = now() + timedelta(seconds=1.5)
    [scheduled] = await job_store.enqueue(
        [NewJob(BUSINESS, Channel.SMS, "+14155550100", {"body": "later"}, run_at=due_at)]
    )
    [held] = await job_store.enqueue([NewJob(BUSINESS, Channel.SMS, "+14155550101", {})])
    slow, skewed = RecordingSender(), RecordingSender()
    slow.release.clear()
    lease = timedelta(seconds=2)
    one_at_a_time = {"concurrency": 1, "batch_size": 1, "lease": lease}
    async with workers(database_url, slow, SkewedClock(), **one_at_a_time) as [keeper]:
        await _until(lambda: keeper.in_flight == 1)
        ahead, behind = SkewedClock(timedelta(hours=1)), SkewedClock(-timedelta(hours=1))
        async with workers(database_url, skewed, ahead, behind, lease=lease):
            await _until(lambda: scheduled.job.id in skewed.sent, timeout=30)
            await asyncio.sleep(lease.total_seconds())  # each reclaims every half second
            slow.release.set()
            await _until(lambda: keeper.in_flight == 0)
    assert skewed.sent_at[scheduled.job.id] >= due_at
    assert dict(skewed.sent) == {scheduled.job.id: 1}
    assert dict(slow.sent) == {held.job.id: 1}
    histories = await _histories_of(job_store, [held.job.id, scheduled.job.id])
    assert histories == [["succeeded"], ["succeeded"]]


async def _histories_of(store: SqlJobStore, ids: list[str]) -> list[list[str]]:
    found = await store.history(ids)
    return [[a.outcome.value for a in found[job_id]] for job_id in ids]
