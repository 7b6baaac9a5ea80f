"""The worker loop: claim due jobs, send them concurrently, record every attempt.

Sending itself (failover order, circuits, send slots, suppressions) is the
FailoverRoute's; the loop claims only channels that some provider can take
now, and records what the route reports.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from commq.application.failover import Deferred, FailoverRoute, Gate, Guards
from commq.application.group_commit import GroupCommit
from commq.application.ports import (
    AttemptReport,
    Clock,
    DispatchObserver,
    DispatchStore,
    Sender,
    Wakeup,
    WorkerResult,
)
from commq.domain.jobs import Channel, Job
from commq.domain.outcomes import decide
from commq.domain.retry import RetryPolicy

log = logging.getLogger("commq.worker")

#: Seconds before a result write the database refused is tried again (then twice as
#: long each time, up to a third of the lease). A connection the server closed is
#: replaced on the next try; a server that is down is asked a handful of times.
FIRST_RESULT_RETRY = 0.1
#: A job whose provider's circuit or pause could not be read (the database failed)
#: goes back unsent, due again this much later.
UNCHECKED_RETRY = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How a worker claims and sends."""

    #: Sends in flight at once.
    concurrency: int = 100
    #: Most jobs claimed in one query.
    batch_size: int = 100
    lease: timedelta = timedelta(seconds=60)
    #: Longest idle wait before looking for due jobs again (wakeups come sooner).
    poll_interval: float = 1.0
    #: How often expired leases of dead workers are reclaimed (at least every quarter
    #: of the lease, so a short lease is taken back soon after it runs out).
    reclaim_interval: float = 15.0
    #: After stop(): how long in-flight sends may finish. Then a job no provider was
    #: asked about goes back untouched and a send cut off mid-ask is ambiguous.
    grace: float = 10.0
    #: Overlap claims with the worker's other work: claim again while finished sends
    #: are still being recorded (up to ``concurrency`` of them), and when a claim comes
    #: back full, make the next one at once, while its jobs are screened and sent (they
    #: then wait, under their lease, for a send slot). Worth it where claims and result
    #: writes run side by side (PostgreSQL); with a single writer (SQLite) it only
    #: splits the results into more commits.
    overlap_claims: bool = True


