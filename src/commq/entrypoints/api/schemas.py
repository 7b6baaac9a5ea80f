"""The API's JSON shapes (camelCase) and the conversions from domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.alias_generators import to_camel

from commq.application.queue import JobDetail
from commq.domain.jobs import Attempt, Channel, Job, QueueStats
from commq.entrypoints.api.field_types import BusinessIdText
from commq.entrypoints.api.instants import UtcDateTime


class _In(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class JobIn(_In):
    """One job to enqueue."""

    channel: Channel
    recipient: str = Field(min_length=1, max_length=2048)
    payload: dict[str, Any]
    business_id: BusinessIdText | None = None
    communication_id: str | None = Field(default=None, min_length=1, max_length=200)
    # Strict: pydantic's lax mode reads "5" and 5.0 as 5 and true as 1; a JSON integer only.
    priority: StrictInt = Field(default=0, ge=-1000, le=1000)
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=100)
    run_at: UtcDateTime | None = Field(default=None, description="ISO-8601; no offset means UTC")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


class BatchIn(_In):
    """Up to 1000 jobs, stored all or nothing."""

    jobs: list[JobIn] = Field(min_length=1, max_length=1000)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AttemptOut(_Out):
    """One send attempt."""

    seq: int
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    outcome: str
    error: str | None
    provider: str | None
    provider_message_id: str | None


class JobOut(_Out):
    """A job as the API shows it."""

    id: str
    business_id: str
    communication_id: str | None
    channel: str
    recipient: str
    payload: dict[str, Any]
    status: str
    priority: int
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    error_type: str | None
    provider: str | None
    provider_message_id: str | None
    delivery_status: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    history: list[AttemptOut] | None = None


class JobPageOut(BaseModel):
    """A keyset page of jobs."""

    items: list[JobOut]
    nextCursor: str | None


class BatchOut(BaseModel):
    """The stored batch, in request order."""

    jobs: list[JobOut]


class StatsOut(_Out):
    """Queue statistics."""

    pending: int
    processing: int
    failed: int
    completed: int
    cancelled: int
    avg_processing_time_seconds: float | None
    oldest_pending_age_seconds: float
    due: int
    scheduled: int
    throughput: ThroughputOut
    failure_rate_last_hour: float | None
    by_channel: dict[str, dict[str, int]]
    by_provider: dict[str, dict[str, int]]
    top_errors_last_hour: list[ErrorCountOut]
    #: Set by the route, not by stats_json: the circuits come from another store.
    providers: dict[str, CircuitOut]


class CircuitOut(_Out):
    """One provider's circuit breaker: closed, open or half_open."""

    state: str
    opened_at: datetime | None
    failures: int


class ThroughputOut(_Out):
    """Jobs completed in the last minute and hour (estimated from per-minute rollups)."""

    last_minute: int
    last_hour: int


class ErrorCountOut(BaseModel):
    """One error message of failed attempts and how often it came up."""

    error: str
    count: int


class JobActionOut(BaseModel):
    """The answer to retry and cancel."""

    success: bool
    message: str
    job: JobOut


class MessageOut(BaseModel):
    """The answer to delete."""

    success: bool
    message: str


class ProcessNowOut(BaseModel):
    """The answer to process-now."""

    success: bool
    message: str
    processed: int


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z."""
    if value is None:
        return None
    return _iso(value)


@lru_cache(maxsize=1024)
def _iso(value: datetime) -> str:
    # The jobs of one enqueue share their times: each distinct one is formatted once.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_json(job: Job, history: list[Attempt] | None = None) -> dict[str, Any]:
    """The JSON object of a job (built by hand: this is on the hot path)."""
    body: dict[str, Any] = {
        "id": job.id,
        "businessId": job.business_id,
        "communicationId": job.communication_id,
        "channel": job.channel.value,
        "recipient": job.recipient,
        "payload": job.payload,
        "status": job.status.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "runAt": iso(job.run_at),
        "lastError": job.last_error,
        "errorType": job.error_type.value if job.error_type else None,
        "provider": job.provider,
        "providerMessageId": job.provider_message_id,
        "deliveryStatus": job.delivery_status.value if job.delivery_status else None,
        "idempotencyKey": job.idempotency_key,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "startedAt": iso(job.started_at),
        "completedAt": iso(job.completed_at),
        "failedAt": iso(job.failed_at),
        "cancelledAt": iso(job.cancelled_at),
    }
    if history is not None:
        body["history"] = [attempt_json(a) for a in history]
    return body


def detail_json(detail: JobDetail) -> dict[str, Any]:
    """A job with its history."""
    return job_json(detail.job, detail.history)


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """The JSON object of one attempt."""
    return {
        "seq": attempt.seq,
        "attempt": attempt.attempt,
        "startedAt": iso(attempt.started_at),
        "finishedAt": iso(attempt.finished_at),
        "durationMs": attempt.duration_ms,
        "outcome": attempt.outcome.value,
        "error": attempt.error,
        "provider": attempt.provider,
        "providerMessageId": attempt.provider_message_id,
    }


def stats_json(stats: QueueStats) -> dict[str, Any]:
    """The /stats body."""
    return {
        "pending": stats.pending,
        "processing": stats.processing,
        "failed": stats.failed,
        "completed": stats.completed,
        "cancelled": stats.cancelled,
        "avgProcessingTimeSeconds": stats.avg_processing_time_seconds,
        "oldestPendingAgeSeconds": stats.oldest_pending_age_seconds,
        "due": stats.due,
        "scheduled": stats.scheduled,
        "throughput": {
            "lastMinute": stats.completed_last_minute,
            "lastHour": stats.completed_last_hour,
        },
        "failureRateLastHour": stats.failure_rate_last_hour,
        "byChannel": stats.by_channel,
        "byProvider": stats.by_provider,
        "topErrorsLastHour": [
            {"error": e.error, "count": e.count} for e in stats.top_errors_last_hour
        ],
    }
