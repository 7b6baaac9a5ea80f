"""The queue's use cases, as the API and CLI call them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from commq.application.ports import Enqueued, JobStore, Wakeup
from commq.application.scope import read_scope, require
from commq.application.validation import validate_new_job
from commq.domain.audit import AuditEntry, Principal
from commq.domain.errors import InvalidJobError, JobNotFoundError
from commq.domain.jobs import Attempt, Job, NewJob, Page, QueueStats
from commq.domain.listing import JobFilter, ListOrder, PageRequest
from commq.domain.permissions import Permission
from commq.domain.transitions import Action

#: Runs one dispatch pass for a business (None: all) and returns how many jobs it sent.
DispatchPass = Callable[[str | None], Awaitable[int]]

MAX_BATCH = 1000
MAX_COMMUNICATION_JOBS = 500


@dataclass(frozen=True, slots=True)
class JobDetail:
    """A job with its attempt history."""

    job: Job
    history: list[Attempt]


class QueueService:
    """Enqueue, inspect and steer jobs on behalf of an authenticated principal.

    Every method checks the principal's permission and business first, so no
    caller can reach another tenant's jobs whatever the entrypoint.
    """

    def __init__(self, store: JobStore, wakeup: Wakeup, dispatch_pass: DispatchPass) -> None:
        self._store = store
        self._wakeup = wakeup
        self._dispatch_pass = dispatch_pass

    async def enqueue(self, principal: Principal, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Validate and store ``jobs`` all or nothing; wake workers when any is due."""
        require(principal, Permission.ENQUEUE)
        if not 1 <= len(jobs) <= MAX_BATCH:
            raise InvalidJobError(f"a batch holds 1 to {MAX_BATCH} jobs", "jobs")
        batch = len(jobs) > 1
        seen: set[str] = set()
        for index, job in enumerate(jobs):
            prefix = f"jobs[{index}]." if batch else ""
            validate_new_job(job, prefix)
            if job.idempotency_key is not None:
                if job.idempotency_key in seen:
                    raise InvalidJobError(
                        "idempotencyKey repeated inside the batch", f"{prefix}idempotencyKey"
                    )
                seen.add(job.idempotency_key)
        stored = await self._store.enqueue(jobs)
        if any(item.created for item in stored):
            await self._wakeup.jobs_enqueued()
        return stored

    async def get_job(self, principal: Principal, job_id: str) -> JobDetail:
        """The job with its history; JobNotFoundError for another business's job."""
        require(principal, Permission.VIEW_JOBS)
        job = await self._store.find_job(job_id, principal.business_id)
        if job is None:
            raise JobNotFoundError(f"Job {job_id} not found")
        history = await self._store.history([job.id])
        return JobDetail(job, history[job.id])

    async def list_jobs(self, principal: Principal, where: JobFilter, page: PageRequest) -> Page:
        """One page of the caller's jobs matching ``where``."""
        require(principal, Permission.VIEW_JOBS)
        scoped = _scoped(where, read_scope(principal, where.business_id))
        return await self._store.list_jobs(scoped, page)

    async def by_communication(
        self, principal: Principal, communication_id: str, business_id: str | None = None
    ) -> list[JobDetail]:
        """Every job of one communication, oldest first, with histories."""
        require(principal, Permission.VIEW_JOBS)
        where = JobFilter(
            business_id=read_scope(principal, business_id), communication_id=communication_id
        )
        page = await self._store.list_jobs(
            where, PageRequest(ListOrder.OLDEST, MAX_COMMUNICATION_JOBS)
        )
        histories = await self._store.history([job.id for job in page.items])
        return [JobDetail(job, histories[job.id]) for job in page.items]

    async def stats(self, principal: Principal, business_id: str | None = None) -> QueueStats:
        """Counts and health figures for the caller's business (or all, for platform keys)."""
        require(principal, Permission.VIEW_STATS)
        return await self._store.stats(read_scope(principal, business_id))

    async def retry(self, principal: Principal, job_id: str) -> Job:
        """A failed or cancelled job becomes pending again with its attempts reset."""
        require(principal, Permission.RETRY_JOBS)
        job = await self._act(principal, job_id, Action.RETRY, "job.retry")
        await self._wakeup.notify()
        return job

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        """A pending job (due or scheduled) is cancelled."""
        require(principal, Permission.CANCEL_JOBS)
        return await self._act(principal, job_id, Action.CANCEL, "job.cancel")

    async def delete(self, principal: Principal, job_id: str) -> Job:
        """A job in any state but processing is removed with its history."""
        require(principal, Permission.DELETE_JOBS)
        return await self._act(principal, job_id, Action.DELETE, "job.delete")

    async def process_now(self, principal: Principal, business_id: str | None = None) -> int:
        """Send the caller's due jobs now, here, and wake every worker."""
        require(principal, Permission.PROCESS_MANUALLY)
        scope = read_scope(principal, business_id)
        await self._store.record_audit(AuditEntry("queue.process_now", principal, scope))
        processed = await self._dispatch_pass(scope)
        await self._wakeup.notify()
        return processed

    async def _act(self, principal: Principal, job_id: str, action: Action, name: str) -> Job:
        audit = AuditEntry(name, principal, principal.business_id, job_id=job_id)
        job = await self._store.apply_action(job_id, action, audit)
        if job is None:
            raise JobNotFoundError(f"Job {job_id} not found")
        return job


def _scoped(where: JobFilter, business_id: str | None) -> JobFilter:
    return replace(where, business_id=business_id)
