"""The worker loop over the real SQLite store with a scripted sender."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import LocalWakeup, SqlJobStore
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.failover import Guards
from commq.application.ports import ClaimedJobs, WorkerResult
from commq.domain.jobs import Channel, Job, JobStatus, NewJob
from commq.domain.outcomes import SendOutcome, SendResult
from commq.domain.retry import RetryPolicy
from commq.entrypoints.bootstrap import SystemClock


class ScriptedSender:
    """Answers each send with the next scripted outcome (OK once the script runs out)."""

    name = "scripted"

    def __init__(self, *script: SendOutcome, delay: float = 0.0) -> None:
        self.script = list(script)
        self.delay = delay
        self.sent: list[str] = []

    async def send(self, job: Job) -> SendResult:
        await asyncio.sleep(self.delay)
        self.sent.append(job.id)
        outcome = self.script.pop(0) if self.script else SendOutcome.OK
        if outcome is SendOutcome.OK:
            return SendResult.ok(self.name, f"msg-{job.id}")
        return SendResult(outcome, self.name, error=f"scripted {outcome.value}")

    async def close(self) -> None:
        return None


def _dispatcher(
    store: SqlJobStore, sender: ScriptedSender, guards: Guards | None = None, **settings: object
) -> Dispatcher:
    options = {"poll_interval": 0.02, "reclaim_interval": 0.05} | settings
    return Dispatcher(
        guards=guards,
        store=store,
        senders={channel: sender for channel in Channel},
        wakeup=LocalWakeup(),
        clock=SystemClock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(**options),  # type: ignore[arg-type]
        worker_id="test-worker",
    )


async def _enqueue(store: SqlJobStore, count: int = 1, max_attempts: int = 3) -> list[str]:
    jobs = [
        NewJob("acme", Channel.SMS, "+14155550100", {"body": "hi"}, max_attempts=max_attempts)
        for _ in range(count)
    ]
    return [item.job.id for item in await store.enqueue(jobs)]


async def test_run_until_idle_sends_every_due_job_once(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    ids = await _enqueue(store, 120)
    sender = ScriptedSender()
    sent = await _dispatcher(store, sender, concurrency=16, batch_size=10).run(until_idle=True)
    assert sent == 120
    assert sorted(sender.sent) == sorted(ids)
    assert (await store.stats(None)).completed == 120


async def test_a_transient_failure_is_retried_and_both_attempts_are_recorded(
    engine: AsyncEngine,
) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    await _dispatcher(store, ScriptedSender(SendOutcome.TRANSIENT)).run(until_idle=True)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.COMPLETED
    history = (await store.history([job_id]))[job_id]
    assert [(a.seq, a.attempt, a.outcome.value) for a in history] == [
        (1, 1, "transient_error"),
        (2, 2, "succeeded"),
    ]
    assert history[1].provider_message_id == f"msg-{job_id}"


async def test_transient_failures_stop_at_max_attempts(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store, max_attempts=2)
    sender = ScriptedSender(SendOutcome.TRANSIENT, SendOutcome.TRANSIENT, SendOutcome.TRANSIENT)
    await _dispatcher(store, sender).run(until_idle=True)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.attempts == 2 and job.error_type is not None and job.error_type.value == "transient"
    assert len(sender.sent) == 2


async def test_an_ambiguous_sms_is_not_sent_again(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender(SendOutcome.AMBIGUOUS)
    await _dispatcher(store, sender).run(until_idle=True)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error_type is not None and job.error_type.value == "ambiguous"
    assert len(sender.sent) == 1


async def test_a_sender_that_raises_does_not_kill_the_worker_nor_send_again(
    engine: AsyncEngine,
) -> None:
    class Exploding(ScriptedSender):
        async def send(self, job: Job) -> SendResult:
            self.sent.append(job.id)
            raise RuntimeError("boom")

    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store, max_attempts=3)
    sender = Exploding()
    await _dispatcher(store, sender).run(until_idle=True)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.last_error == "RuntimeError: boom"
    # It may have raised after the provider took the message: an operator decides.
    assert job.error_type is not None and job.error_type.value == "ambiguous"
    assert sender.sent == [job_id]


async def test_leases_are_extended_while_a_slow_send_runs(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    # The send takes three leases; the lease leaves room for a busy machine's stalls.
    sender = ScriptedSender(delay=1.5)
    dispatcher = _dispatcher(store, sender, lease=timedelta(seconds=0.5))
    await dispatcher.run(until_idle=True)
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["succeeded"]
    assert sender.sent == [job_id]


async def test_a_dead_workers_job_is_reclaimed_as_lost_and_sent(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    [claimed] = await store.claim("dead-worker", 1, timedelta(seconds=0.05))
    assert claimed.id == job_id
    await asyncio.sleep(0.1)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender)
    task = asyncio.create_task(dispatcher.run())
    for _ in range(100):
        job = await store.find_job(job_id, None)
        if job is not None and job.status is JobStatus.COMPLETED:
            break
        await asyncio.sleep(0.02)
    dispatcher.stop()
    await task
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["lost", "succeeded"]
    assert sender.sent == [job_id]


async def test_a_short_lease_is_reclaimed_soon_after_it_expires_not_at_the_next_15_s(
    engine: AsyncEngine,
) -> None:
    # The dead worker's lease is still live when this worker's first reclaim runs, so
    # only a later round can take it back: every quarter of the lease, not every 15 s.
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    await store.claim("dead-worker", 1, timedelta(seconds=0.4))
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, lease=timedelta(seconds=0.4), reclaim_interval=15.0)
    task = asyncio.create_task(dispatcher.run())
    try:
        await _until(lambda: sender.sent == [job_id], timeout=5.0)
    finally:
        dispatcher.stop()
        await task


async def test_stop_lets_in_flight_sends_finish_within_the_grace(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    ids = await _enqueue(store, 5)
    sender = ScriptedSender(delay=0.2)
    dispatcher = _dispatcher(store, sender, grace=5.0)
    task = asyncio.create_task(dispatcher.run())
    # Stop once all five are claimed (a slow machine may have sent them already).
    await _until(lambda: dispatcher.in_flight == 5 or len(sender.sent) == 5)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    assert sorted(sender.sent) == sorted(ids)
    assert (await store.stats(None)).completed == 5


async def test_a_send_cut_off_at_the_end_of_the_grace_is_recorded_as_ambiguous(
    engine: AsyncEngine,
) -> None:
    # Its provider was being asked when the grace ran out: it may have taken the
    # message, so the SMS is not handed back to be sent again; an operator decides.
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender(delay=30)
    dispatcher = _dispatcher(store, sender, grace=0.1)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: bool(dispatcher._route._asking))
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.FAILED and job.attempts == 1
    assert job.error_type is not None and job.error_type.value == "ambiguous"
    assert job.last_error is not None and job.last_error.startswith("cut off at shutdown")
    [attempt] = (await store.history([job_id]))[job_id]
    assert (attempt.outcome.value, attempt.provider) == ("ambiguous_error", "scripted")
    assert not dispatcher._route._asking


class WaitingSlots:
    """A rate limit whose send slot never comes: jobs wait before any provider is asked."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()

    def paused_for(self, provider: str) -> timedelta:
        return timedelta(0)

    async def refresh(self, force: bool = False) -> None:
        return None

    async def acquire(self, provider: str) -> timedelta | None:
        self.waiting.set()
        await asyncio.Event().wait()
        return None


