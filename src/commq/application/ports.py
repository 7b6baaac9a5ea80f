"""The ports the use cases need. Adapters implement them; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from commq.domain.alerts import Alert, AlertPolicy, HealthReading
from commq.domain.analytics import HistoryQuery, RollupSums
from commq.domain.audit import AuditEntry
from commq.domain.circuit import Circuit
from commq.domain.delivery import DeliveryEvent, EventEffect
from commq.domain.jobs import Attempt, AttemptOutcome, Channel, Job, NewJob, Page, QueueStats
from commq.domain.listing import JobFilter, PageRequest
from commq.domain.operations import AuditFilter, AuditPage
from commq.domain.outcomes import Decision, SendResult
from commq.domain.permissions import Role
from commq.domain.suppression import Suppression, SuppressionPage
from commq.domain.transitions import Action


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A stored job and whether this call created it (False: idempotency replay)."""

    job: Job
    created: bool


@dataclass(frozen=True, slots=True)
class AttemptReport:
    """What the worker observed of one attempt, for the job's history."""

    started_at: datetime
    finished_at: datetime
    result: SendResult


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """A worker's decision on one claimed job, to be recorded with its attempt."""

    job: Job
    lease_token: str
    decision: Decision
    report: AttemptReport


@dataclass(frozen=True, slots=True)
class ClaimedJobs:
    """Jobs a worker claimed, and which of them need no suppression lookup."""

    jobs: list[Job]
    #: Ids of the jobs whose recipients the claim itself found on no suppression list.
    unsuppressed: frozenset[str] = frozenset()


class JobStore(Protocol):
    """Durable jobs. Every change is a compare-and-set; times come from the database."""

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Store ``jobs`` all or nothing, in order.

        A job whose (business_id, idempotency_key) exists is not stored again:
        the existing job comes back with ``created=False``. ``run_at`` None
        means the database's now.
        """
        ...

    async def find_job(self, job_id: str, business_id: str | None) -> Job | None:
        """The job, or None if absent or of another business (None: any business)."""
        ...

    async def list_jobs(self, where: JobFilter, page: PageRequest) -> Page:
        """One keyset page; raises InvalidCursorError for a cursor it did not issue."""
        ...

    async def history(self, job_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Attempts of each job ordered by seq (jobs with none map to [])."""
        ...

    async def stats(self, business_id: str | None) -> QueueStats:
        """Counts by status and the health figures, for one business or all."""
        ...

    async def claim(
        self, worker_id: str, limit: int, lease: timedelta, business_id: str | None = None
    ) -> list[Job]:
        """Claim up to ``limit`` due pending jobs, highest priority then oldest runAt.

        Each claimed job becomes processing with attempts + 1, startedAt = now,
        a fresh lease_token and lease_expires_at = database now + ``lease``.
        No job is ever handed to two claimers.
        """
        ...

    async def extend_leases(self, leases: Sequence[tuple[str, str]], lease: timedelta) -> set[str]:
        """Push out the leases of (job_id, lease_token) pairs; returns the ids still held."""
        ...

    async def record_result(
        self, job: Job, lease_token: str, decision: Decision, report: AttemptReport
    ) -> bool:
        """Apply ``decision`` and append the attempt, if the lease is still ours.

        Returns False, changing nothing, when the lease was taken over.
        """
        ...

    async def record_results(self, results: Sequence[WorkerResult]) -> list[bool]:
        """``record_result`` for many jobs in one transaction; one flag per result, in order.

        Each result is applied or refused (lease taken over) on its own, so one
        stale worker result never holds back the others.
        """
        ...

    async def release(self, job_id: str, lease_token: str) -> bool:
        """Give back an unsent claimed job: pending again, its attempt not counted."""
        ...

    async def reclaim_expired(self) -> int:
        """Expired leases go back to pending (or failed when attempts are spent).

        Each is recorded as a ``lost`` attempt. Returns how many were reclaimed.
        """
        ...

    async def apply_action(self, job_id: str, action: Action, audit: AuditEntry) -> Job | None:
        """Retry, cancel or delete one job, with its audit event in the same transaction.

        ``audit.business_id`` scopes the lookup (None: any business). Returns the
        changed job (for delete, as it was), None if there is no such job, and
        raises InvalidTransitionError when its status does not allow ``action``.
        """
        ...

    async def record_audit(self, audit: AuditEntry) -> None:
        """Append an audit event on its own (for actions that change no job row)."""
        ...


