"""The job gauges /metrics reads at every scrape: from the counters, every pair present."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.sql_metrics_store import SqlMetricsStore
from commq.domain.jobs import Channel, JobStatus

from .operations_support import insert_jobs
from .support import claim_one, enqueue, finish, sqlalchemy_calls, succeeded


async def test_job_gauges_count_every_status_and_channel_zeros_included(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await enqueue(job_store)
    await finish(job_store, await claim_one(job_store), succeeded())
    await enqueue(job_store, channel=Channel.SMS, recipient="+14155550100")
    await insert_jobs(store_engine, 3, status="failed", channel="webhook")
    rows, _ = await SqlMetricsStore(store_engine).job_gauges()
    counts = {(status, channel): n for status, channel, n in rows}
    # A status that empties must read 0, not drop out of the scrape (a stale series).
    assert set(counts) == {(s.value, c.value) for s in JobStatus for c in Channel}
    assert counts[("completed", "email")] == 1
    assert counts[("pending", "email")] == 0
    assert counts[("pending", "sms")] == 1
    assert counts[("failed", "webhook")] == 3
    assert sum(counts.values()) == 5


async def test_job_gauges_read_the_counters_not_a_scan_of_the_jobs(
    job_store: SqlJobStore, store_engine: AsyncEngine
) -> None:
    await enqueue(job_store)
    with sqlalchemy_calls(store_engine, ("before_cursor_execute",)) as calls:
        await SqlMetricsStore(store_engine).job_gauges()
    statements = [" ".join(str(call[2]).split()).lower() for call in calls]
    assert statements, "the gauges were read"
    grouped = [s for s in statements if "group by" in s]
    assert grouped and all("from job_counts" in s for s in grouped), statements
