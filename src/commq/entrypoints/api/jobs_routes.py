"""The /communication-queue routes of DESIGN §3."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from commq.application.ports import Enqueued
from commq.application.scope import enqueue_scope
from commq.domain.audit import Principal
from commq.domain.jobs import JobStatus, NewJob
from commq.domain.listing import JobFilter, ListOrder, PageRequest
from commq.domain.permissions import Permission
from commq.entrypoints.api import schemas
from commq.entrypoints.api.access import requires
from commq.entrypoints.api.dependencies import (
    BusinessId,
    Cursor,
    FailedFilter,
    Filter,
    Limit,
    container,
)
from commq.entrypoints.api.fast_response import FastJSONResponse
from commq.entrypoints.api.strict_route import StrictRoute
from commq.entrypoints.bootstrap import Container

router = APIRouter(
    prefix="/communication-queue", tags=["communication-queue"], route_class=StrictRoute
)
#: The two enqueue routes, matched before every other route: they take most requests.
enqueue_router = APIRouter(
    prefix="/communication-queue", tags=["communication-queue"], route_class=StrictRoute
)


def _as(permission: Permission) -> type[Principal]:
    return Annotated[Principal, Depends(requires(permission))]  # type: ignore[return-value]


Enqueuer = _as(Permission.ENQUEUE)
Viewer = _as(Permission.VIEW_JOBS)
StatsViewer = _as(Permission.VIEW_STATS)
Retrier = _as(Permission.RETRY_JOBS)
Canceller = _as(Permission.CANCEL_JOBS)
Deleter = _as(Permission.DELETE_JOBS)
Processor = _as(Permission.PROCESS_MANUALLY)
App = Annotated[Container, Depends(container)]


def _new_job(app: Container, who: Principal, job: schemas.JobIn, field: str) -> NewJob:
    return NewJob(
        business_id=enqueue_scope(who, job.business_id, field),
        channel=job.channel,
        recipient=job.recipient,
        payload=job.payload,
        communication_id=job.communication_id,
        priority=job.priority,
        max_attempts=job.max_attempts or app.settings.max_attempts,
        run_at=job.run_at,
        idempotency_key=job.idempotency_key,
    )


@enqueue_router.post(
    "/jobs",
    status_code=201,
    response_model=schemas.JobOut,
    summary="Enqueue a job",
    responses={200: {"description": "Idempotency replay: the job stored before"}},
)
async def enqueue(body: schemas.JobIn, who: Enqueuer, app: App) -> JSONResponse:
    [stored] = await app.queue.enqueue(who, [_new_job(app, who, body, "businessId")])
    return FastJSONResponse(schemas.job_json(stored.job), 201 if stored.created else 200)


@enqueue_router.post("/jobs/batch", status_code=201, response_model=schemas.BatchOut)
async def enqueue_batch(body: schemas.BatchIn, who: Enqueuer, app: App) -> JSONResponse:
    """Up to 1000 jobs, all or nothing; a seen idempotencyKey returns the existing job."""
    jobs = [_new_job(app, who, j, f"jobs[{i}].businessId") for i, j in enumerate(body.jobs)]
    stored: list[Enqueued] = await app.queue.enqueue(who, jobs)
    return FastJSONResponse({"jobs": [schemas.job_json(item.job) for item in stored]}, 201)


@router.get("/jobs", response_model=schemas.JobPageOut, summary="List jobs with filters")
async def list_jobs(who: Viewer, where: Filter, app: App, limit: Limit = 50, cursor: Cursor = None):
    page = await app.queue.list_jobs(who, where, PageRequest(ListOrder.NEWEST, limit, cursor))
    items = [schemas.job_json(job) for job in page.items]
    return JSONResponse({"items": items, "nextCursor": page.next_cursor})


@router.get("/stats", response_model=schemas.StatsOut, summary="Queue statistics")
async def stats(who: StatsViewer, app: App, business_id: BusinessId = None) -> JSONResponse:
    """Counts, health figures and each provider's circuit breaker (``providers``)."""
    body = schemas.stats_json(await app.queue.stats(who, business_id))
    scope = who.business_id or business_id
    body["providers"] = await app.circuit_snapshot(scope)
    return JSONResponse(body)


async def _status_list(
    request: Request, app: Container, who: Principal, where: JobFilter, page: PageRequest
) -> JSONResponse:
    result = await app.queue.list_jobs(who, where, page)
    headers = {}
    if result.next_cursor:
        url = request.url.include_query_params(cursor=result.next_cursor, limit=page.limit)
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse([schemas.job_json(job) for job in result.items], headers=headers)


@router.get("/pending", response_model=list[schemas.JobOut], summary="Pending jobs, oldest first")
async def pending(
    request: Request,
    who: Viewer,
    app: App,
    business_id: BusinessId = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    where = JobFilter(business_id=business_id, status=JobStatus.PENDING)
    return await _status_list(request, app, who, where, PageRequest(ListOrder.DUE, limit, cursor))


@router.get("/failed", response_model=list[schemas.JobOut], summary="Failed jobs, latest first")
async def failed(
    request: Request,
    who: Viewer,
    where: FailedFilter,
    app: App,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    page = PageRequest(ListOrder.RECENTLY_FAILED, limit, cursor)
    return await _status_list(request, app, who, where, page)


# ``:path``: a communicationId may hold "/" (sent as %2F, which the server decodes first).
@router.get("/by-communication/{communicationId:path}", response_model=list[schemas.JobOut])
async def by_communication(
    communication_id: Annotated[str, Path(alias="communicationId", min_length=1)],
    who: Viewer,
    app: App,
    business_id: BusinessId = None,
) -> JSONResponse:
    """Every job of one communication, oldest first, each with its attempt history."""
    details = await app.queue.by_communication(who, communication_id, business_id)
    return JSONResponse([schemas.detail_json(d) for d in details])


@router.post("/process-now", response_model=schemas.ProcessNowOut)
async def process_now(who: Processor, app: App, business_id: BusinessId = None) -> JSONResponse:
    """Send the caller's due jobs now, in this process, and wake every worker."""
    processed = await app.queue.process_now(who, business_id)
    message = f"Processed {processed} due job{'s' if processed != 1 else ''}"
    return JSONResponse({"success": True, "message": message, "processed": processed})


@router.get("/{job_id}", response_model=schemas.JobOut, summary="A job with payload and history")
async def get_job(job_id: str, who: Viewer, app: App) -> JSONResponse:
    return JSONResponse(schemas.detail_json(await app.queue.get_job(who, job_id)))


@router.post("/{job_id}/retry", response_model=schemas.JobActionOut)
async def retry(job_id: str, who: Retrier, app: App) -> JSONResponse:
    """A failed or cancelled job runs again: attempts reset, error cleared, due now."""
    job = await app.queue.retry(who, job_id)
    message = f"Job {job_id} queued for retry"
    return JSONResponse({"success": True, "message": message, "job": schemas.job_json(job)})


@router.post("/{job_id}/cancel", response_model=schemas.JobActionOut)
async def cancel(job_id: str, who: Canceller, app: App) -> JSONResponse:
    """A pending (due or scheduled) job will not be sent."""
    job = await app.queue.cancel(who, job_id)
    message = f"Job {job_id} cancelled"
    return JSONResponse({"success": True, "message": message, "job": schemas.job_json(job)})


@router.delete("/{job_id}", response_model=schemas.MessageOut)
async def delete(job_id: str, who: Deleter, app: App) -> JSONResponse:
    """Remove a job and its history (not while it is processing)."""
    await app.queue.delete(who, job_id)
    return JSONResponse({"success": True, "message": f"Job {job_id} deleted"})
