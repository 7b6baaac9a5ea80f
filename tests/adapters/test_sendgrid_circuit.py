"""SendGrid's per-message 403 through the worker: the job fails, the provider's circuit stays shut.

The real SendGrid sender talks to the fake SendGrid on 127.0.0.1; the worker
runs with its circuit breaker over a SQLite store, as ``commq worker`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.senders import SendGridSender
from commq.adapters.store import LocalWakeup, SqlJobStore, make_engine
from commq.adapters.store.held_jobs import SqlHeldJobStore
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.tables import audit_events
from commq.application.circuits import CircuitBreaker
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.failover import Guards
from commq.domain.circuit import CircuitPolicy
from commq.domain.jobs import Channel, ErrorType, Job, JobStatus, NewJob
from commq.domain.retry import RetryPolicy
from fakes import FakeSendGrid

FROM = "Commq <noreply@commq.test>"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    built = make_engine(sqlite_url)
    yield built
    await built.dispose()


@pytest.fixture
async def sendgrid(fake_sendgrid: FakeSendGrid) -> AsyncIterator[SendGridSender]:
    sender = SendGridSender(
        fake_sendgrid.api_key, email_from=FROM, base_url=fake_sendgrid.base_url, timeout=2.0
    )
    yield sender
    await sender.close()


def _worker(engine: AsyncEngine, sendgrid: SendGridSender) -> Dispatcher:
    # The default policy: one provider fault (401/403) opens the circuit at once.
    breaker = CircuitBreaker(
        SqlProviderStore(engine), CircuitPolicy(), "worker-1", ["sendgrid"], refresh_every=0.0
    )
    return Dispatcher(
        store=SqlJobStore(engine),
        senders={Channel.EMAIL: [sendgrid]},
        wakeup=LocalWakeup(),
        clock=Clock(),
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
    async with engine.connect() as conn:
        actions = (await conn.execute(select(audit_events.c.action))).scalars().all()
    assert "circuit.open" not in actions
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
    async with engine.connect() as conn:
        actions = (await conn.execute(select(audit_events.c.action))).scalars().all()
    assert actions == ["circuit.open"]
