"""Small measurements behind docs/benchmarks.md's "What changed".

    python -m bench.micro claim-plan   # the claim's picking query, planner's plan vs pinned
    python -m bench.micro checkout     # one statement: pooled checkout vs standing connection
    python -m bench.micro claim-read   # SQLite: turning a claim's 100 rows into Jobs
    python -m bench.micro job-build    # one Job: its dataclass __init__ vs rows.job_of

``claim-plan`` fills a fresh database with 20,000 due jobs (never analyzed, as a
fresh or freshly refilled queue table is) and times the picking query of a claim
of 100 under EXPLAIN ANALYZE twice, in rolled-back transactions: as the planner
plans it from the missing statistics, and with sorting switched off as
``commq_due_ids()`` (migration 0005) runs it. ``checkout`` times ``SELECT 1``
through ``Transactions.read_one`` (the standing connection) and through a pooled
autocommit checkout, back to back and with 20 ms pauses between statements.
``claim-read`` claims 100 of 200 due jobs on SQLite with the worker's statement and
times ``DriverClaim.claimed`` (the rows read into Jobs, in claim order) over them.
``job-build`` times building one Job of 25 fields both ways (``timeit``, best of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
import timeit
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import fields
from datetime import timedelta

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import commq_scenarios as cq
from bench.databases import database
from commq.adapters.store import make_engine
from commq.adapters.store.claims import claim_on_driver
from commq.adapters.store.engine import Transactions
from commq.adapters.store.rows import job_of
from commq.domain.jobs import Job

_JOB_NAMES = [field.name for field in fields(Job)]

_PICK = (
    "SELECT id FROM jobs WHERE status = 'pending' AND run_at <= statement_timestamp()"
    " ORDER BY priority DESC, run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED"
)


def claim_plan() -> None:
    """Print the two plans' execution times and shapes."""
    with database("postgresql", "micro") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, 20_000))
        with psycopg.connect(url) as conn:
            for label, setting in (("planner's own", None), ("sort off", "enable_sort")):
                with conn.transaction(force_rollback=True):
                    if setting is not None:
                        conn.execute(f"SET LOCAL {setting} = off")
                    rows = conn.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + _PICK).fetchall()
                plan = [str(row[0]) for row in rows]
                shape = [line.strip() for line in plan if "Scan" in line or "Sort " in line]
                print(f"{label}: {plan[-1].strip()}")
                for line in shape:
                    print(f"    {line[:110]}")


async def _per_statement(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]], pause: float
) -> float:
    samples = []
    for i in range(220):
        started = time.perf_counter()
        async with connect() as conn:
            await conn.execute(text("SELECT 1"))
        if i >= 20:  # warmed up
            samples.append(time.perf_counter() - started)
        if pause:
            await asyncio.sleep(pause)
    return statistics.median(samples) * 1000


async def _checkout(url: str) -> None:
    engine = make_engine(url)
    try:
        standing = Transactions(engine).read_one
        pooled = engine.execution_options(isolation_level="AUTOCOMMIT").connect
        for pause in (0.0, 0.02):
            for label, connect in (("pooled checkout", pooled), ("standing connection", standing)):
                ms = await _per_statement(connect, pause)
                print(f"SELECT 1, {label:19}, pauses of {pause * 1000:2.0f} ms: {ms:.2f} ms p50")
    finally:
        await engine.dispose()


def checkout() -> None:
    """Print the median time of one statement each way."""
    with database("postgresql", "micro") as url:
        cq.prepare(url)
        asyncio.run(_checkout(url))


def claim_read() -> None:
    """Print the microseconds per job of reading a claim's rows into Jobs."""
    claim, params = claim_on_driver("sqlite", "micro", 100, timedelta(seconds=60), None, ())
    with database("sqlite", "micro") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, 200))
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            rows = conn.execute(claim.statement.text, claim.statement.bound(params)).fetchall()
    rounds = 300
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            claim.claimed(rows)
        per_job = (time.perf_counter() - started) / rounds / len(rows) * 1e6
        print(f"claim of {len(rows)}: {per_job:.2f} us a job to read")


def job_build() -> None:
    """Print the microseconds one Job takes through its __init__ and through job_of."""
    values: list[object] = list(_JOB_NAMES)  # any values do: neither way checks them
    for label, build in (
        ("Job(*values)", lambda: Job(*values)),
        ("job_of", lambda: job_of(values)),
    ):
        best = min(timeit.repeat(build, number=100_000, repeat=5)) / 100_000 * 1e6
        print(f"{label:12}: {best:.2f} us a Job")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    whats = {
        "claim-plan": claim_plan,
        "checkout": checkout,
        "claim-read": claim_read,
        "job-build": job_build,
    }
    parser.add_argument("what", choices=list(whats))
    whats[parser.parse_args().what]()


if __name__ == "__main__":
    main()
