"""The operations routes: bulk actions, CSV exports, the audit trail, history.

Included before jobs_routes: its ``/{job_id}`` and ``/{job_id}/retry`` would
otherwise take ``/audit`` or ``POST /failed/retry`` for a job id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from commq.domain.analytics import Bucket, GroupBy, HistoryQuery
from commq.domain.audit import Principal
from commq.domain.operations import AuditFilter
from commq.domain.permissions import Permission
from commq.entrypoints.api import operations_schemas as shapes
from commq.entrypoints.api.access import requires
from commq.entrypoints.api.csv_export import csv_response
from commq.entrypoints.api.dependencies import (
    BusinessId,
    Cursor,
    ExportLimit,
    FailedFilter,
    Filter,
    Limit,
    container,
)
from commq.entrypoints.api.field_types import FilterText64, FilterText100, FilterText200
from commq.entrypoints.api.instants import UtcDateTime, check_order
from commq.entrypoints.api.strict_route import StrictRoute
from commq.entrypoints.bootstrap import Container

router = APIRouter(prefix="/communication-queue", tags=["operations"], route_class=StrictRoute)


def _as(permission: Permission) -> type[Principal]:
    return Annotated[Principal, Depends(requires(permission))]  # type: ignore[return-value]


Viewer = _as(Permission.VIEW_JOBS)
StatsViewer = _as(Permission.VIEW_STATS)
Retrier = _as(Permission.RETRY_JOBS)
Canceller = _as(Permission.CANCEL_JOBS)
Auditor = _as(Permission.VIEW_AUDIT)
App = Annotated[Container, Depends(container)]
Moment = Annotated[UtcDateTime | None, Query(description="ISO-8601; no offset means UTC")]


def _jobs(count: int, status: str) -> str:
    return f"{count} {status} job{'' if count == 1 else 's'}"


@router.post("/failed/retry", response_model=shapes.BulkOut, summary="Retry failed jobs by filter")
async def bulk_retry(body: shapes.BulkIn, who: Retrier, app: App) -> JSONResponse:
    """Every failed job matching the filters (and ``ids``) runs again, in chunks."""
    request = body.to_request()
    count = await app.operations.bulk_retry(who, request)
    message = f"{_jobs(count, 'failed')} {'would be' if request.dry_run else ''} retried"
    return JSONResponse({"success": True, "message": " ".join(message.split()), "count": count})


@router.post("/pending/cancel", response_model=shapes.BulkOut, summary="Cancel pending jobs")
async def bulk_cancel(body: shapes.BulkIn, who: Canceller, app: App) -> JSONResponse:
    """Every pending job (due or scheduled) matching the filters (and ``ids``) is cancelled."""
    request = body.to_request()
    count = await app.operations.bulk_cancel(who, request)
    message = f"{_jobs(count, 'pending')} {'would be' if request.dry_run else ''} cancelled"
    return JSONResponse({"success": True, "message": " ".join(message.split()), "count": count})


_CSV = {200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}}


@router.get("/failed/export.csv", response_class=StreamingResponse, responses=_CSV)
async def export_failed(
    who: Viewer, where: FailedFilter, app: App, limit: ExportLimit = None
) -> StreamingResponse:
    """Failed jobs matching the /jobs filters as CSV, oldest first (the oldest ``limit``)."""
    return csv_response(app.operations.export_jobs(who, where, limit), "commq-failed-jobs")


@router.get("/jobs/export.csv", response_class=StreamingResponse, responses=_CSV)
async def export_jobs(
    who: Viewer, where: Filter, app: App, limit: ExportLimit = None
) -> StreamingResponse:
    """Jobs matching the /jobs filters (status included) as CSV, oldest first."""
    return csv_response(app.operations.export_jobs(who, where, limit), "commq-jobs")


@router.get("/audit", response_model=shapes.AuditPageOut, summary="The audit trail")
async def audit(
    who: Auditor,
    app: App,
    business_id: BusinessId = None,
    action: Annotated[FilterText100 | None, Query()] = None,
    actor_key_id: Annotated[FilterText100 | None, Query(alias="actorKeyId")] = None,
    actor_name: Annotated[FilterText200 | None, Query(alias="actorName")] = None,
    job_id: Annotated[FilterText64 | None, Query(alias="jobId")] = None,
    at_from: Annotated[Moment, Query(alias="from")] = None,
    at_to: Annotated[Moment, Query(alias="to")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """Audit events newest first; filters narrow, ``cursor`` pages on."""
    check_order(at_from, at_to, ("from", "to"))
    where = AuditFilter(business_id, action, actor_key_id, actor_name, job_id, at_from, at_to)
    page = await app.operations.audit_trail(who, where, limit, cursor)
    items = [shapes.audit_json(event) for event in page.items]
    return JSONResponse({"items": items, "nextCursor": page.next_cursor})


@router.get("/stats/history", response_model=shapes.HistoryOut, summary="Time series")
async def history(
    who: StatsViewer,
    app: App,
    start: Annotated[UtcDateTime, Query(alias="from", description="ISO-8601; no offset: UTC")],
    end: Annotated[Moment, Query(alias="to", description="default: now")] = None,
    bucket: Bucket = Bucket.HOUR,
    group_by: Annotated[GroupBy | None, Query(alias="groupBy")] = None,
    business_id: BusinessId = None,
) -> JSONResponse:
    """Enqueued, completed and failed counts and processing times per UTC bucket."""
    query = HistoryQuery(start, end or datetime.now(UTC), bucket, group_by, business_id)
    return JSONResponse(shapes.history_json(await app.operations.history(who, query)))
