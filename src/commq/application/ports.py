"""The ports the use cases need. Adapters implement them; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from commq.domain.audit import AuditEntry
from commq.domain.jobs import Attempt, Job, NewJob, Page, QueueStats
from commq.domain.listing import JobFilter, PageRequest
from commq.domain.outcomes import Decision, SendResult
from commq.domain.permissions import Role
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
