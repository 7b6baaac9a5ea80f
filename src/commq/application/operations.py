"""Operations use cases: bulk retry and cancel, export, the audit trail, history.

Like QueueService, every method checks the principal's permission and
business first: a business key only ever reaches its own business, and a
platform key may narrow to one with ``businessId``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from commq.application.ports import AuditReader, BulkJobStore, JobStore, RollupStore, Wakeup
from commq.application.scope import read_scope, require
from commq.domain.analytics import History, HistoryQuery, build_history
from commq.domain.audit import AuditEntry, Principal
from commq.domain.jobs import Job
from commq.domain.listing import MAX_PAGE_SIZE, JobFilter, ListOrder, PageRequest
from commq.domain.operations import AuditFilter, AuditPage, BulkRequest, filter_json
from commq.domain.permissions import Permission
from commq.domain.transitions import Action


class OperationsService:
    """What an operations team does to many jobs at once, and what it reads back."""

    def __init__(
        self,
        jobs: JobStore,
        bulk: BulkJobStore,
        audit: AuditReader,
        rollups: RollupStore,
        wakeup: Wakeup,
    ) -> None:
        self._jobs = jobs
        self._bulk = bulk
        self._audit = audit
        self._rollups = rollups
        self._wakeup = wakeup

    async def bulk_retry(self, principal: Principal, request: BulkRequest) -> int:
        """Failed jobs matching ``request`` become pending, due now, attempts reset.

        Returns how many did (with ``dry_run``: how many would, changing nothing).
        """
        require(principal, Permission.RETRY_JOBS)
        count = await self._apply(principal, request, Action.RETRY, "jobs.bulk_retry")
        if count and not request.dry_run:
            await self._wakeup.notify()
        return count

    async def bulk_cancel(self, principal: Principal, request: BulkRequest) -> int:
        """Pending jobs (due or scheduled) matching ``request`` are cancelled."""
        require(principal, Permission.CANCEL_JOBS)
        return await self._apply(principal, request, Action.CANCEL, "jobs.bulk_cancel")

    async def _apply(
        self, principal: Principal, request: BulkRequest, action: Action, name: str
    ) -> int:
        scope = read_scope(principal, request.where.business_id)
        where = replace(request.where, business_id=scope, status=None)
        if request.dry_run:
            return await self._bulk.count_bulk(action, where, request.ids)
        audit = AuditEntry(name, principal, scope, filter=filter_json(request))
        return await self._bulk.apply_bulk(action, where, request.ids, audit)

    def export_jobs(
        self, principal: Principal, where: JobFilter, limit: int | None = None
    ) -> AsyncIterator[Job]:
        """Every job matching ``where`` (the oldest ``limit``, if given), oldest first,
        read page by page (constant memory).

        The permission and business are checked now, before the first job is read.
        """
        require(principal, Permission.VIEW_JOBS)
        scoped = replace(where, business_id=read_scope(principal, where.business_id))
        return self._all_pages(scoped, limit)

    async def _all_pages(self, where: JobFilter, limit: int | None) -> AsyncIterator[Job]:
        cursor: str | None = None
        left = limit
        while left is None or left > 0:
            size = MAX_PAGE_SIZE if left is None else min(left, MAX_PAGE_SIZE)
            page = await self._jobs.list_jobs(where, PageRequest(ListOrder.OLDEST, size, cursor))
            for job in page.items:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
            left = None if left is None else left - len(page.items)

    async def audit_trail(
        self, principal: Principal, where: AuditFilter, limit: int, cursor: str | None
    ) -> AuditPage:
        """Audit events of the caller's business (all, for platform keys), newest first."""
        require(principal, Permission.VIEW_AUDIT)
        scoped = replace(where, business_id=read_scope(principal, where.business_id))
        return await self._audit.list_audit(scoped, limit, cursor)

    async def history(self, principal: Principal, query: HistoryQuery) -> History:
        """Enqueued, completed and failed counts and processing times per bucket."""
        require(principal, Permission.VIEW_STATS)
        scoped = replace(query, business_id=read_scope(principal, query.business_id))
        return build_history(scoped, await self._rollups.rollup_sums(scoped))
