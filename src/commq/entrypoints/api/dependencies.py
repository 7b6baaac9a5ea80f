"""Shared request plumbing for the routers."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from commq.domain.jobs import Channel, ErrorType, JobStatus
from commq.domain.listing import MAX_PAGE_SIZE, JobFilter
from commq.entrypoints.api.field_types import (
    RECIPIENT_FILTER,
    BusinessIdText,
    FilterText100,
    FilterText200,
    FilterText2048,
    WholeNumber,
)
from commq.entrypoints.api.instants import UtcDateTime, check_order
from commq.entrypoints.bootstrap import Container


async def container(request: Request) -> Container:
    """The process's wired application (async only to stay off FastAPI's thread pool)."""
    built: Container = request.app.state.container
    return built


# WholeNumber after Query: before it, FastAPI writes the bounds into the OpenAPI
# schema as "ge"/"le" instead of "minimum"/"maximum".
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="1 to 500"), WholeNumber]
#: /alerts has no pages: without a limit it lists every alert it holds.
AlertLimit = Annotated[
    int | None,
    Query(ge=1, le=MAX_PAGE_SIZE, description="1 to 500; default: every alert"),
    WholeNumber,
]
#: The largest ``limit`` of a CSV export; without one an export has every matching job.
MAX_EXPORT_ROWS = 1_000_000
ExportLimit = Annotated[
    int | None,
    Query(ge=1, le=MAX_EXPORT_ROWS, description="1 to 1,000,000 rows; default: every match"),
    WholeNumber,
]
Cursor = Annotated[str | None, Query(max_length=512, description="nextCursor of the page before")]
BusinessId = Annotated[
    BusinessIdText | None, Query(alias="businessId", description="platform keys only")
]


async def job_filter(
    business_id: BusinessId = None,
    status: Annotated[JobStatus | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    provider: Annotated[FilterText100 | None, Query()] = None,
    error_type: Annotated[ErrorType | None, Query(alias="errorType")] = None,
    communication_id: Annotated[FilterText200 | None, Query(alias="communicationId")] = None,
    recipient: Annotated[FilterText2048 | None, Query(description=RECIPIENT_FILTER)] = None,
    q: Annotated[FilterText200 | None, Query(description="text in lastError")] = None,
    created_from: Annotated[UtcDateTime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[UtcDateTime | None, Query(alias="createdTo")] = None,
) -> JobFilter:
    """The /jobs filters of DESIGN §3."""
    check_order(created_from, created_to, ("createdFrom", "createdTo"))
    return JobFilter(
        business_id=business_id,
        status=status,
        channel=channel,
        provider=provider,
        error_type=error_type,
        communication_id=communication_id,
        recipient=recipient,
        q=q,
        created_from=created_from,
        created_to=created_to,
    )


Filter = Annotated[JobFilter, Depends(job_filter)]


async def failed_filter(where: Filter) -> JobFilter:
    """The /jobs filters for the routes of failed jobs, whose status the route sets."""
    if where.status is not None and where.status is not JobStatus.FAILED:
        message = "only failed jobs are here; leave status out (or use /jobs)"
        loc = ("query", "status")
        error = {"type": "status_implied", "loc": loc, "msg": message, "input": where.status.value}
        raise RequestValidationError([error])
    return replace(where, status=JobStatus.FAILED)


FailedFilter = Annotated[JobFilter, Depends(failed_filter)]
