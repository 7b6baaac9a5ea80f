"""Where a one-job enqueue's time goes: the statement, the trip to it, and the Python.

    python -m bench.insert_costs sqlite
    python -m bench.insert_costs postgresql

SQLite: commq's one-job INSERT in a plain sqlite3 loop on a migrated database with
``synchronous=FULL`` (commq's) and ``NORMAL`` (no fsync per commit), the same statement
through aiosqlite (a trip to its thread and back), and ``SELECT 1`` both ways.
PostgreSQL: the statement in a psycopg loop (prepared, autocommit), again with the
jobs' insert trigger disabled, and the benchmark's raw one-row INSERT. Both: a whole
``QueueService.enqueue`` of one job, and of 1,000, with the statement and without it
(the store's statement answered at once: what is left is commq's Python).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import psycopg

from bench import raw
from bench.databases import database
from bench.workload import ADMIN, new_job, settings_for
from commq.adapters.store import job_inserts, migrate
from commq.adapters.store.inline_sqlite import InlineWriter
from commq.domain.jobs import new_job_id
from commq.entrypoints.bootstrap import build

_ROUNDS = 3000


def _values() -> list[Any]:
    return [new_job_id(), "biz-1", None, "sms", "+14155550100", '{"body":"hi"}', 0, 3, None, None]


def _us(seconds: float, count: int = _ROUNDS) -> str:
    return f"{seconds / count * 1e6:5.0f} us"


def _sqlite_loop(path: str, synchronous: str, statement: str, values: Callable[[], Any]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for _ in range(_ROUNDS):
            conn.execute(statement, values()).fetchall()
        return time.perf_counter() - started
    finally:
        conn.close()


async def _aiosqlite_loop(path: str, statement: str, values: Callable[[], Any]) -> float:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            await conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for _ in range(_ROUNDS):
            await conn.execute_fetchall(statement, values())
        return time.perf_counter() - started


def _migrated_sqlite(folder: str, name: str) -> str:
    path = f"{folder}/{name}.db"
    migrate(f"sqlite:///{path}")
    return path


def sqlite_statement() -> None:
    """Print the one-job INSERT's parts on SQLite."""
    insert = job_inserts._sqlite_insert(1)
    with tempfile.TemporaryDirectory() as folder:
        full = _sqlite_loop(_migrated_sqlite(folder, "full"), "FULL", insert, _values)
        normal = _sqlite_loop(_migrated_sqlite(folder, "normal"), "NORMAL", insert, _values)
        threaded = asyncio.run(_aiosqlite_loop(_migrated_sqlite(folder, "aio"), insert, _values))
        select_sync = _sqlite_loop(f"{folder}/one.db", "FULL", "SELECT 1", tuple)
        select_thread = asyncio.run(_aiosqlite_loop(f"{folder}/one.db", "SELECT 1", tuple))
    print(f"  INSERT, sqlite3, synchronous=FULL    {_us(full)}")
    print(f"  INSERT, sqlite3, synchronous=NORMAL  {_us(normal)}  (FULL - NORMAL: the fsync)")
    print(f"  INSERT, aiosqlite, FULL              {_us(threaded)}")
    print(f"  SELECT 1, sqlite3 / aiosqlite        {_us(select_sync)} / {_us(select_thread)}")


def _psycopg_loop(url: str, statement: str, values: Callable[[], Any]) -> float:
    with psycopg.connect(url, autocommit=True, options="-c TimeZone=UTC") as conn:
        for _ in range(100):
            conn.execute(statement, values(), prepare=True)
        started = time.perf_counter()
        for _ in range(_ROUNDS):
            conn.execute(statement, values(), prepare=True)
        return time.perf_counter() - started


def postgresql_statement() -> None:
    """Print the one-job INSERT's parts on PostgreSQL."""
    with database("postgresql", "insert") as url:
        migrate(url)
        statement = _psycopg_loop(url, job_inserts._PG_INSERT_ONE, _values)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE jobs DISABLE TRIGGER commq_jobs_inserted")
        untriggered = _psycopg_loop(url, job_inserts._PG_INSERT_ONE, _values)
    with database("postgresql", "raw") as url:
        raw._fresh(url)
        bare = _psycopg_loop(url, raw.INSERT, lambda: (raw.PAYLOAD,))
    print(f"  commq's INSERT, psycopg, prepared    {_us(statement)}")
    print(f"  the same, insert trigger disabled    {_us(untriggered)}")
    print(f"  the raw one-row INSERT               {_us(bare)}")


@contextmanager
def _answered_at_once(backend: str) -> Iterator[None]:
    """The store's INSERT answers at once, as the database would (times as it reads them).

    On SQLite a lone job's INSERT runs on the event loop's thread (``InlineWriter.rows``),
    a batch's through aiosqlite (``_insert_sqlite``): both answer at once.
    """
    name = "_insert_sqlite" if backend == "sqlite" else "_insert_postgresql"
    real, real_inline = getattr(job_inserts, name), InlineWriter.rows
    now: Any = datetime.now(UTC)
    if backend == "sqlite":
        now = now.replace(tzinfo=None).isoformat(" ", "microseconds")

    async def answer(_conn: Any, rows: list[tuple[Any, ...]], *_lock: Any) -> list[Any]:
        return [(row[0], now, now, now) for row in rows]

    def answer_inline(_writer: Any, _statement: str, row: tuple[Any, ...]) -> list[Any]:
        return [(row[0], now, now, now)]

    setattr(job_inserts, name, answer)
    InlineWriter.rows = answer_inline  # type: ignore[method-assign]
    try:
        yield
    finally:
        setattr(job_inserts, name, real)
        InlineWriter.rows = real_inline  # type: ignore[method-assign]


async def _enqueues(url: str, backend: str) -> None:
    container = await build(settings_for(url))
    try:
        queue = container.queue
        for size, calls in ((1, _ROUNDS), (1000, 20)):

            async def run(size: int = size, calls: int = calls) -> float:
                batches = [[new_job() for _ in range(size)] for _ in range(calls)]
                started = time.perf_counter()
                for jobs in batches:
                    await queue.enqueue(ADMIN, jobs)
                return time.perf_counter() - started

            await run(size, 5)  # warm-up
            whole = await run()
            with _answered_at_once(backend):
                python = await run()
            label = "one job " if size == 1 else "1,000 jobs"
            print(
                f"  QueueService.enqueue, {label}  {_us(whole, calls)} a call, {_us(python, calls)}"
                " of it commq's Python"
            )
    finally:
        await container.close()


def enqueues(backend: str) -> None:
    """Print whole enqueues and their Python part."""
    with database(backend, "enqueue") as url:
        migrate(url)
        asyncio.run(_enqueues(url, backend))


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"{args.backend}: {_ROUNDS:,} statements per loop")
    (sqlite_statement if args.backend == "sqlite" else postgresql_statement)()
    enqueues(args.backend)


if __name__ == "__main__":
    main()
