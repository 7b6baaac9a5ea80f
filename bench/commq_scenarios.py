"""Scenarios a, b (application layer), c/d (dispatch), e (latency) and h (worker RSS) for commq."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.inspect_db import completions, db_now
from bench.results import Results
from bench.workload import (
    ADMIN,
    StampingSender,
    new_job,
    percentile,
    rate,
    settings_for,
    use_sender,
)
from commq.adapters.store import SqlJobStore, make_engine, migrate
from commq.domain.jobs import NewJob
from commq.entrypoints.bootstrap import build

WARMUP = 50

#: The n-th job a scenario enqueues (the default: the same small SMS every time).
JobMaker = Callable[[int], NewJob]


def same_sms(_: int) -> NewJob:
    """The full run's job, whatever its number."""
    return new_job()


async def enqueue_single(
    url: str, count: int, budget: float = 30.0, job: JobMaker = same_sms
) -> float:
    """Jobs/s enqueuing one job per QueueService.enqueue call, one caller.

    Stops after ``count`` jobs or ``budget`` seconds, whichever comes first.
    """
    container = await build(settings_for(url))
    try:
        for n in range(WARMUP):
            await container.queue.enqueue(ADMIN, [job(-n - 1)])
        started = time.perf_counter()
        done = 0
        while done < count and time.perf_counter() - started < budget:
            await container.queue.enqueue(ADMIN, [job(done)])
            done += 1
        return rate(done, time.perf_counter() - started)
    finally:
        await container.close()


async def enqueue_batch(
    url: str, batches: int, size: int = 1000, job: JobMaker = same_sms
) -> float:
    """Jobs/s enqueuing ``batches`` batches of ``size`` jobs, one caller."""
    container = await build(settings_for(url))
    try:
        await container.queue.enqueue(ADMIN, [job(-n - 1) for n in range(size)])
        started = time.perf_counter()
        for b in range(batches):
            await container.queue.enqueue(ADMIN, [job(b * size + n) for n in range(size)])
        return rate(batches * size, time.perf_counter() - started)
    finally:
        await container.close()


async def fill_backlog(url: str, count: int) -> None:
    """``count`` due jobs, stored through the store in batches of 1,000 (not timed)."""
    engine = make_engine(url)
    try:
        store = SqlJobStore(engine)
        for start in range(0, count, 1000):
            await store.enqueue([new_job() for _ in range(min(1000, count - start))])
    finally:
        await engine.dispose()


def dispatch(url: str, expected: int, cap: float) -> tuple[float, float, str | None]:
    """Drain the due jobs with a worker process that stops claiming after ``cap`` seconds.

    Returns (jobs/s from the first completion to the last, peak RSS MiB, a note if capped).
    """
    since = db_now(url)
    child = subprocess.run(
        [sys.executable, "-m", "bench.worker_proc", "drain", url, str(cap)],
        capture_output=True,
        text=True,
        timeout=cap + 120,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"worker failed: {child.stderr[-2000:]}")
    report = json.loads(child.stdout.strip().splitlines()[-1])
    done = completions(url, since)
    if done.attempts != done.count or done.count == 0:
        raise RuntimeError(f"every completion needs its attempt row: {done}")
    note = None
    if done.count < expected:
        note = f"stopped claiming after {cap:.0f} s with {done.count:,} of {expected:,} sent"
    return done.jobs_per_s(), report["rss_mb"], note


async def _trickle(url: str, count: int, per_second: float) -> None:
    container = await build(settings_for(url))
    try:
        await _trickle_into(container.queue, count, per_second)
    finally:
        await container.close()


#: Jobs trickled, at the same pace, before the measured ones and not measured (their
#: payload has no stamp). The first jobs of fresh processes pay once what a running
#: system paid long ago: the enqueuer's first connection, each statement's first plans
#: and psycopg preparing them on their fifth run. Without these, the first three of
#: 200 took 22-32 ms against a p50 of 6.5 (python-svc, 2026-11-28) and p99 measured them.
LATENCY_WARMUP = 20


async def _trickle_into(queue: Any, count: int, per_second: float) -> None:
    start = time.monotonic()
    for i in range(LATENCY_WARMUP + count):
        await asyncio.sleep(max(0.0, start + i / per_second - time.monotonic()))
        stamp = {} if i < LATENCY_WARMUP else {"t": time.time()}
        await queue.enqueue(ADMIN, [new_job({"body": "hi", **stamp})])


async def latency_separate_worker(url: str, count: int, per_second: float) -> list[float]:
    """Delays (ms) enqueue → send start, with the worker in its own process (scaled mode)."""
    timeout = count / per_second + 30
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.worker_proc",
        "latency",
        url,
        str(count),
        str(timeout),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)
    if line.strip() != b"ready":
        raise RuntimeError(f"latency worker did not start: {line!r}")
    await _trickle(url, count, per_second)
    out, _ = await asyncio.wait_for(child.communicate(), timeout + 15)
    delays: list[float] = json.loads(out.decode().strip().splitlines()[-1])["delays_ms"]
    return delays


async def latency_same_process(url: str, count: int, per_second: float) -> list[float]:
    """Delays (ms) enqueue → send start with the worker in the enqueuing process (embedded)."""
    container = await build(settings_for(url))
    sender = StampingSender()
    use_sender(container, sender)
    dispatcher = container.dispatcher()
    worker = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(1.0)
        await _trickle_into(container.queue, count, per_second)
        deadline = time.monotonic() + 10
        # Polling a counter, bounded: the sender has no event to wait on.
        while len(sender.delays_ms) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        dispatcher.stop()
        await worker
        await container.close()
    return sender.delays_ms


def record_latency(results: Results, backend: str, delays: list[float], count: int) -> None:
    """p50 and p99 of the delays; a note if some jobs were never sent."""
    if len(delays) < count:
        results.note(f"latency/{backend}: only {len(delays)} of {count} jobs were sent in time")
    results.add("latency", backend, "p50_ms", percentile(delays, 50))
    results.add("latency", backend, "p99_ms", percentile(delays, 99))


def prepare(url: str) -> None:
    """Bring a fresh database to commq's schema."""
    migrate(url)
