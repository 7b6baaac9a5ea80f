"""Retention over the real SQLite store: batches, progress, and the periodic pass."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store.sql_operations_store import SqlOperationsStore
from commq.application.retention import Retention
from commq.entrypoints import maintenance
from commq.entrypoints.bootstrap import build
from commq.entrypoints.settings import Settings

_OLD_JOBS = (
    "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count})"
    " INSERT INTO jobs (id, business_id, channel, recipient, payload, status, priority,"
    " attempts, max_attempts, seq, run_at, created_at, updated_at, {column})"
    " SELECT '00000000-0000-7000-8000-' || substr('000000000000' || n, -12, 12),"
    " 'acme', 'sms', '+14155550100', '{{}}', '{status}', 0, 1, 3, 1, '{at}', '{at}', '{at}',"
    " '{at}' FROM g"
)


async def _add_old(engine: AsyncEngine, count: int, status: str = "completed") -> None:
    column = "completed_at" if status == "completed" else "failed_at"
    at = "2001-01-01 00:00:00.000000"
    async with engine.begin() as conn:
        await conn.execute(text(_OLD_JOBS.format(count=count, column=column, status=status, at=at)))


async def _left(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM jobs"))).scalar_one())


async def test_prune_works_in_batches_and_reports_progress(engine: AsyncEngine) -> None:
    await _add_old(engine, 25)
    seen: list[int] = []
    retention = Retention(SqlOperationsStore(engine), batch_size=10)
    assert await retention.prune(timedelta(days=30), seen.append) == 25
    assert seen == [10, 20, 25]
    assert await _left(engine) == 0


async def test_the_periodic_pass_prunes_until_cancelled(engine: AsyncEngine) -> None:
    await _add_old(engine, 5)
    retention = Retention(SqlOperationsStore(engine))
    task = asyncio.create_task(retention.run_periodically(timedelta(days=1), 0.01, 1))
    for _ in range(200):
        if await _left(engine) == 0:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _left(engine) == 0


async def test_serve_and_worker_processes_run_retention_unless_it_is_off(
    engine: AsyncEngine, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "INTERVAL", 0.01)
    await _add_old(engine, 3)
    for days, left in ((0, 3), (30, 0)):  # COMMQ_RETENTION_DAYS=0 turns pruning off
        settings = Settings(
            database_url=sqlite_url, outbox_dir=tmp_path / "outbox", retention_days=days
        )
        container = await build(settings)
        try:
            upkeep = maintenance.Maintenance(container)
            upkeep.start()
            await asyncio.sleep(0.3)
            await upkeep.stop()
        finally:
            await container.close()
        assert await _left(engine) == left
