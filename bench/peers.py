"""pgqueuer and procrastinate on the same PostgreSQL, same N, a no-op task.

Runs in the peers' own venv (bench/.venv-peers, made by `make bench`), so it
imports neither commq nor anything of the product's venv:

    bench/.venv-peers/bin/python -m bench.peers PEER MODE DSN N CAP

PEER: pgqueuer | procrastinate; MODE: single | batch | dispatch. Prints one JSON
line: {"jobs_per_s": ..., "done": ...}. The DSN names an empty throwaway database;
CAP is the seconds after which a dispatching worker is told to stop (as commq's is).

Settings: pgqueuer with asyncpg (its documented driver), ``batch_size=100``,
``mode=drain``; procrastinate with its psycopg connector, ``concurrency=10``,
``wait=False``. Both keep their default durable tables. Dispatch rates come from
each library's own completion stamps in the database (pgqueuer_log.created,
procrastinate_events.at): completions after the first stamp over first→last,
the definition commq's figure uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

PAYLOAD = b'{"body":"hi"}'
BATCH = 1000


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


async def _timed(count: int, step: Callable[[], Awaitable[Any]], calls: int) -> float:
    await step()  # warm-up call: connection and statement caches
    started = time.perf_counter()
    for _ in range(calls):
        await step()
    return _rate(count, time.perf_counter() - started)


def _completions(dsn: str, query: str) -> tuple[float, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        count, first, last = row
        if first is None or last <= first:
            return 0.0, count
        at_first = conn.execute(
            query.replace("count(*), min(t), max(t)", "count(*)").replace(
                ") s", ") s WHERE t = %s"
            ),
            (first,),
        ).fetchone()
    assert at_first is not None
    return _rate(count - at_first[0], (last - first).total_seconds()), count


async def pgqueuer(mode: str, dsn: str, n: int, cap: float) -> tuple[float, int]:
    """jobs/s of pgqueuer for one mode."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.domain.types import QueueExecutionMode

    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        if mode == "single":
            return await _timed(n, lambda: queries.enqueue("noop", PAYLOAD), n), n
        batch = (["noop"] * BATCH, [PAYLOAD] * BATCH, [0] * BATCH)
        if mode == "batch":
            return await _timed(n, lambda: queries.enqueue(*batch), n // BATCH), n
        for _ in range(n // BATCH):
            await queries.enqueue(*batch)
        qm = QueueManager(queries)

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            return None

        asyncio.get_running_loop().call_later(cap, qm.shutdown.set)
        await qm.run(batch_size=100, mode=QueueExecutionMode.drain)
    finally:
        await conn.close()
    return _completions(
        dsn,
        "SELECT count(*), min(t), max(t) FROM "
        "(SELECT created AS t FROM pgqueuer_log WHERE status = 'successful') s",
    )


async def procrastinate(mode: str, dsn: str, n: int, cap: float) -> tuple[float, int]:
    """jobs/s of procrastinate for one mode."""
    from procrastinate import App, PsycopgConnector

    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    app = App(connector=PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop(body: str) -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        if mode == "single":
            return await _timed(n, lambda: noop.defer_async(body="hi"), n), n
        kwargs = [{"body": "hi"}] * BATCH
        if mode == "batch":
            return await _timed(n, lambda: noop.batch_defer_async(*kwargs), n // BATCH), n
        for _ in range(n // BATCH):
            await noop.batch_defer_async(*kwargs)
        worker = app.run_worker_async(concurrency=10, wait=False, install_signal_handlers=False)
        # On the cap the worker is cancelled: procrastinate finishes its running jobs first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker, cap)
    return _completions(
        dsn,
        "SELECT count(*), min(t), max(t) FROM "
        "(SELECT at AS t FROM procrastinate_events WHERE type = 'succeeded') s",
    )


def main(argv: list[str]) -> None:
    """Entry point: PEER MODE DSN N CAP."""
    peer, mode, dsn, n, cap = argv
    logging.basicConfig(level=logging.WARNING)
    run = {"pgqueuer": pgqueuer, "procrastinate": procrastinate}[peer]
    jobs_per_s, done = asyncio.run(run(mode, dsn, int(n), float(cap)))
    print(json.dumps({"jobs_per_s": jobs_per_s, "done": done}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