class KeyStore(Protocol):
    """API keys, stored by hash and found by prefix."""

    async def create_key(self, key: StoredKey, audit: AuditEntry | None) -> None:
        """Store a new key, and its audit event when an operator created it."""
        ...

    async def find_key(self, prefix: str) -> StoredKey | None:
        """The key with this lookup prefix, or None."""
        ...

    async def count_keys(self) -> int:
        """How many keys exist (to know whether this is a first start)."""
        ...

    async def find_key_by_id(self, key_id: str) -> StoredKey | None:
        """The key with this id, or None."""
        ...

    async def list_keys(self, business_id: str | None) -> list[StoredKey]:
        """Every key, oldest first (``business_id`` given: only that business's keys)."""
        ...

    async def delete_key(self, key_id: str, audit: AuditEntry, *, keep_last_admin: bool) -> bool:
        """Delete the key and write ``audit`` in the same transaction.

        Returns False, writing nothing, when there is no such key. With
        ``keep_last_admin``, raises LastAdminKeyError instead of deleting the
        only admin platform key, judged under a lock so that two revokes at
        once cannot remove the last two.
        """
        ...


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An API key as stored: its hash, never the key itself."""

    id: str
    prefix: str
    secret_hash: str
    name: str
    role: Role
    business_id: str | None
    created_at: datetime | None = None


class Sender(Protocol):
    """Sends one job's message through one provider and classifies the answer."""

    name: str

    async def send(self, job: Job) -> SendResult:
        """Send; never raises for a provider's answer, only returns a classified result."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class Wakeup(Protocol):
    """Tells idle workers that work arrived (PostgreSQL NOTIFY; in-process event)."""

    async def notify(self) -> None:
        """Wake every waiting worker, in this process and others."""
        ...

    async def jobs_enqueued(self) -> None:
        """JobStore.enqueue just stored jobs: wake the workers its statement did not.

        (On PostgreSQL the store's INSERT notifies every process itself.)
        """
        ...

    async def wait(self, timeout: float) -> None:
        """Return when woken, or after ``timeout`` seconds."""
        ...


class Clock(Protocol):
    """The worker's wall clock, for attempt timestamps (never for leases or schedules)."""

    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class DispatchObserver(Protocol):
    """Watches the worker loop (metrics); every method must be cheap and must not raise."""

    def attempt_finished(self, job: Job, report: AttemptReport) -> None:
        """One send attempt ended (``job`` as claimed, so ``job.run_at`` gives queue wait)."""
        ...

    def heartbeat(self, worker_id: str, in_flight: int) -> None:
        """The worker is alive; called at least every poll interval."""
        ...


class AlertStore(Protocol):
    """Stored alerts, and the figures their rules read."""

    def evaluation_lock(self) -> AbstractAsyncContextManager[bool]:
        """Held while this process evaluates; yields False when another process holds it."""
        ...

    async def health(self, policy: AlertPolicy) -> HealthReading:
        """Per-business figures of the kinds ``policy`` watches, and the database's now."""
        ...

    async def firing_alerts(self) -> list[Alert]:
        """Every alert that is firing, of every business."""
        ...

    async def save_alert(self, alert: Alert) -> None:
        """Store ``alert``, replacing the stored alert of the same id."""
        ...

    async def list_alerts(self, business_id: str | None, resolved_within: timedelta) -> list[Alert]:
        """Firing alerts and those resolved within ``resolved_within``, newest first.

        ``business_id`` None: every alert; otherwise only that business's own.
        """
        ...


class AlertNotifier(Protocol):
    """Tells people about an alert that fired, repeats or resolved."""

    async def notify(self, alert: Alert) -> bool:
        """Send ``alert.message``; False (never an exception) when it did not get through."""
        ...


# ---- providers: send slots, circuit breakers, held jobs, suppressions, delivery events


@dataclass(frozen=True, slots=True)
class SlotGrant:
    """Send slots reserved for one provider, in epoch seconds of the database clock.

    ``count`` slots, one interval apart, the first at ``first_at``; ``now`` is
    when the database granted them. With ``count`` 0 none was free: ask again
    at ``first_at``.
    """

    count: int
    first_at: float
    now: float


class RateStore(Protocol):
    """Send slots and provider pauses shared by every worker, on the database clock."""

    async def reserve_slots(
        self, provider: str, interval: timedelta, count: int, horizon: timedelta
    ) -> SlotGrant:
        """Take ``count`` slots ``interval`` apart if the first is at most ``horizon`` away.

        The first is the provider's next free slot or now, whichever is later,
        and never inside the provider's pause.
        """
        ...

    async def pause_provider(self, provider: str, delay: timedelta) -> None:
        """No slot of ``provider`` before now + ``delay`` (a longer pause stays)."""
        ...

    async def paused_providers(self) -> dict[str, timedelta]:
        """The providers paused now, each with how long its pause still runs."""
        ...

    async def clock(self) -> float:
        """The database's clock now, in epoch seconds (slots are on this clock)."""
        ...


@dataclass(frozen=True, slots=True)
class CircuitReading:
    """Every stored circuit, read at the database's ``now``."""

    circuits: list[Circuit]
    now: datetime


#: A pure change of one circuit, given the database's now.
CircuitChange = Callable[[Circuit, datetime], Circuit]


class CircuitStore(Protocol):
    """Circuit breakers shared by every worker."""

    async def read_circuits(self) -> CircuitReading:
        """Every stored circuit (absent ones are closed) and the database's now."""
        ...

    async def change_circuit(
        self, provider: str, scope: str, change: CircuitChange, actor: str, job_id: str | None
    ) -> Circuit:
        """Apply ``change`` to the stored circuit (closed if none) in one transaction.

        A state change writes its audit event (``circuit.open`` …, by ``actor``
        with the role ``system``) in the same transaction. Returns the new circuit.
        """
        ...


class DispatchStore(JobStore, Protocol):
    """The JobStore as a worker uses it: claims may pass over channels that cannot send."""

    async def claim_to_send(
        self,
        worker_id: str,
        limit: int,
        lease: timedelta,
        business_id: str | None = None,
        skip_channels: Collection[Channel] = (),
    ) -> ClaimedJobs:
        """As ``claim``, leaving jobs of ``skip_channels`` pending, and telling which
        recipients are on no suppression list.

        A recipient whose key the database computes exactly (``key_is_ascii_lowercase``)
        is looked up in the claim's own statement; the others are left to
        ``SuppressionStore.find_suppressions``.
        """
        ...


class HeldJobStore(Protocol):
    """What a worker does with a claimed job besides recording its final result."""

    async def record_attempt(
        self, job: Job, lease_token: str, outcome: AttemptOutcome, report: AttemptReport
    ) -> bool:
        """Append an attempt to the job's history and keep the job claimed (failover)."""
        ...

    async def defer(self, job_id: str, lease_token: str, delay: timedelta, reason: str) -> bool:
        """Give the job back unsent: pending after ``delay``, attempt not counted."""
        ...

    async def fail_unsent(self, job_id: str, lease_token: str, error: str) -> bool:
        """Fail the job as permanent without sending it (its attempt not counted)."""
        ...


class SuppressionStore(Protocol):
    """Each business's suppressed recipients."""

    async def find_suppressions(self, jobs: Sequence[Job]) -> dict[str, Suppression]:
        """The suppression that applies to each job that has one, by job id."""
        ...

    async def add_suppression(self, suppression: Suppression) -> bool:
        """List a recipient (the first reason stays); True when it was not listed yet."""
        ...

    async def list_suppressions(
        self, business_id: str | None, limit: int, cursor: str | None
    ) -> SuppressionPage:
        """One keyset page, by recipient; raises InvalidCursorError for a foreign cursor."""
        ...

    async def recipient_suppressions(
        self, business_id: str | None, recipient: str
    ) -> list[Suppression]:
        """``recipient``'s entries on every channel, in one business or (None) all of them."""
        ...

    async def delete_suppression(self, business_id: str, recipient: str, audit: AuditEntry) -> int:
        """Unlist ``recipient`` on every channel, audited in the same transaction.

        Returns how many entries went (0: none, and no audit event).
        """
        ...


class DeliveryStore(Protocol):
    """Provider events about sent messages."""

    async def apply_delivery_event(self, event: DeliveryEvent) -> EventEffect:
        """Apply ``event`` once, in one transaction.

        Moves its job's deliveryStatus forward and lists the recipient when the
        event suppresses.
        """
        ...


# ---- operations: bulk actions, the audit trail, analytics rollups, retention


class BulkJobStore(Protocol):
    """Retry or cancel every job a filter matches, in bounded chunks."""

    async def count_bulk(self, action: Action, where: JobFilter, ids: Sequence[str] | None) -> int:
        """How many jobs ``action`` would change now (``ids`` None: any id)."""
        ...

    async def apply_bulk(
        self, action: Action, where: JobFilter, ids: Sequence[str] | None, audit: AuditEntry
    ) -> int:
        """Apply ``action`` to every matching job, one transaction per chunk.

        Each chunk is a compare-and-set on the status ``action`` starts from, so
        a job a worker claimed meanwhile is left alone. The audit event, with
        the total count, is written in the transaction of the last chunk.
        Returns how many jobs changed.
        """
        ...


class AuditReader(Protocol):
    """Reads the append-only audit trail."""

    async def list_audit(self, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
        """Events newest first; raises InvalidCursorError for a cursor it did not issue."""
        ...


class RollupStore(Protocol):
    """Analytics sums kept as jobs are enqueued and finish."""

    async def rollup_sums(self, query: HistoryQuery) -> RollupSums:
        """Sums per (group, bucket start) over the query's range; absent buckets are zero."""
        ...


class RetentionStore(Protocol):
    """Deletes old finished jobs and keeps the counters compact."""

    async def prune_batch(self, older_than: timedelta, limit: int, after: str | None) -> PruneBatch:
        """Delete up to ``limit`` completed or cancelled jobs finished before now - ``older_than``.

        Jobs are looked at in id order after ``after``; failed, pending and
        processing jobs, rollups and audit events are never deleted.
        """
        ...

    async def compact(self) -> None:
        """Fold the concurrent writers' counter slots together (cheap; safe to run anywhere)."""
        ...


@dataclass(frozen=True, slots=True)
class PruneBatch:
    """One retention batch: how many jobs went, and where the next batch starts."""

    deleted: int
    #: The id to continue after; None when no older job is left to look at.
    next_after: str | None
