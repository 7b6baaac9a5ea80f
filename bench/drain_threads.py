"""Where a SQLite drain's time goes: the event loop's thread against aiosqlite's.

    python -m bench.drain_threads [--jobs 20000] [--drop-trigger NAME ...] [--rounds 1]

Fills a backlog on a throwaway SQLite database and drains it in this process with
the benchmark's worker (``bench.worker_proc``: the production wiring, a no-op
provider), then prints per job: the event loop thread's CPU (commq's Python), the
whole process's CPU, the wall time, and the CPU and wall time aiosqlite's threads
spent in each kind of statement. On SQLite the two threads take turns (each claim
waits for the results before it, each write for its claim), so the wall time is
about the sum of both: a faster drain needs less of either. ``--drop-trigger``
drops the named triggers (``commq_attempts_inserted``, ``commq_jobs_finished``,
``commq_jobs_counted``) before the drain, to price the counters' row triggers;
the counts and rollups are wrong afterwards, which a throwaway database allows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiosqlite.core

from bench import commq_scenarios as cq
from bench import worker_proc
from bench.databases import database

_cpu: collections.Counter[str] = collections.Counter()
_wall: collections.Counter[str] = collections.Counter()
_calls: collections.Counter[str] = collections.Counter()
_execute = aiosqlite.core.Connection._execute


def _kind(function: Callable[..., Any], args: tuple[Any, ...]) -> str:
    sql = next((a for a in args if isinstance(a, str)), "")
    return f"{getattr(function, '__name__', 'call')} {' '.join(sql.split()[:3])}"[:60]


async def _timed_execute(self: Any, function: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    kind = _kind(function, args)

    def timed(*a: Any, **k: Any) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return function(*a, **k)
        finally:
            _cpu[kind] += time.thread_time() - cpu
            _wall[kind] += time.perf_counter() - wall
            _calls[kind] += 1

    return await _execute(self, timed, *args, **kw)


async def _drain(url: str) -> tuple[int, float, float, float]:
    container = await worker_proc._container(url, worker_proc.NoopSender())
    try:
        dispatcher = container.dispatcher()
        for counter in (_cpu, _wall, _calls):
            counter.clear()
        loop_cpu, cpu, wall = time.thread_time(), time.process_time(), time.perf_counter()
        sent = await dispatcher.run(until_idle=True)
        return (
            sent,
            time.thread_time() - loop_cpu,
            time.process_time() - cpu,
            time.perf_counter() - wall,
        )
    finally:
        await container.close()


def _round(jobs: int, triggers: list[str]) -> None:
    with database("sqlite", "threads") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, jobs))
        if triggers:
            with sqlite3.connect(url.split("///", 1)[1]) as conn:
                for name in triggers:
                    conn.execute(f"DROP TRIGGER {name}")
        sent, loop_cpu, cpu, wall = asyncio.run(_drain(url))

    def us(seconds: float) -> str:
        return f"{seconds * 1e6 / sent:6.1f}"

    print(
        f"{sent:,} jobs, {sent / wall:,.0f} jobs/s; per job (us): event loop thread CPU"
        f" {us(loop_cpu)}, process CPU {us(cpu)}, wall {us(wall)}"
    )
    for kind, seconds in _cpu.most_common(6):
        print(f"  {us(seconds)} CPU {us(_wall[kind])} wall  {_calls[kind]:6,} calls  {kind}")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--drop-trigger", action="append", default=[], dest="triggers")
    args = parser.parse_args()
    aiosqlite.core.Connection._execute = _timed_execute  # type: ignore[method-assign]
    for _ in range(args.rounds):
        _round(args.jobs, args.triggers)


if __name__ == "__main__":
    main()
