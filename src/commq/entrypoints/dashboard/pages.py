"""The dashboard's pages: overview, jobs, one job, and opening a job by its id.

The audit trail and the suppression list are in their own modules.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commq.domain.errors import InvalidCursorError, JobNotFoundError, PermissionDeniedError
from commq.domain.jobs import Channel, ErrorType, Page
from commq.domain.permissions import Permission
from commq.entrypoints.api import schemas
from commq.entrypoints.api.dependencies import container
from commq.entrypoints.bootstrap import Container
from commq.entrypoints.dashboard.listing import TABS, Listing, parse_listing
from commq.entrypoints.dashboard.rendering import age, rate, render
from commq.entrypoints.dashboard.viewer import PageAccess, Viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)
App = Annotated[Container, Depends(container)]
StatsViewer = Annotated[Viewer, Depends(PageAccess(Permission.VIEW_STATS))]
JobsViewer = Annotated[Viewer, Depends(PageAccess(Permission.VIEW_JOBS))]

#: The overview's cards, in the order a job moves through them.
STATUSES = [(key, key.capitalize()) for key in TABS]
#: Health figures under the cards: (key in the /stats body, label, format).
FIGURES = [
    ("oldestPendingAgeSeconds", "Oldest pending job waiting", "age"),
    ("throughput.lastMinute", "Sent in the last minute", "number"),
    ("throughput.lastHour", "Sent in the last hour", "number"),
    ("failureRateLastHour", "Failure rate, last hour", "rate"),
    ("avgProcessingTimeSeconds", "Average send time, last hour", "age"),
    ("scheduled", "Scheduled for later", "number"),
]
#: Longer than any id commq makes (36) or a UUID's longest spelling ("urn:uuid:…", 45).
MAX_JOB_ID = 64


def lookup(stats: dict[str, Any], path: str) -> Any:
    """A value of the /stats body by dotted path (``throughput.lastMinute``), or None."""
    value: Any = stats
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def figure(value: Any, kind: str) -> str:
    """A health figure formatted as the page shows it (the script does the same live)."""
    if value is None:
        return "—"
    if kind == "age":
        return age(value)
    if kind == "rate":
        return rate(value)
    return f"{value:,.1f}".removesuffix(".0") if isinstance(value, float) else f"{value:,}"


def business_of(request: Request, viewer: Viewer) -> str | None:
    """The business a platform key narrowed the page to (business keys see their own).

    A name no business can have (a NUL, which PostgreSQL cannot even compare, or
    one past the jobs filter's 200 characters) narrows nothing, as on the jobs page.
    """
    if not viewer.platform:
        return viewer.principal.business_id
    chosen = request.query_params.get("businessId", "").strip()
    if len(chosen) > 200 or "\x00" in chosen:
        return None
    return chosen or None


async def _stats(app: Container, viewer: Viewer, business: str | None) -> dict[str, Any]:
    if not viewer.can("viewStats"):
        return {}
    return schemas.stats_json(await app.queue.stats(viewer.principal, business))


@router.get("")
async def overview(request: Request, viewer: StatsViewer, app: App) -> HTMLResponse:
    """Counts by status, health figures, share bars and the 24-hour chart."""
    business = business_of(request, viewer)
    stats = await _stats(app, viewer, business)
    return render(
        request,
        "overview.html",
        viewer=viewer,
        stats=stats,
        business=business,
        statuses=STATUSES,
        figures=FIGURES,
        figure=figure,
        lookup=lookup,
        top_errors=stats.get("topErrorsLastHour") or [],
        total=sum(stats[key] for key in TABS),
    )


@router.get("/jobs")
async def jobs(request: Request, viewer: JobsViewer, app: App) -> HTMLResponse:
    """The jobs table: status tabs, filters, keyset pages, per-row actions."""
    listing = parse_listing(request.query_params, viewer.platform)
    page = await _page(app, viewer, listing)
    stats = await _stats(
        app, viewer, listing.values.get("businessId") or business_of(request, viewer)
    )
    return render(
        request,
        "jobs.html",
        viewer=viewer,
        listing=listing,
        jobs=[schemas.job_json(job) for job in page.items],
        next_cursor=page.next_cursor,
        stats=stats,
        seen=counts_seen(listing.status, stats),
        tabs=TABS,
        channels=[c.value for c in Channel],
        error_types=[e.value for e in ErrorType],
    )


def counts_seen(status: str | None, stats: dict[str, Any]) -> str:
    """The counts a jobs table was drawn with; the script redraws it when they move."""
    if status:
        return f"{status}:{stats.get(status, '')}"
    return ":" + ",".join(str(stats.get(key, "")) for key in TABS)


async def _page(app: Container, viewer: Viewer, listing: Listing) -> Page:
    if not listing.usable:
        return Page()  # the notice beside the filter says why there is no list
    try:
        return await app.queue.list_jobs(
            viewer.principal, listing.job_filter(), listing.page_request()
        )
    except InvalidCursorError:
        listing.problems.append("That page link is no longer valid: showing the first page.")
    except PermissionDeniedError as exc:
        listing.problems.append(str(exc))
        return Page()
    first = Listing(listing.values, None, listing.problems, listing.errors)
    return await app.queue.list_jobs(viewer.principal, first.job_filter(), first.page_request())


@router.get("/jobs/{job_id}")
async def job(request: Request, job_id: str, viewer: JobsViewer, app: App) -> HTMLResponse:
    """One job: its fields, payload, attempt history and the actions the role may take."""
    try:
        detail = await app.queue.get_job(viewer.principal, job_id)
    except JobNotFoundError:
        return _no_such_job(request, viewer)
    return render(request, "job.html", viewer=viewer, job=schemas.detail_json(detail))


@router.get("/open-job", response_model=None)
async def open_job(request: Request, viewer: JobsViewer, app: App) -> Response:
    """The header's "Job id" box: to the job's page, or the job page's own "not found".

    The id is looked up here rather than just redirected, so an id no URL path can carry
    (one with a "/") gets the same friendly page as an unknown one, not a bare 404.
    """
    typed = request.query_params.get("id", "").strip()
    if not typed:
        return RedirectResponse("/dashboard/jobs", 303)  # nothing to open: the jobs list
    for job_id in candidate_ids(typed):
        try:
            found = await app.queue.get_job(viewer.principal, job_id)
        except JobNotFoundError:
            continue
        return RedirectResponse(f"/dashboard/jobs/{quote(found.job.id, safe='')}", 303)
    return _no_such_job(request, viewer)


def candidate_ids(typed: str) -> list[str]:
    """The ids a pasted value may mean: itself, and a UUID's canonical spelling.

    Logs and tickets sometimes print a UUID in capitals, without hyphens or in braces;
    commq writes its ids lower-case with hyphens. Longer text is no id at all.
    """
    if len(typed) > MAX_JOB_ID:
        return []
    try:
        canonical = str(uuid.UUID(typed))
    except ValueError:
        return [typed]
    return [typed] if canonical == typed else [typed, canonical]


def _no_such_job(request: Request, viewer: Viewer) -> HTMLResponse:
    # One message for an unknown id and another business's job: the page must not
    # tell a business that some other business's job exists.
    message = "There is no such job, or it belongs to another business."
    return render(request, "error.html", 404, viewer=viewer, title="Job not found", message=message)
