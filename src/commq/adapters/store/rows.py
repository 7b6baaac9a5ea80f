"""Conversions between table rows and domain values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.engine import RowMapping

from commq.adapters.store.tables import audit_events, db_after, db_now, jobs
from commq.domain.audit import AuditEntry
from commq.domain.jobs import (
    Attempt,
    AttemptOutcome,
    Channel,
    DeliveryStatus,
    ErrorType,
    Job,
    JobStatus,
    NewJob,
    new_job_id,
)
from commq.domain.outcomes import Decision, SendResult
from commq.domain.transitions import Action

#: The jobs columns that are not fields of the domain Job.
_STORE_ONLY = frozenset({"seq", "worker_id"})


def job_from_row(row: RowMapping) -> Job:
    """The domain Job of a ``jobs`` row."""
    fields: dict[str, Any] = {k: v for k, v in row.items() if k not in _STORE_ONLY}
    fields["channel"] = Channel(row["channel"])
    fields["status"] = JobStatus(row["status"])
    if row["error_type"] is not None:
        fields["error_type"] = ErrorType(row["error_type"])
    if row["delivery_status"] is not None:
        fields["delivery_status"] = DeliveryStatus(row["delivery_status"])
    return Job(**fields)


def new_job_row(job: NewJob) -> dict[str, Any]:
    """The ``jobs`` values of a new job (``requested_run_at`` None: the database's now)."""
    return {
        "id": new_job_id(),
        "business_id": job.business_id,
        "communication_id": job.communication_id,
        "channel": job.channel.value,
        "recipient": job.recipient,
        "payload": job.payload,
        "status": JobStatus.PENDING.value,
        "priority": job.priority,
        "attempts": 0,
        "max_attempts": job.max_attempts,
        "seq": 0,
        "requested_run_at": job.run_at,
        "idempotency_key": job.idempotency_key,
    }


def attempt_from_row(row: RowMapping) -> Attempt:
    """The domain Attempt of an ``attempts`` row."""
    return Attempt(
        job_id=row["job_id"],
        seq=row["seq"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
        outcome=AttemptOutcome(row["outcome"]),
        error=row["error"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
    )


def audit_insert(entry: AuditEntry, business_id: str | None, job_id: str | None) -> Insert:
    """The INSERT of one audit event, stamped with the database's time."""
    return audit_events.insert().values(
        id=new_job_id(),  # a UUIDv7 as well, so events sort by time
        at=db_now(),
        action=entry.action,
        actor_key_id=entry.actor.key_id,
        actor_name=entry.actor.name,
        role=entry.actor.role.value,
        business_id=business_id,
        job_id=job_id,
        filter=entry.filter,
        count=entry.count,
    )


def decision_values(decision: Decision, result: SendResult) -> dict[str, Any]:
    """The jobs columns a worker's decision sets (besides lease, seq and updated_at).

    The provider is kept on every outcome: it says who handled the latest
    attempt, so failed jobs can be listed by provider too.
    """
    values: dict[str, Any] = {
        "status": decision.status.value,
        "provider": result.provider,
        "provider_message_id": result.provider_message_id,
        "last_error": decision.last_error,
        "error_type": None if decision.error_type is None else decision.error_type.value,
    }
    if not decision.counts_attempt:
        values["attempts"] = jobs.c.attempts - 1
    if decision.status is JobStatus.COMPLETED:
        return {**values, "completed_at": db_now(), "last_error": None, "error_type": None}
    if decision.status is JobStatus.FAILED:
        return {**values, "failed_at": db_now()}
    if decision.status is JobStatus.PENDING:
        retry_in = decision.retry_in or timedelta(0)
        return {**values, "run_at": db_after(retry_in.total_seconds())}
    raise ValueError(f"a worker cannot move a job to {decision.status.value}")


def action_values(action: Action) -> dict[str, Any]:
    """The jobs columns an operator's retry or cancel sets."""
    if action is Action.RETRY:
        return {
            "status": JobStatus.PENDING.value,
            "attempts": 0,
            "last_error": None,
            "error_type": None,
            "failed_at": None,
            "cancelled_at": None,
            "run_at": db_now(),
            "updated_at": db_now(),
        }
    if action is Action.CANCEL:
        status = JobStatus.CANCELLED.value
        return {"status": status, "cancelled_at": db_now(), "updated_at": db_now()}
    raise ValueError(f"{action.value} does not update a job")
