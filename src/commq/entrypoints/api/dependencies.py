"""Shared request plumbing for the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from commq.domain.jobs import Channel, ErrorType, JobStatus
from commq.domain.listing import MAX_PAGE_SIZE, JobFilter
from commq.entrypoints.api.instants import UtcDateTime
from commq.entrypoints.bootstrap import Container


async def container(request: Request) -> Container:
    """The process's wired application (async only to stay off FastAPI's thread pool)."""
    built: Container = request.app.state.container
    return built


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="1 to 500")]
#: /alerts has no pages: without a limit it lists every alert it holds.
AlertLimit = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="1 to 500; default: every alert")
]
#: The largest ``limit`` of a CSV export; without one an export has every matching job.
MAX_EXPORT_ROWS = 1_000_000
ExportLimit = Annotated[
    int | None,
    Query(ge=1, le=MAX_EXPORT_ROWS, description="1 to 1,000,000 rows; default: every match"),
]
Cursor = Annotated[str | None, Query(max_length=512, description="nextCursor of the page before")]
BusinessId = Annotated[
    str | None,
    Query(alias="businessId", min_length=1, max_length=200, description="platform keys only"),
]


async def job_filter(
    business_id: BusinessId = None,
    status: Annotated[JobStatus | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    provider: Annotated[str | None, Query(max_length=100)] = None,
    error_type: Annotated[ErrorType | None, Query(alias="errorType")] = None,
    communication_id: Annotated[str | None, Query(alias="communicationId", max_length=200)] = None,
    recipient: Annotated[str | None, Query(max_length=2048)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in lastError")] = None,
    created_from: Annotated[UtcDateTime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[UtcDateTime | None, Query(alias="createdTo")] = None,
) -> JobFilter:
    """The /jobs filters of DESIGN §3."""
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
