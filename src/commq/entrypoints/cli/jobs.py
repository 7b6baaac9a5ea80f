"""The commands that act on one job: enqueue, retry, cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from commq.application.ports import Enqueued
from commq.domain.errors import CommqError, JobNotFoundError
from commq.domain.jobs import Channel, Job, NewJob
from commq.domain.transitions import Action
from commq.entrypoints.cli.console import (
    CLI_ACTOR,
    apply_migrations,
    check_schema,
    fail,
    read_settings,
    services,
    usable_database,
)
from commq.entrypoints.settings import Settings


def enqueue(
    channel: Annotated[Channel, typer.Option(help="email, sms or webhook")],
    to: Annotated[str, typer.Option(help="Address, E.164 number or URL")],
    business: Annotated[str, typer.Option(help="The business (tenant) id")],
    payload: Annotated[str | None, typer.Option(help="Payload as JSON")] = None,
    subject: Annotated[str | None, typer.Option(help="E-mail subject")] = None,
    text: Annotated[str | None, typer.Option(help="E-mail text, or SMS body")] = None,
    communication_id: Annotated[str | None, typer.Option(help="Your reference")] = None,
    run_at: Annotated[datetime | None, typer.Option(help="When to send (ISO-8601 UTC)")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first")] = 0,
) -> None:
    """Enqueue one job and print it as JSON."""
    from commq.entrypoints.api.schemas import job_json

    settings = read_settings()
    body = _payload(channel, payload, subject, text)
    job = NewJob(
        business,
        channel,
        to,
        body,
        communication_id,
        priority,
        settings.max_attempts,
        _aware(run_at),
    )
    try:
        with usable_database(settings.database_url):
            [stored] = asyncio.run(_enqueue(settings, job))
    except CommqError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(job_json(stored.job), indent=2))


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def _payload(channel: Channel, raw: str | None, subject: str | None, text: str | None) -> Any:
    if raw is not None:
        if subject is not None or text is not None:
            raise fail("--payload is the whole payload: leave out --subject and --text")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise fail(f"--payload is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise fail("--payload must be a JSON object")
        return body
    # Name the option left out, not the payload field the user never wrote.
    if channel is Channel.EMAIL:
        if subject is None:
            raise fail("an e-mail needs --subject (and --text), or a whole --payload")
        return {"subject": subject, "text": text or ""}
    if channel is Channel.SMS:
        if text is None:
            raise fail("an SMS needs --text, or a whole --payload")
        return {"body": text}
    return {"body": {"text": text}}


async def _enqueue(settings: Settings, job: NewJob) -> list[Enqueued]:
    await asyncio.to_thread(apply_migrations, settings.database_url)
    async with services(settings) as container:
        return await container.queue.enqueue(CLI_ACTOR, [job])


_JOB_ID = typer.Argument(metavar="JOB_ID", help="The job's id", show_default=False)


def retry(job_id: Annotated[str, _JOB_ID]) -> None:
    """Retry a failed or cancelled job: pending again, due now, attempts reset (audited)."""
    job = _act(Action.RETRY, job_id)
    typer.echo(f"retried job {job.id} of business {job.business_id}: pending, due now")


def cancel(job_id: Annotated[str, _JOB_ID]) -> None:
    """Cancel a pending job, due or scheduled (audited)."""
    job = _act(Action.CANCEL, job_id)
    typer.echo(f"cancelled job {job.id} of business {job.business_id}")


def _act(action: Action, job_id: str) -> Job:
    if not job_id.strip():
        raise fail("JOB_ID is empty: name the job")  # an unset "$JOB" in a script
    settings = read_settings()
    try:
        with usable_database(settings.database_url, existing=True):
            return asyncio.run(_apply(settings, action, job_id))
    except JobNotFoundError as exc:
        raise fail(exc) from None
    except CommqError as exc:
        # "Only pending jobs can be cancelled; this job is completed": the status is named.
        raise fail(f"cannot {action.value} job {job_id}: {exc}") from None


async def _apply(settings: Settings, action: Action, job_id: str) -> Job:
    # Workers may be claiming beside it: check the schema, never migrate (as stats).
    await asyncio.to_thread(check_schema, settings.database_url)
    async with services(settings) as container:
        # The API's use cases, so the same state rules and the same audit event.
        if action is Action.RETRY:
            return await container.queue.retry(CLI_ACTOR, job_id)
        return await container.queue.cancel(CLI_ACTOR, job_id)
