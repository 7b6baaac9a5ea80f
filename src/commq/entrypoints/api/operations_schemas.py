"""JSON shapes of the operations routes: bulk actions, the audit trail, history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from commq.domain.analytics import History, HistoryPoint
from commq.domain.audit import AuditEvent
from commq.domain.jobs import Channel, ErrorType
from commq.domain.listing import JobFilter
from commq.domain.operations import MAX_BULK_IDS, BulkRequest
from commq.entrypoints.api.field_types import (
    RECIPIENT_FILTER,
    BusinessIdText,
    FilterText100,
    FilterText200,
    FilterText2048,
)
from commq.entrypoints.api.instants import UtcDateTime
from commq.entrypoints.api.schemas import iso

JobId = Annotated[str, Field(min_length=1, max_length=64)]


class _In(BaseModel):
    # Unknown fields are refused (422), so a typo cannot widen a bulk action.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class BulkIn(_In):
    """The /jobs filters (status is implied by the route), or ``ids``, or both."""

    business_id: BusinessIdText | None = None
    channel: Channel | None = None
    provider: FilterText100 | None = None
    error_type: ErrorType | None = None
    communication_id: FilterText200 | None = None
    recipient: FilterText2048 | None = Field(default=None, description=RECIPIENT_FILTER)
    q: FilterText200 | None = Field(default=None, description="text in lastError")
    created_from: UtcDateTime | None = None
    created_to: UtcDateTime | None = None
    ids: list[JobId] | None = Field(default=None, min_length=1, max_length=MAX_BULK_IDS)
    # Strict: pydantic's lax mode takes "yes", "1" and 1 for true and "no", "0" and 0 for
    # false, so a client's odd spelling could turn a count into a real retry or cancel.
    dry_run: StrictBool = Field(default=False, description="only count the matching jobs")

    @field_validator("created_to")
    @classmethod
    def _after_created_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # createdTo is exclusive: a range ending where it starts (or before) matches
        # nothing, and a bulk action that silently does nothing hides the swapped bounds.
        start = info.data.get("created_from")
        if value is not None and start is not None and value <= start:
            raise ValueError("must be later than createdFrom (createdTo is exclusive)")
        return value

    def to_request(self) -> BulkRequest:
        """The domain request."""
        where = JobFilter(
            business_id=self.business_id,
            channel=self.channel,
            provider=self.provider,
            error_type=self.error_type,
            communication_id=self.communication_id,
            recipient=self.recipient,
            q=self.q,
            created_from=self.created_from,
            created_to=self.created_to,
        )
        ids = None if self.ids is None else tuple(self.ids)
        return BulkRequest(where, ids, self.dry_run)


class BulkOut(BaseModel):
    """The answer to a bulk action: how many jobs changed (or, in a dry run, would)."""

    success: bool
    message: str
    count: int


class AuditEventOut(BaseModel):
    """One audit event (DESIGN §3)."""

    id: str
    at: datetime
    action: str
    actorKeyId: str
    actorName: str
    role: str
    businessId: str | None
    jobId: str | None
    filter: dict[str, Any] | None
    count: int | None


class AuditPageOut(BaseModel):
    """A page of audit events, newest first."""

    items: list[AuditEventOut]
    nextCursor: str | None


class PointOut(BaseModel):
    """One bucket of a series."""

    at: datetime
    enqueued: int
    completed: int
    failed: int
    failedAttempts: int
    avgProcessingTimeSeconds: float | None


class SeriesOut(BaseModel):
    """The points of one group (null: no grouping, or jobs without that attribute)."""

    group: str | None
    points: list[PointOut]


class HistoryOut(BaseModel):
    """A time series per group, every bucket present."""

    bucket: str
    groupBy: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    series: list[SeriesOut]


def audit_json(event: AuditEvent) -> dict[str, Any]:
    """The JSON object of one audit event."""
    return {
        "id": event.id,
        "at": iso(event.at),
        "action": event.action,
        "actorKeyId": event.actor_key_id,
        "actorName": event.actor_name,
        "role": event.role,
        "businessId": event.business_id,
        "jobId": event.job_id,
        "filter": event.filter,
        "count": event.count,
    }


def history_json(history: History) -> dict[str, Any]:
    """The /stats/history body."""
    query = history.query
    return {
        "bucket": query.bucket.value,
        "groupBy": None if query.group_by is None else query.group_by.value,
        "from": iso(query.start),
        "to": iso(query.end),
        "series": [
            {"group": series.group, "points": [_point_json(p) for p in series.points]}
            for series in history.series
        ],
    }


def _point_json(point: HistoryPoint) -> dict[str, Any]:
    f = point.figures
    return {
        "at": iso(point.at),
        "enqueued": int(f.enqueued),
        "completed": int(f.completed),
        "failed": int(f.failed),
        "failedAttempts": int(f.failed_attempts),
        "avgProcessingTimeSeconds": f.avg_processing_time_seconds,
    }
