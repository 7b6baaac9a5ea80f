"""COMMQ_RATE_LIMITS holds across workers: three workers, each with its own database
connections (as on three machines), share one provider's limit through PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import LocalWakeup, SqlJobStore, make_engine
from commq.application.dispatcher import Dispatcher, DispatchSettings
from commq.domain.jobs import Channel, Job, NewJob
from commq.domain.outcomes import SendResult
from commq.domain.ratelimit import parse_rate_limits
from commq.domain.retry import RetryPolicy
from commq.entrypoints.reliability import build_guards
from commq.entrypoints.settings import ReliabilitySettings, Settings

LIMIT = 20
JOBS = 100


class FastProvider:
    """Answers at once and records when each send arrived."""

    name = "fast"

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    async def send(self, job: Job) -> SendResult:
        self.sent.append((time.time(), job.id))
        return SendResult.ok(self.name)

    async def close(self) -> None:
        return None


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def peak(times: list[float], window: float = 1.0) -> int:
    """The most sends inside any window of ``window`` seconds (sliding, not only whole seconds)."""
    ordered = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
async def engines(postgres_url: str) -> AsyncIterator[list[AsyncEngine]]:
    built = [make_engine(postgres_url) for _ in range(3)]
    yield built
    for engine in built:
        await engine.dispose()


def _worker(engine: AsyncEngine, provider: FastProvider, name: str) -> Dispatcher:
    limits = ReliabilitySettings(rate_limits=parse_rate_limits(f"fast={LIMIT}/s"))
    settings = replace(Settings(), reliability=limits)
    return Dispatcher(
        store=SqlJobStore(engine),
        senders={Channel.SMS: [provider]},
        wakeup=LocalWakeup(),
        clock=Clock(),
        policy=RetryPolicy(timedelta(0), timedelta(0)),
        settings=DispatchSettings(concurrency=30, batch_size=10, poll_interval=0.05),
        worker_id=name,
        guards=build_guards(settings, engine, name, [provider.name]),
    )


@pytest.mark.postgres
async def test_three_workers_never_exceed_the_providers_limit(
    engines: list[AsyncEngine],
) -> None:
    jobs = [NewJob("acme", Channel.SMS, "+14155550100", {"body": "hi"}) for _ in range(JOBS)]
    ids = [item.job.id for item in await SqlJobStore(engines[0]).enqueue(jobs)]
    provider = FastProvider()
    workers = [_worker(engine, provider, f"w{i}") for i, engine in enumerate(engines)]
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(w.run(until_idle=True) for w in workers)), timeout=30)
    took = time.monotonic() - started
    times = [at for at, _ in provider.sent]
    assert sorted(job_id for _, job_id in provider.sent) == sorted(ids)
    # No window of one second, whole or sliding, above the limit by more than 10 %.
    per_second: dict[int, int] = {}
    for at in times:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    assert max(per_second.values()) <= LIMIT * 1.1
    assert peak(times) <= LIMIT * 1.1
    # ...and the limit is used, not merely respected: 100 sends at 20/s take about 5 s.
    assert took < JOBS / LIMIT + 3
