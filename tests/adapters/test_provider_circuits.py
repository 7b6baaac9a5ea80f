"""Real senders through the worker: which refusals fail a job and which open the circuit.

The senders talk to their peers on 127.0.0.1 (the fake SendGrid, aiosmtpd);
the worker runs with its circuit breaker over a SQLite store, as ``commq
worker`` does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.senders import SendGridSender, SmtpSender
from commq.adapters.store import LocalWakeup, SqlJobStore
from commq.adapters.store.held_jobs import SqlHeldJobStore
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.tables import audit_events
from commq.application.circuits import CircuitBreaker
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.failover import Guards
from commq.application.ports import Sender
from commq.domain.circuit import CircuitPolicy
from commq.domain.jobs import Channel, ErrorType, Job, JobStatus, NewJob
from commq.domain.retry import RetryPolicy
from commq.entrypoints.bootstrap import SystemClock
from fakes import FakeSendGrid

if TYPE_CHECKING:
    from conftest import SmtpPeer

FROM = "Commq <noreply@commq.test>"


@pytest.fixture
async def sendgrid(fake_sendgrid: FakeSendGrid) -> AsyncIterator[SendGridSender]:
    sender = SendGridSender(
        fake_sendgrid.api_key, email_from=FROM, base_url=fake_sendgrid.base_url, timeout=2.0
    )
    yield sender
    await sender.close()


def _worker(engine: AsyncEngine, sender: Sender) -> Dispatcher:
    # The default policy: one provider fault (401/403) opens the circuit at once.
    breaker = CircuitBreaker(
        SqlProviderStore(engine), CircuitPolicy(), "worker-1", [sender.name], refresh_every=0.0
    )
    return Dispatcher(
        store=SqlJobStore(engine),
        senders={Channel.EMAIL: [sender]},
        wakeup=LocalWakeup(),
        clock=SystemClock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(poll_interval=0.02, reclaim_interval=0.05, concurrency=1),
        worker_id="worker-1",
        guards=Guards(circuits=breaker, held=SqlHeldJobStore(engine)),
    )


async def _enqueue(engine: AsyncEngine, business: str, priority: int, **payload: str) -> str:
    content = {"subject": "Hi", "text": "t"} | payload
    job = NewJob(business, Channel.EMAIL, "ada@example.com", content, priority=priority)
    [item] = await SqlJobStore(engine).enqueue([job])
    return item.job.id


async def _job(engine: AsyncEngine, job_id: str) -> Job:
    job = await SqlJobStore(engine).find_job(job_id, None)
    assert job is not None
    return job


async def _audit_actions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_events.c.action))).scalars())


async def test_an_unverified_from_of_one_tenant_fails_its_job_and_others_keep_flowing(
    engine: AsyncEngine, fake_sendgrid: FakeSendGrid, sendgrid: SendGridSender
) -> None:
    fake_sendgrid.verify_senders("noreply@commq.test")
    # Higher priority: the refused job is sent first, before the others are claimed.
    refused = await _enqueue(engine, "tenant-a", 10, **{"from": "shop@tenant-a.example"})
    others = [await _enqueue(engine, f"tenant-{n}", 0) for n in "bcd"]

    await _worker(engine, sendgrid).run(until_idle=True)

    job = await _job(engine, refused)
    assert (job.status, job.error_type, job.attempts) == (JobStatus.FAILED, ErrorType.PERMANENT, 1)
    assert job.last_error is not None
    assert "shop@tenant-a.example is not a verified Sender Identity" in job.last_error
    for job_id in others:
        assert (await _job(engine, job_id)).status is JobStatus.COMPLETED
    assert "circuit.open" not in await _audit_actions(engine)
    circuits = (await SqlProviderStore(engine).read_circuits()).circuits
    assert all(c.state.value == "closed" for c in circuits)


async def test_an_unverified_configured_from_still_opens_the_circuit(
    engine: AsyncEngine, fake_sendgrid: FakeSendGrid, sendgrid: SendGridSender
) -> None:
    # COMMQ_EMAIL_FROM itself refused: every job would fail, so they wait unspent.
    fake_sendgrid.verify_senders("someone-else@commq.test")
    ids = [await _enqueue(engine, f"tenant-{n}", 0) for n in "abc"]

    await _worker(engine, sendgrid).run(until_idle=True)

    assert len(fake_sendgrid.requests) == 1
    for job_id in ids:
        job = await _job(engine, job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
    assert await _audit_actions(engine) == ["circuit.open"]


async def test_an_smtp_server_without_starttls_holds_jobs_unspent_and_says_what_to_fix(
    engine: AsyncEngine, smtp_server_without_auth: SmtpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    # Fixing COMMQ_SMTP_URL lets them flow; meanwhile they must not burn their attempts.
    smtp = SmtpSender(f"smtp://127.0.0.1:{smtp_server_without_auth.port}?starttls=true", FROM)
    ids = [await _enqueue(engine, f"tenant-{n}", 0) for n in "ab"]

    with caplog.at_level(logging.WARNING, "commq.worker"):
        await _worker(engine, smtp).run(until_idle=True)
    await smtp.close()

    waiting = [await _job(engine, job_id) for job_id in ids]
    assert [(job.status, job.attempts) for job in waiting] == [(JobStatus.PENDING, 0)] * 2
    # The job that reached the server says why; any other was held back unsent.
    errors = [job.last_error or "" for job in waiting]
    assert any(e.startswith("SMTP server does not support STARTTLS") for e in errors)
    assert all(e.startswith(("SMTP server", "waiting: every email provider")) for e in errors)
    assert await _audit_actions(engine) == ["circuit.open"]
    [opened] = [r.getMessage() for r in caplog.records if "circuit opened" in r.getMessage()]
    assert opened.startswith("smtp circuit opened (scope *): SMTP server does not support STARTTLS")
    assert "check COMMQ_SMTP_URL" in opened
