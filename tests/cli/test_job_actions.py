"""`commq retry JOB_ID` and `commq cancel JOB_ID`: the API's use cases, from a shell."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from commq.domain.jobs import Job
from commq.domain.operations import AuditFilter
from commq.entrypoints.bootstrap import Container, build
from commq.entrypoints.cli.console import CLI_ACTOR
from commq.entrypoints.settings import load_settings
from contract.support import failed, finish, new_job, succeeded
from serving import commq


def with_container(env: dict[str, str], use: Callable[[Container], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        container = await build(load_settings(environ=env))
        try:
            return await use(container)
        finally:
            await container.close()

    return asyncio.run(run())


def job_in(env: dict[str, str], status: str) -> str:
    """The id of a job of business acme brought to ``status`` the way a worker would."""

    async def make(container: Container) -> str:
        [stored] = await container.queue.enqueue(CLI_ACTOR, [new_job()])
        if status in ("processing", "completed", "failed"):
            [claimed] = await container.jobs.claim("worker-1", 1, timedelta(seconds=60))
            if status != "processing":
                await finish(
                    container.jobs, claimed, succeeded() if status == "completed" else failed()
                )
        if status == "cancelled":
            await container.queue.cancel(CLI_ACTOR, stored.job.id)
        return stored.job.id

    id_: str = with_container(env, make)
    return id_


def job(env: dict[str, str], job_id: str) -> Job:
    async def read(container: Container) -> Job:
        return (await container.queue.get_job(CLI_ACTOR, job_id)).job

    found: Job = with_container(env, read)
    return found


def audit(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every job audit event (the setup's own cancel aside): as GET /audit shows them."""
    from commq.entrypoints.api.operations_schemas import audit_json

    async def read(container: Container) -> list[dict[str, Any]]:
        page = await container.operations.audit_trail(CLI_ACTOR, AuditFilter(), 100, None)
        return [audit_json(event) for event in page.items]

    return [e for e in with_container(env, read) if e["action"] in ("job.retry", "job.cancel")]


def without_setup(events: list[dict[str, Any]], skip: int) -> list[dict[str, Any]]:
    return events[: len(events) - skip]  # newest first: the setup's are last


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_retry_makes_a_failed_or_cancelled_job_pending_and_audits_it_as_the_cli(
    env: dict[str, str], status: str
) -> None:
    job_id = job_in(env, status)

    done = commq("retry", job_id, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"retried job {job_id} of business acme: pending, due now\n"
    retried = job(env, job_id)
    assert (retried.status.value, retried.attempts, retried.last_error) == ("pending", 0, None)
    [event] = without_setup(audit(env), skip=1 if status == "cancelled" else 0)
    assert {k: event[k] for k in event if k not in ("id", "at")} == {
        "action": "job.retry",
        "actorKeyId": "cli",
        "actorName": "commq cli",
        "role": "admin",
        "businessId": "acme",
        "jobId": job_id,
        "filter": None,
        "count": None,
    }


def test_cancel_cancels_a_pending_job_and_audits_it_as_the_cli(env: dict[str, str]) -> None:
    job_id = job_in(env, "pending")

    done = commq("cancel", job_id, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cancelled job {job_id} of business acme\n"
    assert job(env, job_id).status.value == "cancelled"
    [event] = audit(env)
    assert (event["action"], event["actorKeyId"], event["businessId"], event["jobId"]) == (
        "job.cancel",
        "cli",
        "acme",
        job_id,
    )


@pytest.mark.parametrize(
    ("command", "status", "rule"),
    [
        ("retry", "pending", "Only failed or cancelled jobs can be retried"),
        ("retry", "completed", "Only failed or cancelled jobs can be retried"),
        ("cancel", "processing", "Only pending jobs can be cancelled"),
        ("cancel", "failed", "Only pending jobs can be cancelled"),
    ],
)
def test_an_action_the_status_does_not_allow_is_one_line_naming_the_status(
    env: dict[str, str], command: str, status: str, rule: str
) -> None:
    job_id = job_in(env, status)

    done = commq(command, job_id, env=env)

    assert done.returncode == 1, done.stdout
    assert done.stderr == f"error: cannot {command} job {job_id}: {rule}; this job is {status}\n"
    assert job(env, job_id).status.value == status
    assert audit(env) == []


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_an_unknown_or_empty_job_id_is_one_line_and_exit_1(
    env: dict[str, str], command: str
) -> None:
    unknown = commq(command, "01900000-0000-7000-8000-000000000000", env=env)
    assert unknown.returncode == 1, unknown.stdout
    assert unknown.stderr == "error: Job 01900000-0000-7000-8000-000000000000 not found\n"
    empty = commq(command, "", env=env)  # an unset "$JOB" in a script
    assert empty.returncode == 1 and empty.stderr == "error: JOB_ID is empty: name the job\n"