async def test_a_send_cut_off_before_any_provider_was_asked_goes_back_untouched(
    engine: AsyncEngine,
) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender()
    slots = WaitingSlots()
    dispatcher = _dispatcher(store, sender, Guards(slots=slots), grace=0.1)  # type: ignore[arg-type]
    task = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(slots.waiting.wait(), 5)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0
    assert (await store.history([job_id]))[job_id] == []
    assert sender.sent == []


async def test_no_job_is_claimed_after_stop(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    dispatcher = _dispatcher(store, ScriptedSender())
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.05)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    await _enqueue(store, 3)
    assert (await store.stats(None)).pending == 3


class SlowRecordingStore(SqlJobStore):
    """Records results only once ``recording`` is set."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.recording = asyncio.Event()

    async def record_results(self, results: Sequence[WorkerResult]) -> list[bool]:
        await self.recording.wait()
        return await super().record_results(results)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_next_claim_does_not_wait_for_the_last_results_to_be_recorded(
    engine: AsyncEngine,
) -> None:
    store = SlowRecordingStore(engine)
    ids = await _enqueue(store, 50)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, concurrency=10, batch_size=10)
    task = asyncio.create_task(dispatcher.run())
    # The first ten are sent and wait to be recorded; their slots are free meanwhile.
    await _until(lambda: len(sender.sent) >= 20)
    await asyncio.sleep(0.2)
    # No further: a worker holds at most twice its concurrency unrecorded, plus the one
    # batch it claimed ahead; every job it holds has been sent.
    assert len(sender.sent) == dispatcher.in_flight <= 30
    assert (await store.stats(None)).processing == dispatcher.in_flight
    store.recording.set()
    await _until(lambda: len(sender.sent) == 50 and dispatcher.in_flight == 0)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    assert sorted(sender.sent) == sorted(ids)
    assert (await store.stats(None)).completed == 50


async def _states(store: SqlJobStore, ids: list[str]) -> list[tuple[JobStatus, int]]:
    """(status, attempts) of each job, as stored now."""
    jobs = [await store.find_job(job_id, None) for job_id in ids]
    return [(job.status, job.attempts) for job in jobs if job is not None]


class SlowClaimingStore(SqlJobStore):
    """Claims only once ``claiming`` is set."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.claiming = asyncio.Event()
        self.asked = asyncio.Event()

    async def claim_to_send(self, *args: Any, **kwargs: Any) -> ClaimedJobs:
        self.asked.set()
        await self.claiming.wait()
        return await super().claim_to_send(*args, **kwargs)


