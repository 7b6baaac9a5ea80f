"""Helpers for the operations API tests: jobs that failed, straight through the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from commq.application.ports import AttemptReport
from commq.domain.jobs import AttemptOutcome, ErrorType, JobStatus
from commq.domain.outcomes import Decision, SendOutcome, SendResult

from .conftest import Api

Q = "/communication-queue"


async def fail(api: Api, job: dict[str, Any], error: str = "550 mailbox unknown") -> None:
    """Make ``job`` fail permanently, as a worker would record it."""
    store = api.container.jobs
    claimed = await store.claim("test-worker", 1000, timedelta(seconds=60), job["businessId"])
    for held in claimed:
        assert held.lease_token is not None
        if held.id != job["id"]:
            await store.release(held.id, held.lease_token)
            continue
        decision = Decision(
            JobStatus.FAILED, AttemptOutcome.PERMANENT_ERROR, ErrorType.PERMANENT, error
        )
        result = SendResult(SendOutcome.PERMANENT, "smtp", error=error)
        end = datetime.now(UTC)
        report = AttemptReport(end - timedelta(seconds=1), end, result)
        assert await store.record_result(held, held.lease_token, decision, report)
    assert job["id"] in {held.id for held in claimed}


async def failed_job(api: Api, who: str = "acme_producer", **fields: Any) -> dict[str, Any]:
    """Enqueue a job as ``who`` and make it fail."""
    error = fields.pop("error", "550 mailbox unknown")
    job = await api.enqueue(who, **fields)
    await fail(api, job, error)
    return job


async def status_of(api: Api, job_id: str) -> str:
    """The job's status as the platform admin sees it."""
    response = await api.client.get(f"{Q}/{job_id}", headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status
