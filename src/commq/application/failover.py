"""One claimed job through its channel's providers, in failover order.

For each provider in ``COMMQ_PROVIDERS`` order: skip it while its circuit is
open; wait for its send slot (a rate-limited provider makes the job wait, it
never fails over); send; feed the answer to its circuit. A provider fault
(blamed on the provider, not the message) passes the job to the next provider
in the same claim, and the faulted attempt stays in the history under its
provider's name without using up an attempt. When no provider can take the
job now, it goes back to the queue unsent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from commq.application.circuits import Admission, CircuitBreaker
from commq.application.ports import (
    AttemptReport,
    Clock,
    HeldJobStore,
    Sender,
    SuppressionStore,
)
from commq.application.ratelimits import SendSlots
from commq.domain.circuit import ANY_BUSINESS
from commq.domain.jobs import AttemptOutcome, Channel, Job
from commq.domain.outcomes import Blame, SendOutcome, SendResult
from commq.domain.suppression import suppression_error, suppression_from_result

log = logging.getLogger("commq.worker")

#: A provider that answers 429 without saying for how long is left alone this long.
DEFAULT_PAUSE = timedelta(seconds=1)

_FAULTED_OUTCOME = {
    SendOutcome.TRANSIENT: AttemptOutcome.TRANSIENT_ERROR,
    SendOutcome.PERMANENT: AttemptOutcome.PERMANENT_ERROR,
}

AttemptHook = Callable[[Job, AttemptReport], None]


@dataclass(frozen=True, slots=True)
class Guards:
    """What stands between a claimed job and its providers (each part optional)."""

    circuits: CircuitBreaker | None = None
    slots: SendSlots | None = None
    held: HeldJobStore | None = None
    suppressions: SuppressionStore | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """The job's last attempt; its result decides the job's next state."""

    report: AttemptReport


@dataclass(frozen=True, slots=True)
class Deferred:
    """Nothing could be sent now: the job goes back unsent for ``delay``."""

    delay: timedelta
    reason: str


Step = Finished | Deferred


class Gate(StrEnum):
    """Whether a worker should claim a channel's jobs."""

    #: A provider can send: claim as usual.
    OPEN = "open"
    #: Only a half-open probe can go: claim one job at a time.
    PROBE = "probe"
    #: Every provider is down or paused: leave the jobs pending.
    BLOCKED = "blocked"


def fails_over(result: SendResult) -> bool:
    """A provider fault that the next provider may retry at once (never an ambiguous one)."""
    return result.blame is Blame.PROVIDER and result.outcome in _FAULTED_OUTCOME