async def test_a_claim_that_comes_back_after_stop_sends_nothing(engine: AsyncEngine) -> None:
    store = SlowClaimingStore(engine)
    ids = await _enqueue(store, 5)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(store.asked.wait(), 2)
    dispatcher.stop()
    store.claiming.set()
    await asyncio.wait_for(task, 2)
    assert sender.sent == []
    assert await _states(store, ids) == [(JobStatus.PENDING, 0)] * 5


class GatedSender(ScriptedSender):
    """Holds every send until ``open`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.started: list[str] = []

    async def send(self, job: Job) -> SendResult:
        self.started.append(job.id)
        await self.open.wait()
        return await super().send(job)


async def test_a_full_claim_is_followed_at_once_by_the_next_whose_jobs_wait_for_a_slot(
    engine: AsyncEngine,
) -> None:
    store = SqlJobStore(engine)
    ids = await _enqueue(store, 30)
    sender = GatedSender()
    dispatcher = _dispatcher(store, sender, concurrency=10, batch_size=10)
    task = asyncio.create_task(dispatcher.run())
    # Ten sends hang; the next ten are claimed meanwhile and wait, unsent, for a slot.
    await _until(lambda: dispatcher.in_flight == 20)
    await asyncio.sleep(0.1)
    assert (len(sender.started), dispatcher.in_flight) == (10, 20)
    assert (await store.stats(None)).processing == 20
    sender.open.set()
    await _until(lambda: len(sender.sent) == 30 and dispatcher.in_flight == 0)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    assert sorted(sender.sent) == sorted(ids)
    assert (await store.stats(None)).completed == 30


async def test_stopping_releases_the_jobs_claimed_ahead_unsent(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    ids = await _enqueue(store, 20)
    sender = GatedSender()
    dispatcher = _dispatcher(store, sender, concurrency=10, batch_size=10, grace=5.0)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: dispatcher.in_flight == 20)
    dispatcher.stop()
    await asyncio.sleep(0.1)
    sender.open.set()
    await asyncio.wait_for(task, 2)
    # The ten that were sending finish; the ten waiting for a slot go back, untouched.
    assert len(sender.sent) == 10
    stats = await store.stats(None)
    assert (stats.completed, stats.pending, stats.processing) == (10, 10, 0)
    unsent = [job_id for job_id in ids if job_id not in sender.sent]
    assert await _states(store, unsent) == [(JobStatus.PENDING, 0)] * 10


async def test_with_a_single_writer_the_next_claim_waits_for_the_results(
    engine: AsyncEngine,
) -> None:
    store = SlowRecordingStore(engine)
    ids = await _enqueue(store, 20)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, concurrency=10, batch_size=10, overlap_claims=False)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: len(sender.sent) == 10)
    await asyncio.sleep(0.2)
    assert (len(sender.sent), dispatcher.in_flight) == (10, 10)
    store.recording.set()
    await _until(lambda: len(sender.sent) == 20 and dispatcher.in_flight == 0)
    dispatcher.stop()
    await asyncio.wait_for(task, 2)
    assert sorted(sender.sent) == sorted(ids)


class _ClaimsAfterTheSendsEnd:
    """The real store, whose second claim answers only once the sends in flight have ended.

    The last send then ends, and sets the slot event, while the pass is claiming: the pass
    resumes before the ended task has left the dispatcher's task set.
    """

    def __init__(self, store: SqlJobStore) -> None:
        self._store = store
        self.dispatcher: Dispatcher | None = None
        self.claims = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim_to_send(self, *args: Any, **kwargs: Any) -> ClaimedJobs:
        self.claims += 1
        if self.claims == 2:
            assert self.dispatcher is not None
            # One loop round at a time on purpose: this claim then resumes right after the
            # last send's task ends, before that task's removal from the set runs.
            while self.dispatcher.in_flight:  # noqa: ASYNC110
                await asyncio.sleep(0)
            return ClaimedJobs([])
        return await self._store.claim_to_send(*args, **kwargs)


async def test_a_pass_ends_when_its_last_send_ends_while_it_claims_again(
    engine: AsyncEngine,
) -> None:
    store = _ClaimsAfterTheSendsEnd(SqlJobStore(engine))
    await _enqueue(store._store)
    dispatcher = _dispatcher(store, ScriptedSender())  # type: ignore[arg-type]
    store.dispatcher = dispatcher

    # Before: it waited for a slot event that no running send was left to set.
    sent = await asyncio.wait_for(dispatcher.drain(), timeout=5)

    assert sent == 1
    assert store.claims >= 2


async def test_stop_with_every_slot_busy_ends_within_the_grace(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    ids = await _enqueue(store, 2)
    sender = GatedSender()  # never opened: the send hangs
    dispatcher = _dispatcher(store, sender, concurrency=1, batch_size=1, grace=0.1)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: len(sender.started) == 1 and dispatcher.in_flight == 2)

    # Before: the loop waited for a slot, so the grace began only once the send ended.
    dispatcher.stop()
    await asyncio.wait_for(task, 2)

    # The hung send is cut off as ambiguous; the job waiting for a slot goes back.
    [asked] = sender.started
    [waited] = [job_id for job_id in ids if job_id != asked]
    assert await _states(store, [asked, waited]) == [(JobStatus.FAILED, 1), (JobStatus.PENDING, 0)]


async def test_a_worker_claims_ahead_at_most_its_concurrency(engine: AsyncEngine) -> None:
    store = SlowClaimingStore(engine)
    store.claiming.set()
    await _enqueue(store, 40)
    sender = GatedSender()
    dispatcher = _dispatcher(store, sender, concurrency=4, batch_size=10)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: len(sender.started) == 4 and dispatcher.in_flight >= 8)
    # The loop waits for a slot now; a claim still under way would have asked already.
    await asyncio.sleep(0.1)

    # Before: the claim ahead took a whole batch (10), which other workers could have sent.
    assert dispatcher.in_flight == 8
    assert (await store.stats(None)).processing == 8
    dispatcher.stop()
    sender.open.set()
    await asyncio.wait_for(task, 2)


class FlakyRecordingStore(SqlJobStore):
    """Fails its first ``failures`` result writes as a database that went away would."""

    def __init__(self, engine: AsyncEngine, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures

    async def record_results(self, results: Sequence[WorkerResult]) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("server closed the connection unexpectedly")
        return await super().record_results(results)


async def test_a_result_the_database_refused_once_is_written_again_not_sent_again(
    engine: AsyncEngine,
) -> None:
    store = FlakyRecordingStore(engine, failures=2)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender()

    await _dispatcher(store, sender).run(until_idle=True)

    # Before: the result was dropped, the job stayed processing until its lease ran
    # out, and was then sent again.
    job = await store.find_job(job_id, None)
    assert job is not None and (job.status, job.attempts) == (JobStatus.COMPLETED, 1)
    assert sender.sent == [job_id]
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["succeeded"]


async def test_a_result_the_database_refuses_for_a_whole_lease_is_left_to_the_lease(
    engine: AsyncEngine,
) -> None:
    store = FlakyRecordingStore(engine, failures=1_000)
    [job_id] = await _enqueue(store)
    dispatcher = _dispatcher(store, ScriptedSender(), lease=timedelta(seconds=0.3))

    await asyncio.wait_for(dispatcher.run(until_idle=True), 5)

    job = await store.find_job(job_id, None)
    assert job is not None and job.status is JobStatus.PROCESSING
    assert dispatcher.in_flight == 0


async def test_a_pass_keeps_the_leases_of_its_slow_sends_alive(engine: AsyncEngine) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    sender = GatedSender()
    dispatcher = _dispatcher(store, sender, lease=timedelta(seconds=0.5))
    drained = asyncio.create_task(dispatcher.drain())
    await _until(lambda: sender.started == [job_id])
    await asyncio.sleep(2.0)  # four leases

    # Before: a process-now pass never extended its leases; any worker's reclaimer took
    # the job back while it was being sent, and another worker sent it again.
    assert await store.reclaim_expired() == 0
    sender.open.set()
    assert await asyncio.wait_for(drained, 5) == 1
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["succeeded"]


async def test_a_job_sent_before_the_grace_ended_is_not_given_back_unrecorded(
    engine: AsyncEngine,
) -> None:
    store = SlowRecordingStore(engine)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, grace=0.1)
    task = asyncio.create_task(dispatcher.run())
    await _until(lambda: sender.sent == [job_id])
    dispatcher.stop()
    await asyncio.wait_for(task, 2)

    # Before: the grace ended while the result was being written and the job was
    # released: pending again, no attempt on record, and sent again by the next worker.
    assert await _states(store, [job_id]) == [(JobStatus.PROCESSING, 1)]
    store.recording.set()  # the write goes on with its batch
    for _ in range(200):
        if await _states(store, [job_id]) == [(JobStatus.COMPLETED, 1)]:
            break
        await asyncio.sleep(0.01)
    assert await _states(store, [job_id]) == [(JobStatus.COMPLETED, 1)]
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["succeeded"]


async def test_a_refused_result_is_written_again_soon_even_if_the_poll_is_as_long_as_the_lease(
    engine: AsyncEngine,
) -> None:
    # A long poll interval suits workers woken by LISTEN; the result's retries must not
    # wait for it.
    store = FlakyRecordingStore(engine, failures=1)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, poll_interval=1.0, lease=timedelta(seconds=1))

    await asyncio.wait_for(dispatcher.run(until_idle=True), 10)

    # Before: the first retry would have come after the poll interval, past the lease, so
    # there was none: the result was dropped and the job sent again once the lease ran out.
    assert await _states(store, [job_id]) == [(JobStatus.COMPLETED, 1)]
    assert sender.sent == [job_id]


class FailsFirstClaimStore(SqlJobStore):
    """Its first claim fails as a database that went away would."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.failed = asyncio.Event()

    async def claim_to_send(self, *args: Any, **kwargs: Any) -> ClaimedJobs:
        if not self.failed.is_set():
            self.failed.set()
            raise ConnectionError("connection refused")
        return await super().claim_to_send(*args, **kwargs)


