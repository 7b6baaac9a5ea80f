"""Filters and orders for job lists (DESIGN §3, GET /jobs, /pending, /failed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from commq.domain.jobs import Channel, ErrorType, JobStatus

MAX_PAGE_SIZE = 500


class ListOrder(StrEnum):
    """The keyset order of a list; each has an index behind it."""

    #: Newest first by id (ids are time-ordered): GET /jobs.
    NEWEST = "newest"
    #: Oldest runAt first: GET /pending.
    DUE = "due"
    #: Most recently failed first: GET /failed.
    RECENTLY_FAILED = "recently_failed"
    #: Oldest first by id: by-communication.
    OLDEST = "oldest"


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list or bulk action covers. None means "any".

    ``business_id`` None is only ever set for a platform key that did not
    narrow its view; business keys always carry their own.
    """

    business_id: str | None = None
    status: JobStatus | None = None
    channel: Channel | None = None
    provider: str | None = None
    error_type: ErrorType | None = None
    communication_id: str | None = None
    recipient: str | None = None
    #: Text searched for inside lastError.
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Keyset paging: up to ``limit`` jobs after ``cursor`` in ``order``."""

    order: ListOrder = ListOrder.NEWEST
    limit: int = 50
    #: Opaque, as returned in Page.next_cursor; None for the first page.
    cursor: str | None = None