class FailoverRoute:
    """Sends claimed jobs through their channel's providers, guarded and in order."""

    def __init__(
        self,
        senders: Mapping[Channel, Sequence[Sender]],
        guards: Guards,
        clock: Clock,
        on_attempt: AttemptHook | None = None,
    ) -> None:
        self._senders = senders
        self._guards = guards
        self._clock = clock
        self._on_attempt = on_attempt
        #: Jobs whose provider is being asked right now: the provider and the ask's start.
        #: A send cancelled there (shutdown) stays listed for ``cut_off`` to report.
        self._asking: dict[str, tuple[str, datetime]] = {}

    async def refresh(self) -> None:
        """Bring the shared circuit and pause state up to date (cheap when it is fresh)."""
        reads = [g.refresh() for g in (self._guards.circuits, self._guards.slots) if g is not None]
        await asyncio.gather(*reads)

    def gate(self, channel: Channel) -> Gate:
        """Whether the channel's shared circuits and pauses let its jobs be claimed."""
        senders = self._senders.get(channel, ())
        if not senders:
            return Gate.OPEN  # claimed, its jobs fail: no provider is configured
        probing = False
        for sender in senders:
            wait = self._circuit_wait(sender.name, ANY_BUSINESS)
            if wait is None:
                if not self._paused(sender.name):
                    return Gate.OPEN
                break  # rate-limited: its jobs wait rather than fail over
            probing = probing or wait == timedelta(0)
        return Gate.PROBE if probing else Gate.BLOCKED

    async def screen(self, jobs: list[Job], unsuppressed: Collection[str] = ()) -> list[Job]:
        """Fail the jobs whose recipients are suppressed, unsent; returns the others.

        Jobs in ``unsuppressed`` (the claim found them on no list) are not looked up again.
        """
        store, held = self._guards.suppressions, self._guards.held
        unknown = [job for job in jobs if job.id not in unsuppressed]
        if store is None or held is None or not unknown:
            return jobs
        try:
            found = await store.find_suppressions(unknown)
        except Exception:
            log.exception("could not read suppressions; sending without the check")
            return jobs
        for job in (j for j in jobs if j.id in found):
            try:
                await held.fail_unsent(
                    job.id, job.lease_token or "", suppression_error(found[job.id])
                )
            except Exception:
                # Never sent either way; its lease runs out and the next claim fails it.
                log.exception("job %s: could not fail it as suppressed", job.id)
        return [job for job in jobs if job.id not in found]

    async def send(self, job: Job) -> Step:
        """Send ``job`` through the first provider that can take it now."""
        senders = self._senders.get(job.channel, ())
        if not senders:
            error = f"no provider configured for {job.channel}"
            return Finished(self._report(SendResult(SendOutcome.PERMANENT, "none", error=error)))
        faulted: AttemptReport | None = None
        for sender in senders:
            step = await self._try(job, sender, faulted)
            if isinstance(step, AttemptReport):
                faulted = step
            elif step is not None:
                return step
        if faulted is not None:
            return Finished(faulted)
        return self._all_down(job, senders)

    async def _try(
        self, job: Job, sender: Sender, faulted: AttemptReport | None
    ) -> Step | AttemptReport | None:
        """One provider: a Step ends the job's turn; a report is a fault to fail over from."""
        scope = self._scope(sender.name, job.business_id)
        admission = await self._admit(sender.name, scope, job.id)
        if admission is Admission.SKIP:
            return None
        wait = await self._slot(sender.name)
        if wait is not None:
            if admission is Admission.PROBE and self._guards.circuits is not None:
                await self._guards.circuits.abandon_probe(sender.name, scope, job.id)
            if faulted is not None:
                return Finished(faulted)
            return Deferred(wait, f"waiting: {sender.name} is rate-limited")
        if admission is Admission.SEND and await self._opened_meanwhile(sender.name, scope):
            return None  # it went down while the job waited for its slot: fail over
        if faulted is not None and not await self._keep_faulted(job, faulted):
            return Finished(faulted)  # the lease is gone: recording will say so
        report = await self._attempt(job, sender)
        await self._learn(job, scope, admission, report)
        return report if fails_over(report.result) else Finished(report)

    async def _admit(self, provider: str, scope: str, job_id: str) -> Admission:
        if self._guards.circuits is None:
            return Admission.SEND
        return await self._guards.circuits.admit(provider, scope, job_id)

    async def _opened_meanwhile(self, provider: str, scope: str) -> bool:
        circuits = self._guards.circuits
        if circuits is None:
            return False
        if circuits.stale():
            await circuits.refresh()
        return circuits.wait(provider, scope) is not None

    async def _slot(self, provider: str) -> timedelta | None:
        if self._guards.slots is None:
            return None
        return await self._guards.slots.acquire(provider)

    def cut_off(self, job_id: str) -> AttemptReport | None:
        """The attempt of a send cancelled while its provider was being asked, or None.

        The provider may have taken the message before the cancellation (shutdown's
        grace ran out), so the attempt is ambiguous, as a timeout after the request
        went out is. A job cancelled before any provider was asked gets None.
        """
        asking = self._asking.pop(job_id, None)
        if asking is None:
            return None
        provider, started = asking
        error = "cut off at shutdown while the provider was being asked; it may have taken it"
        return AttemptReport(
            started, self._clock.now(), SendResult(SendOutcome.AMBIGUOUS, provider, error=error)
        )

    async def _attempt(self, job: Job, sender: Sender) -> AttemptReport:
        started = self._clock.now()
        self._asking[job.id] = (sender.name, started)
        try:
            result = await sender.send(job)
        except Exception as exc:
            # A sender bug must not kill the worker. Senders classify every answer they
            # know; an exception nobody classified may come after the provider took the
            # message, so it is ambiguous: e-mail and SMS are not sent again on their own.
            result = SendResult(
                SendOutcome.AMBIGUOUS, sender.name, error=f"{type(exc).__name__}: {exc}"
            )
        del self._asking[job.id]  # not in a finally: a cancelled ask stays for cut_off
        report = AttemptReport(started, self._clock.now(), result)
        if self._on_attempt is not None:
            self._on_attempt(job, report)
        return report

    async def _learn(
        self, job: Job, scope: str, admission: Admission, report: AttemptReport
    ) -> None:
        """Tell the circuit, pause a provider that asked us to slow down, note a STOP.

        Never raises: the provider has answered (it may have taken the message), and that
        answer must still be recorded. Raising here dropped it when the database failed,
        and the job was sent again once its lease ran out. A circuit change, pause or STOP
        not noted now is noted at the provider's next such answer.
        """
        try:
            await self._note(job, scope, admission, report)
        except Exception:
            log.exception(
                "job %s: could not note %s's answer (circuit, pause or STOP); recording it",
                job.id,
                report.result.provider,
            )

    async def _note(
        self, job: Job, scope: str, admission: Admission, report: AttemptReport
    ) -> None:
        result = report.result
        guards = self._guards
        if guards.circuits is not None:
            await guards.circuits.record(result.provider, scope, result, admission, job.id)
        if result.blame is Blame.RATE_LIMIT and guards.slots is not None:
            await guards.slots.pause(result.provider, result.retry_after or DEFAULT_PAUSE)
        suppression = suppression_from_result(job, result)
        if suppression is not None and guards.suppressions is not None:
            await guards.suppressions.add_suppression(suppression)

    async def _keep_faulted(self, job: Job, faulted: AttemptReport) -> bool:
        """Write the faulted attempt to the history before the next provider's."""
        if self._guards.held is None:
            return True
        outcome = _FAULTED_OUTCOME[faulted.result.outcome]
        return await self._guards.held.record_attempt(job, job.lease_token or "", outcome, faulted)

    def _all_down(self, job: Job, senders: Iterable[Sender]) -> Deferred:
        names = [s.name for s in senders]
        waits = [self._circuit_wait(n, self._scope(n, job.business_id)) for n in names]
        delay = min((w for w in waits if w is not None), default=timedelta(0))
        reason = f"waiting: every {job.channel} provider is unavailable ({', '.join(names)})"
        return Deferred(max(delay, timedelta(milliseconds=50)), reason)

    def _scope(self, provider: str, business_id: str) -> str:
        circuits = self._guards.circuits
        return ANY_BUSINESS if circuits is None else circuits.scope_of(provider, business_id)

    def _circuit_wait(self, provider: str, scope: str) -> timedelta | None:
        circuits = self._guards.circuits
        return None if circuits is None else circuits.wait(provider, scope)

    def _paused(self, provider: str) -> bool:
        slots = self._guards.slots
        return slots is not None and slots.paused_for(provider) > timedelta(0)

    def _report(self, result: SendResult) -> AttemptReport:
        now = self._clock.now()
        return AttemptReport(now, now, result)
