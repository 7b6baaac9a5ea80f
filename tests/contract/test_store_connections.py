"""Pooled PostgreSQL connections that the server closed are never handed out."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import text

from commq.adapters.store import SqlJobStore, make_engine

from .support import enqueue


def _terminate_other_backends(url: str) -> int:
    """What a database restart does to a pool: the server ends every connection."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


async def test_connections_the_server_closed_are_replaced_without_an_error(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    try:
        store = SqlJobStore(engine)
        # Several pooled connections, all idle once these finish.
        await asyncio.gather(*(enqueue(store) for _ in range(5)))
        assert _terminate_other_backends(postgres_url) >= 1
        await asyncio.sleep(0.2)  # the server's goodbye reaches the idle sockets

        jobs = await asyncio.gather(*(enqueue(store) for _ in range(5)))
        found = [await store.find_job(job.id, None) for job in jobs]
        assert [job.id for job in found if job is not None] == [job.id for job in jobs]
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar() == 10
    finally:
        await engine.dispose()
