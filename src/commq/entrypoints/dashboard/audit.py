"""The audit trail page, for admins: who changed what, newest first."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from commq.domain.errors import CommqError
from commq.domain.operations import AuditFilter, AuditPage
from commq.domain.permissions import Permission
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.api.operations_schemas import audit_json
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.dashboard.pages import business_of
from commq.entrypoints.dashboard.rendering import render
from commq.entrypoints.dashboard.viewer import PageAccess, Viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)
App = Annotated[Container, Depends(container)]
Auditor = Annotated[Viewer, Depends(PageAccess(Permission.VIEW_AUDIT))]
PAGE_SIZE = 50
#: The actions an operator can filter by (DESIGN §3).
ACTIONS = (
    "job.retry",
    "job.cancel",
    "job.delete",
    "jobs.bulk_retry",
    "jobs.bulk_cancel",
    "queue.process_now",
    "suppression.delete",
    "key.create",
    "key.revoke",
)


@router.get("/audit")
async def audit(request: Request, viewer: Auditor, app: App) -> HTMLResponse:
    """Every operator change: time, action, who (key and role), job or filter and count."""
    business = business_of(request, viewer)
    params = request.query_params
    action = params.get("action") if params.get("action") in ACTIONS else None
    job_id = (params.get("jobId") or "").strip()[:64] or None
    if job_id and "\x00" in job_id:  # no job has one (PostgreSQL text cannot hold NUL)
        job_id = None
    where = AuditFilter(business_id=business, action=action, job_id=job_id)
    cursor = params.get("cursor") or None
    problem = None
    try:
        page = await app.operations.audit_trail(viewer.principal, where, PAGE_SIZE, cursor)
    except CommqError as exc:
        problem, page = str(exc), AuditPage()
    kept = {"action": action, "jobId": job_id, "businessId": business if viewer.platform else None}
    query = {k: v for k, v in kept.items() if v}
    return render(
        request,
        "audit.html",
        viewer=viewer,
        events=[_shown(audit_json(event)) for event in page.items],
        actions=ACTIONS,
        chosen=kept,
        problem=problem,
        first_url="/dashboard/audit?" + urlencode(query) if cursor else None,
        next_url=_next(query, page.next_cursor),
    )


def _next(query: dict[str, str], cursor: str | None) -> str | None:
    return "/dashboard/audit?" + urlencode({**query, "cursor": cursor}) if cursor else None


def _shown(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its bulk filter as ``name=value`` pairs for reading."""
    filters = event.get("filter") or {}
    event["filterText"] = ", ".join(f"{k}={v}" for k, v in filters.items())
    return event