async def test_after_a_failed_claim_the_next_wakeup_brings_the_next_claim(
    engine: AsyncEngine,
) -> None:
    store = FailsFirstClaimStore(engine)
    [job_id] = await _enqueue(store)
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, poll_interval=60.0)
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.wait_for(store.failed.wait(), 5)
        # What a LISTEN connection does when the database is back.
        await dispatcher._wakeup.notify()

        # Before: the failed claim waited for a wakeup, and the loop then waited again,
        # a whole poll interval, with the job due.
        await _until(lambda: sender.sent == [job_id])
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 5)


async def test_jobs_reclaimed_from_a_dead_worker_are_sent_without_waiting_for_the_poll(
    engine: AsyncEngine,
) -> None:
    store = SqlJobStore(engine)
    [job_id] = await _enqueue(store)
    await store.claim("dead-worker", 1, timedelta(seconds=0.3))
    sender = ScriptedSender()
    dispatcher = _dispatcher(store, sender, poll_interval=60.0, lease=timedelta(seconds=0.3))
    task = asyncio.create_task(dispatcher.run())
    try:
        # Before: the worker that reclaimed the job went back to its idle wait, and the
        # job waited for the next poll.
        await _until(lambda: sender.sent == [job_id])
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 5)
    history = (await store.history([job_id]))[job_id]
    assert [a.outcome.value for a in history] == ["lost", "succeeded"]
