"""Count PostgreSQL round trips per operation: noise-free evidence for the hot paths.

    python -m bench.roundtrips

Hooks psycopg (commands such as BEGIN/COMMIT, queries, new connections) and prints,
per job, what ``QueueService.enqueue`` of one job and a default-settings dispatcher
draining 2,000 jobs send to the server. A round trip costs the same whatever the load,
so these counts compare with the raw limits' (one per single INSERT; 6 per 100 jobs in
the raw claim-and-complete loop) where timings on a busy machine cannot.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import psycopg
from psycopg import _connection_base, _cursor_base

from bench import commq_scenarios as cq
from bench.databases import database
from bench.workload import ADMIN, NoopSender, new_job, settings_for, use_sender
from commq.entrypoints.bootstrap import build

COUNTS: collections.Counter[str] = collections.Counter()


def _text(query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    return str(query) if isinstance(query, str) else type(query).__name__


def install_hooks() -> None:
    """Count every command, query and connect psycopg makes in this process."""
    command = _connection_base.BaseConnection._exec_command
    execute = _cursor_base.BaseCursor._execute_gen
    connect = psycopg.AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    def counted_command(self: Any, cmd: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["command " + _text(cmd)[:30]] += 1
        return command(self, cmd, *args, **kwargs)

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["query " + " ".join(_text(query).split())[:60]] += 1
        return execute(self, query, *args, **kwargs)

    async def counted_connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["(new connection)"] += 1
        return await connect(cls, *args, **kwargs)

    _connection_base.BaseConnection._exec_command = counted_command  # type: ignore[method-assign]
    _cursor_base.BaseCursor._execute_gen = counted_execute  # type: ignore[method-assign]
    psycopg.AsyncConnection.connect = classmethod(counted_connect)  # type: ignore[method-assign,assignment]


def show(title: str, per: int) -> None:
    """Print the counts divided by ``per`` operations."""
    print(f"--- {title} (per job, n={per})")
    for name, count in COUNTS.most_common():
        if count / per >= 0.005:
            print(f"   {count / per:6.2f}  {name}")
    trips = sum(v for k, v in COUNTS.items() if not k.startswith("("))
    print(f"   {trips / per:6.2f}  round trips in all")


async def enqueue(url: str, count: int) -> None:
    """One-job enqueues through the application layer."""
    container = await build(settings_for(url))
    try:
        for _ in range(20):
            await container.queue.enqueue(ADMIN, [new_job()])
        COUNTS.clear()
        for _ in range(count):
            await container.queue.enqueue(ADMIN, [new_job()])
        show("QueueService.enqueue, one job per call", count)
    finally:
        await container.close()


async def dispatch(url: str) -> None:
    """A default-settings dispatcher draining the backlog."""
    container = await build(settings_for(url))
    use_sender(container, NoopSender())
    try:
        COUNTS.clear()
        sent = await container.dispatcher().run(until_idle=True)
        show("dispatch at the default settings", sent)
    finally:
        await container.close()


def main() -> None:
    """Count both paths on throwaway databases."""
    install_hooks()
    with database("postgresql", "trips") as url:
        cq.prepare(url)
        asyncio.run(enqueue(url, 300))
    with database("postgresql", "trips") as url:
        cq.prepare(url)
        asyncio.run(cq.fill_backlog(url, 2000))
        asyncio.run(dispatch(url))


if __name__ == "__main__":
    main()
