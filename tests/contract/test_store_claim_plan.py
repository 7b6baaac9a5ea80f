"""The hot statements' plans on PostgreSQL do not depend on the table's statistics.

A queue's statistics are always stale (a fresh table has none; the pending rows
change wholesale between two ANALYZEs). Planned from such guesses, a claim of
100 read every due job and sorted them all, each time, and the attempts'
counter trigger read the whole table for each batch of results. The plans are
read with auto_explain, which reports the statements that functions and
triggers run too.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore, make_engine
from commq.application.ports import WorkerResult
from commq.domain.jobs import Channel

from .support import new_job, report, succeeded

BACKLOG = 5_000


@pytest.fixture
async def explained(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, list[str]]]:
    """An engine whose every connection reports each statement's plan as a notice."""
    engine = make_engine(postgres_url)
    plans: list[str] = []

    @event.listens_for(engine.sync_engine, "connect")
    def _explain_everything(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_notice_handler(
            lambda notice: plans.append(notice.message_primary or "")
        )
        cursor = dbapi_connection.cursor()
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_level = notice",
        ):
            cursor.execute(setting)
        cursor.close()
        dbapi_connection.commit()  # the settings outlive this first transaction

    try:
        yield engine, plans
    finally:
        await engine.dispose()


def _plan_of(plans: list[str], statement: str) -> str:
    [plan] = [p for p in plans if statement in p]
    return plan


@pytest.mark.postgres
async def test_a_claim_walks_the_claim_index_however_stale_the_statistics(
    explained: tuple[AsyncEngine, list[str]],
) -> None:
    engine, plans = explained
    store = SqlJobStore(engine)
    priorities = [random.choice((0, 0, 0, 5)) for _ in range(BACKLOG)]
    for start in range(0, BACKLOG, 1000):
        await store.enqueue([new_job(priority=p) for p in priorities[start : start + 1000]])
    plans.clear()

    claimed = await store.claim("w", 100, timedelta(seconds=60), skip_channels={Channel.SMS})

    assert len(claimed) == 100
    assert [job.priority for job in claimed] == sorted(priorities, reverse=True)[:100]
    # Picking: the claim index in claim order, stopping at 100; nothing sorted.
    picking = _plan_of(plans, "FOR UPDATE SKIP LOCKED")
    assert "Index Scan using ix_jobs_claim" in picking
    assert "Sort" not in picking
    # Changing: the 100 picked rows by primary key, not every pending row.
    claiming = _plan_of(plans, "commq_due_ids(")
    assert "pk_jobs" in claiming
    assert "ix_jobs_business_due" not in claiming and "ix_jobs_due" not in claiming


@pytest.mark.postgres
async def test_recording_results_reads_each_attempts_job_by_key_however_large_the_table(
    explained: tuple[AsyncEngine, list[str]],
) -> None:
    engine, plans = explained
    store = SqlJobStore(engine)
    for _ in range(BACKLOG // 1000):
        await store.enqueue([new_job() for _ in range(1000)])
    claimed = await store.claim("w", 100, timedelta(seconds=60))
    decision, result = succeeded()
    plans.clear()

    recorded = await store.record_results(
        [WorkerResult(job, job.lease_token or "", decision, report(result)) for job in claimed]
    )

    assert recorded == [True] * 100
    # The channel of each new attempt, for its rollup: its job by primary key, not a
    # scan of every job (which the planner chose for a join to the transition table).
    rollup = _plan_of(plans, "INSERT INTO attempt_rollups")
    assert "Seq Scan on jobs" not in rollup
    assert "pk_jobs" in rollup
