"""Failover, circuit breakers, provider pauses and suppressions in the worker loop (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import LocalWakeup, SqlJobStore
from commq.adapters.store.held_jobs import SqlHeldJobStore
from commq.adapters.store.sql_provider_store import SqlProviderStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.adapters.store.tables import audit_events
from commq.application.circuits import CircuitBreaker
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.application.failover import Guards
from commq.application.ports import Sender
from commq.application.ratelimits import SendSlots
from commq.domain.circuit import CircuitPolicy
from commq.domain.jobs import Channel, Job, JobStatus, NewJob
from commq.domain.outcomes import Blame, SendOutcome, SendResult
from commq.domain.ratelimit import RateLimit
from commq.domain.retry import RetryPolicy
from commq.domain.suppression import Suppression, SuppressionReason
from commq.entrypoints.bootstrap import SystemClock

DOWN = SendResult(SendOutcome.TRANSIENT, "", error="503 Service Unavailable", blame=Blame.PROVIDER)


class Provider:
    """A sender that answers with ``answer`` (OK when None) and records what it sent."""

    def __init__(self, name: str, answer: SendResult | None = None) -> None:
        self.name = name
        self.answer = answer
        self.sent: list[str] = []

    async def send(self, job: Job) -> SendResult:
        self.sent.append(job.id)
        if self.answer is None:
            return SendResult.ok(self.name, f"{self.name}-{job.id}")
        return SendResult(
            self.answer.outcome,
            self.name,
            error=self.answer.error,
            retry_after=self.answer.retry_after,
            blame=self.answer.blame,
            error_code=self.answer.error_code,
        )

    async def close(self) -> None:
        return None


def _worker(
    engine: AsyncEngine,
    *providers: Sender,
    channel: Channel = Channel.EMAIL,
    threshold: int = 3,
    cooldown: float = 30.0,
    limits: dict[str, RateLimit] | None = None,
) -> Dispatcher:
    provider_store = SqlProviderStore(engine)
    policy = CircuitPolicy(threshold, timedelta(seconds=cooldown), timedelta(seconds=5))
    names = [p.name for p in providers]
    guards = Guards(
        circuits=CircuitBreaker(provider_store, policy, "worker-1", names, refresh_every=0.0),
        slots=SendSlots(provider_store, limits or {}),
        held=SqlHeldJobStore(engine),
        suppressions=SqlSuppressionStore(engine),
    )
    return Dispatcher(
        store=SqlJobStore(engine),
        senders={channel: list(providers)},
        wakeup=LocalWakeup(),
        clock=SystemClock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(poll_interval=0.02, reclaim_interval=0.05, concurrency=1),
        worker_id="worker-1",
        guards=guards,
    )


async def _enqueue(
    engine: AsyncEngine, count: int = 1, channel: Channel = Channel.EMAIL, recipient: str = ""
) -> list[str]:
    to = recipient or ("ana@example.com" if channel is Channel.EMAIL else "+14155550100")
    payload = {"subject": "Hi", "text": "Hello"} if channel is Channel.EMAIL else {"body": "hi"}
    jobs = [NewJob("acme", channel, to, payload) for _ in range(count)]
    return [item.job.id for item in await SqlJobStore(engine).enqueue(jobs)]


async def _job(engine: AsyncEngine, job_id: str) -> Job:
    job = await SqlJobStore(engine).find_job(job_id, None)
    assert job is not None
    return job


async def _audit_actions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        query = select(audit_events.c.action).order_by(audit_events.c.id)
        return list((await conn.execute(query)).scalars())


async def test_a_provider_fault_fails_over_in_the_same_claim(engine: AsyncEngine) -> None:
    [job_id] = await _enqueue(engine)
    sendgrid, smtp = Provider("sendgrid", DOWN), Provider("smtp")
    await _worker(engine, sendgrid, smtp).run(until_idle=True)
    job = await _job(engine, job_id)
    assert job.status is JobStatus.COMPLETED and job.attempts == 1
    assert (job.provider, job.provider_message_id) == ("smtp", f"smtp-{job_id}")
    history = (await SqlJobStore(engine).history([job_id]))[job_id]
    assert [(a.seq, a.attempt, a.outcome.value, a.provider) for a in history] == [
        (1, 1, "transient_error", "sendgrid"),
        (2, 1, "succeeded", "smtp"),
    ]


async def test_after_the_threshold_an_open_circuit_is_passed_over(engine: AsyncEngine) -> None:
    ids = await _enqueue(engine, 8)
    sendgrid, smtp = Provider("sendgrid", DOWN), Provider("smtp")
    await _worker(engine, sendgrid, smtp, threshold=3).run(until_idle=True)
    assert len(sendgrid.sent) == 3
    assert sorted(smtp.sent) == sorted(ids)
    assert await _audit_actions(engine) == ["circuit.open"]
    for job_id in ids:
        job = await _job(engine, job_id)
        assert job.status is JobStatus.COMPLETED and job.attempts == 1


async def test_while_every_provider_is_down_jobs_wait_without_using_attempts(
    engine: AsyncEngine,
) -> None:
    ids = await _enqueue(engine, 5)
    sendgrid = Provider("sendgrid", DOWN)
    await _worker(engine, sendgrid, threshold=2).run(until_idle=True)
    assert len(sendgrid.sent) == 2  # then the circuit is open and nothing is claimed
    for job_id in ids:
        job = await _job(engine, job_id)
        assert job.status is JobStatus.PENDING and job.attempts == 0


async def test_after_the_cooldown_one_probe_closes_the_circuit(engine: AsyncEngine) -> None:
    ids = await _enqueue(engine, 4)
    sendgrid = Provider("sendgrid", DOWN)
    # A second's cool-down: long enough that a busy machine's stall in the first run
    # cannot let a probe through before it goes idle.
    await _worker(engine, sendgrid, threshold=1, cooldown=1.0).run(until_idle=True)
    assert len(sendgrid.sent) == 1
    sendgrid.answer = None  # the provider is back
    await asyncio.sleep(1.1)
    await _worker(engine, sendgrid, threshold=1, cooldown=1.0).run(until_idle=True)
    assert sorted(set(sendgrid.sent)) == sorted(ids)
    assert await _audit_actions(engine) == ["circuit.open", "circuit.half_open", "circuit.close"]
    for job_id in ids:
        job = await _job(engine, job_id)
        assert job.status is JobStatus.COMPLETED and job.attempts == 1


async def test_a_failed_probe_opens_the_circuit_again(engine: AsyncEngine) -> None:
    await _enqueue(engine, 3)
    sendgrid = Provider("sendgrid", DOWN)
    await _worker(engine, sendgrid, threshold=1, cooldown=1.0).run(until_idle=True)
    await asyncio.sleep(1.1)
    await _worker(engine, sendgrid, threshold=1, cooldown=1.0).run(until_idle=True)
    assert len(sendgrid.sent) == 2  # the first failure and one probe
    assert await _audit_actions(engine) == ["circuit.open", "circuit.half_open", "circuit.open"]


async def test_a_rate_limited_provider_makes_jobs_wait_without_failover(
    engine: AsyncEngine,
) -> None:
    [job_id] = await _enqueue(engine)
    limited = SendResult(
        SendOutcome.TRANSIENT, "", error="429", retry_after=timedelta(seconds=30),
        blame=Blame.RATE_LIMIT,
    )  # fmt: skip
    sendgrid, smtp = Provider("sendgrid", limited), Provider("smtp")
    await _worker(engine, sendgrid, smtp).run(until_idle=True)
    assert smtp.sent == []
    job = await _job(engine, job_id)
    assert job.status is JobStatus.PENDING and job.attempts == 0
    assert job.run_at - datetime.now(UTC) > timedelta(seconds=25)
    paused = await SqlProviderStore(engine).paused_providers()
    assert timedelta(seconds=25) < paused["sendgrid"] <= timedelta(seconds=30)


async def test_a_suppressed_recipient_fails_at_once_unsent(engine: AsyncEngine) -> None:
    entry = Suppression("acme", Channel.EMAIL, "ana@example.com", SuppressionReason.HARD_BOUNCE)
    await SqlSuppressionStore(engine).add_suppression(entry)
    [job_id] = await _enqueue(engine, recipient="ANA@example.com")
    [other_id] = await _enqueue(engine, recipient="bob@example.com")
    smtp = Provider("smtp")
    await _worker(engine, smtp).run(until_idle=True)
    assert smtp.sent == [other_id]
    job = await _job(engine, job_id)
    assert job.status is JobStatus.FAILED and job.error_type is not None
    assert job.error_type.value == "permanent" and job.attempts == 0
    assert job.last_error is not None
    assert job.last_error.startswith("recipient is suppressed: hard bounce on 20")


async def test_an_sms_stop_answer_suppresses_the_number(engine: AsyncEngine) -> None:
    [job_id] = await _enqueue(engine, channel=Channel.SMS)
    stop = SendResult(
        SendOutcome.PERMANENT,
        "",
        error="Twilio 400: 21610 Attempt to send to unsubscribed recipient",
        error_code="21610",
    )
    twilio = Provider("twilio", stop)
    await _worker(engine, twilio, channel=Channel.SMS).run(until_idle=True)
    [later] = await _enqueue(engine, channel=Channel.SMS)
    await _worker(engine, twilio, channel=Channel.SMS).run(until_idle=True)
    assert twilio.sent == [job_id]
    job = await _job(engine, later)
    assert job.status is JobStatus.FAILED
    assert job.last_error is not None and "STOP reply" in job.last_error


async def test_a_job_whose_send_slot_is_far_off_goes_back_unsent(engine: AsyncEngine) -> None:
    ids = await _enqueue(engine, 2)
    smtp = Provider("smtp")
    # One send a minute: the second job would wait ~60 s for its slot, so it is given back.
    once_a_minute = {"smtp": RateLimit(1, timedelta(minutes=1))}
    await _worker(engine, smtp, limits=once_a_minute).run(until_idle=True)
    assert len(smtp.sent) == 1
    [waiting] = [await _job(engine, i) for i in ids if i not in smtp.sent]
    assert waiting.status is JobStatus.PENDING and waiting.attempts == 0
    assert waiting.last_error == "waiting: smtp is rate-limited"
    assert waiting.run_at - datetime.now(UTC) > timedelta(seconds=45)
    assert (await SqlJobStore(engine).history([waiting.id]))[waiting.id] == []


async def test_a_suppressed_recipient_the_database_cannot_lowercase_fails_too(
    engine: AsyncEngine,
) -> None:
    # Non-ASCII: the claim's own lookup (ASCII lowercasing) cannot decide, the list is asked.
    entry = Suppression("acme", Channel.EMAIL, "zoë@example.com", SuppressionReason.SPAM_REPORT)
    await SqlSuppressionStore(engine).add_suppression(entry)
    [job_id] = await _enqueue(engine, recipient="ZOË@example.com")
    smtp = Provider("smtp")
    await _worker(engine, smtp).run(until_idle=True)
    assert smtp.sent == []
    job = await _job(engine, job_id)
    assert job.status is JobStatus.FAILED
    assert job.last_error is not None and "spam report" in job.last_error


async def test_recipients_the_claim_cleared_are_not_looked_up_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    find = SqlSuppressionStore.find_suppressions

    async def counted(self: SqlSuppressionStore, jobs: Sequence[Job]) -> dict[str, Suppression]:
        looked_up.extend(job.recipient for job in jobs)
        return await find(self, jobs)

    monkeypatch.setattr(SqlSuppressionStore, "find_suppressions", counted)
    entry = Suppression("acme", Channel.EMAIL, "ana@example.com", SuppressionReason.HARD_BOUNCE)
    await SqlSuppressionStore(engine).add_suppression(entry)
    listed = await _enqueue(engine, recipient="ana@example.com")
    cleared = await _enqueue(engine, 3, recipient="bob@example.com")
    smtp = Provider("smtp")
    await _worker(engine, smtp).run(until_idle=True)
    assert sorted(smtp.sent) == sorted(cleared)
    assert (await _job(engine, listed[0])).status is JobStatus.FAILED
    # Only the listed one needed the list's details (for its error message).
    assert looked_up == ["ana@example.com"]