class Dispatcher:
    """Claims jobs under leases, sends them through the channel's providers, records results.

    ``senders`` maps each channel to its providers in failover order (a single
    sender is a list of one). Leases are extended every third of their length
    while sends run, and a result is written only while the lease is still
    this worker's own.
    """

    def __init__(
        self,
        store: DispatchStore,
        senders: Mapping[Channel, Sender | Sequence[Sender]],
        wakeup: Wakeup,
        clock: Clock,
        policy: RetryPolicy,
        settings: DispatchSettings,
        worker_id: str,
        jitter: Callable[[], float] = random.random,
        observer: DispatchObserver | None = None,
        guards: Guards | None = None,
    ) -> None:
        self._store = store
        self._guards = guards or Guards()
        self._route = FailoverRoute(
            _in_failover_order(senders), self._guards, clock, self._attempt_finished
        )
        self._wakeup = wakeup
        self._clock = clock
        self._policy = policy
        self._settings = settings
        self._worker_id = worker_id
        self._jitter = jitter
        self._observer = observer
        # Results finished together are written together: one transaction per batch.
        self._results: GroupCommit[WorkerResult, bool] = GroupCommit(store.record_results)
        # A claim costs a transaction whatever its size: wait until a fair share of
        # the slots is free rather than claiming one job per finished send.
        self._claim_at = max(1, min(settings.batch_size, settings.concurrency) // 2)
        # Claimed and not yet recorded (their leases are kept alive)...
        self._in_flight: dict[str, Job] = {}
        # ...of which this many are still sending: a job's slot frees when its send
        # ends, so the next claim runs while the finished sends are being recorded.
        self._sending = 0
        # ...and of which these wait for a send slot (claimed ahead).
        self._queued: collections.deque[Job] = collections.deque()
        self._ahead: asyncio.Task[tuple[int, bool]] | None = None
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Jobs this worker holds right now."""
        return len(self._in_flight)

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once in-flight sends finish or the grace ends."""
        self._stopping.set()
        # A loop waiting for a slot (every one busy) would otherwise notice only when a
        # send ends, and the grace would start from then rather than from now.
        self._slot_freed.set()

    async def run(self, until_idle: bool = False) -> int:
        """Work until stop() (or, with ``until_idle``, until nothing is due). Returns jobs sent."""
        sent = 0
        extender = asyncio.create_task(self._extend_leases_forever())
        reclaimer = asyncio.create_task(self._reclaim_forever())
        try:
            while not self._stopping.is_set():
                if self._full():
                    await self._until_slot_freed()
                    continue
                claimed = await self._claim_into_free_slots(None, self._settings.overlap_claims)
                sent += claimed
                if claimed:
                    continue
                if until_idle and not self._tasks:
                    break
                if self._observer is not None:
                    self._observer.heartbeat(self._worker_id, len(self._in_flight))
                await self._idle()
        finally:
            await self._give_back_unsent()
            await self._finish_in_flight()
            for task in (extender, reclaimer):
                task.cancel()
            await asyncio.gather(extender, reclaimer, return_exceptions=True)
        return sent

    async def drain(self, business_id: str | None = None, limit: int = 10_000) -> int:
        """One dispatch pass: send due jobs (of one business) until none is due; returns count.

        The pass keeps its leases alive as ``run`` does: a send outlasting a lease
        would otherwise be reclaimed by a worker and sent a second time.
        """
        sent = 0
        extender = asyncio.create_task(self._extend_leases_forever())
        try:
            while sent < limit and not self._stopping.is_set():
                claimed = 0 if self._full() else await self._claim_into_free_slots(business_id)
                if not claimed and not self._tasks:
                    break
                sent += claimed
                if not claimed:
                    await self._until_slot_freed()
            await self._give_back_unsent()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            extender.cancel()
            await asyncio.gather(extender, return_exceptions=True)
        return sent

    def _full(self) -> bool:
        # Recording may lag sending by at most one more worker's worth of jobs.
        backlog = len(self._in_flight) >= 2 * self._settings.concurrency
        return (self._free() < self._claim_at or backlog) and bool(self._tasks)

    def _free(self) -> int:
        if self._settings.overlap_claims:
            held = self._sending + len(self._queued)
        else:
            held = len(self._in_flight)
        return self._settings.concurrency - held

    async def _until_slot_freed(self) -> None:
        # Set whenever a send ends or a job leaves _in_flight, both before its task ends.
        self._slot_freed.clear()
        if all(task.done() for task in self._tasks):
            # Every task has ended (their removal from _tasks is still queued): none is
            # left to set the event, which the last one may have set just before. Let the
            # removals run instead; waiting here hung a pass (process-now) for good.
            await asyncio.sleep(0)
            return
        await self._slot_freed.wait()

    async def _claim_into_free_slots(self, business_id: str | None, ahead: bool = False) -> int:
        """Claim into the free slots and start the jobs; returns how many were claimed.

        With ``ahead``, a claim that came back full starts the next one at once, in the
        background: it is under way while these jobs are screened and sent, and the
        next call waits for it instead of claiming again.
        """
        claiming, self._ahead = self._ahead, None
        if claiming is None:
            claimed, full = await self._claim_and_start(
                business_id, min(self._free(), self._settings.batch_size)
            )
        else:
            claimed, full = await claiming
        if ahead and full and not self._stopping.is_set():
            # At most one worker's worth ahead: a bigger batch would wait here for slots
            # while other workers, which could send it now, find nothing to claim.
            most = min(self._settings.batch_size, self._settings.concurrency)
            self._ahead = asyncio.create_task(self._claim_and_start(business_id, most))
        return claimed

    async def _claim_and_start(self, business_id: str | None, limit: int) -> tuple[int, bool]:
        """Claim up to ``limit`` jobs and start (or queue) them: (claimed, all of limit)."""
        try:
            jobs, unsuppressed = await self._claim(business_id, limit)
        except Exception:
            # No wait here: the caller waits as after an empty claim. Waiting in both
            # places spent the wakeup of a database that came back on the first wait,
            # and the worker then idled a whole poll interval more with a backlog.
            log.exception("claim failed; retrying after the poll interval")
            return 0, False
        for job in await self._route.screen(jobs, unsuppressed):
            self._start(job)
        return len(jobs), len(jobs) >= limit > 0

    async def _claim(self, business_id: str | None, limit: int) -> tuple[list[Job], set[str]]:
        """Claim jobs of the channels that can send now; one at a time where only a probe can.

        Also returns the ids of the jobs the claim found on no suppression list.
        """
        await self._route.refresh()
        gates = {channel: self._route.gate(channel) for channel in Channel}
        waiting = {channel for channel, gate in gates.items() if gate is not Gate.OPEN}
        jobs: list[Job] = []
        unsuppressed: set[str] = set()
        # (channels left pending, most jobs): the channels that can send, then a probe each.
        claims: list[tuple[Collection[Channel], int]] = []
        if len(waiting) < len(gates):
            claims.append((waiting, limit))
        probing = [c for c, gate in gates.items() if gate is Gate.PROBE]
        claims += [(set(Channel) - {channel}, 1) for channel in probing]
        for skipped, most in claims:
            room = min(most, limit - len(jobs))
            if room <= 0:
                break
            claimed = await self._store.claim_to_send(
                self._worker_id, room, self._settings.lease, business_id, skipped
            )
            jobs += claimed.jobs
            unsuppressed |= claimed.unsuppressed
        return jobs, unsuppressed

    def _start(self, job: Job) -> None:
        self._in_flight[job.id] = job
        # A claim that came back after stop() sends nothing: its jobs are given back.
        if self._sending >= self._settings.concurrency or self._stopping.is_set():
            self._queued.append(job)
        else:
            self._send(job)

    def _send(self, job: Job) -> None:
        self._sending += 1
        task = asyncio.create_task(self._process(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _idle(self) -> None:
        waiter = asyncio.create_task(self._wakeup.wait(self._settings.poll_interval))
        stopper = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopper):
            task.cancel()
        await asyncio.gather(waiter, stopper, return_exceptions=True)

    async def _process(self, job: Job) -> None:
        sent = False
        try:
            try:
                step = await self._route.send(job)
            except Exception:
                step = self._unchecked(job)
            finally:
                # The send's slot is free; recording the result does not hold it.
                self._sending -= 1
                if self._queued and not self._stopping.is_set():
                    self._send(self._queued.popleft())
                self._slot_freed.set()
            if isinstance(step, Deferred):
                await self._defer(job, step)
            else:
                sent = True
                await self._finish(job, step.report)
        except asyncio.CancelledError:
            # A job that went out is not given back, which would send it again with no
            # trace of the first send: its result is still written with its batch, or
            # else its lease runs out and the attempt is recorded as lost. One cut off
            # while its provider was being asked is recorded as ambiguous; one that no
            # provider was asked about yet goes back untouched.
            if not sent:
                cut = self._route.cut_off(job.id)
                await (self._release(job) if cut is None else self._record_cut_off(job, cut))
            raise
        except Exception:
            log.exception("job %s: could not record its outcome; the lease will expire", job.id)
        finally:
            self._in_flight.pop(job.id, None)
            self._slot_freed.set()

    def _unchecked(self, job: Job) -> Deferred:
        """The route raised, so no provider took the job: it goes back unsent.

        Senders' errors are attempts of their own and the route notes answers without
        raising, so what failed is a guard reading the database before a provider was
        asked. Left to its lease, the job got a lost attempt and was marked maybe sent.
        """
        log.exception("job %s: could not check its provider's circuit or pause", job.id)
        return Deferred(UNCHECKED_RETRY, "waiting: the provider's circuit could not be checked")

    def _attempt_finished(self, job: Job, report: AttemptReport) -> None:
        if self._observer is not None:
            self._observer.attempt_finished(job, report)

    async def _finish(self, job: Job, report: AttemptReport) -> None:
        decision = decide(job, report.result, self._policy, self._jitter())
        result = WorkerResult(job, job.lease_token or "", decision, report)
        if not await self._until_written(job, partial(self._results.write, result)):
            log.warning("job %s: lease was taken over; result discarded", job.id)

    async def _until_written(self, job: Job, write: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``write`` (a compare-and-set under the job's lease), trying again for up to a
        lease while the database fails; its answer: whether the lease still held.

        A sent job's result dropped on a database blip would leave the job to its lease's
        expiry and send it again; an unsent job's give-back dropped would cost it an
        attempt and mark it maybe sent. The lease stays extended meanwhile. After a lease
        of failures the error is raised, and the job is left to the lease (no job held
        for good).
        """
        give_up_at = self._clock.now() + self._settings.lease
        # Not the poll interval: one as long as the lease (a long poll, for workers that
        # LISTEN) meant no second try at all, and the sent job went out again.
        wait = min(FIRST_RESULT_RETRY, self._settings.lease.total_seconds() / 3)
        while True:
            try:
                return await write()
            except Exception as exc:
                if self._clock.now() + timedelta(seconds=wait) >= give_up_at:
                    raise
                log.warning("job %s: could not record it (%s); trying again", job.id, exc)
            await asyncio.sleep(wait)
            wait = min(2 * wait, self._settings.lease.total_seconds() / 3)

    async def _defer(self, job: Job, step: Deferred) -> None:
        """No provider could take the job now: back to the queue, no attempt used."""
        held, token = self._guards.held, job.lease_token or ""
        give_back = (
            partial(self._store.release, job.id, token)
            if held is None
            else partial(held.defer, job.id, token, step.delay, step.reason)
        )
        if not await self._until_written(job, give_back):
            log.warning("job %s: lease was taken over before it was given back", job.id)

    async def _record_cut_off(self, job: Job, report: AttemptReport) -> None:
        decision = decide(job, report.result, self._policy, self._jitter())
        result = WorkerResult(job, job.lease_token or "", decision, report)
        try:
            await asyncio.shield(self._store.record_results([result]))
        except Exception:
            log.exception(
                "job %s: could not record the cut-off send; the lease will expire", job.id
            )

    async def _release(self, job: Job) -> None:
        try:
            await asyncio.shield(self._store.release(job.id, job.lease_token or ""))
        except Exception:
            log.exception("job %s: could not release; the lease will expire", job.id)

    async def _give_back_unsent(self) -> None:
        """Release the claimed jobs no send has taken (claimed ahead, or after stop())."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await ahead  # its jobs join the queue (it catches its own errors)
        while self._queued:
            job = self._queued.popleft()
            await self._release(job)
            self._in_flight.pop(job.id, None)

    async def _finish_in_flight(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._settings.grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _extend_leases_forever(self) -> None:
        period = self._settings.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            leases = [(j.id, j.lease_token or "") for j in self._in_flight.values()]
            if not leases:
                continue
            try:
                await self._store.extend_leases(leases, self._settings.lease)
            except Exception:
                log.exception("could not extend leases")

    async def _reclaim_forever(self) -> None:
        every = min(self._settings.reclaim_interval, self._settings.lease.total_seconds() / 4)
        while True:
            try:
                reclaimed = await self._store.reclaim_expired()
                if reclaimed:
                    log.warning("reclaimed %d jobs whose worker stopped reporting", reclaimed)
                    # They are due now: idle workers (this one too) would otherwise
                    # leave them until their next poll.
                    await self._wakeup.notify()
            except Exception:
                log.exception("could not reclaim expired leases")
            await asyncio.sleep(every)


def _in_failover_order(
    senders: Mapping[Channel, Sender | Sequence[Sender]],
) -> dict[Channel, list[Sender]]:
    return {
        channel: list(providers) if isinstance(providers, Sequence) else [providers]
        for channel, providers in senders.items()
    }
