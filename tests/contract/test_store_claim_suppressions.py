"""A claim tells which recipients are on no suppression list, without a lookup of its own."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.domain.jobs import Channel
from commq.domain.suppression import Suppression, SuppressionReason

from .support import BUSINESS, LEASE, OTHER_BUSINESS, enqueue


async def test_the_claim_clears_only_recipients_it_can_compare_exactly(
    store_engine: AsyncEngine, job_store: SqlJobStore
) -> None:
    listing = SqlSuppressionStore(store_engine)
    for business, channel, recipient in (
        (BUSINESS, Channel.EMAIL, "ana@example.com"),
        (BUSINESS, Channel.EMAIL, "istanbul@example.com"),
        (BUSINESS, Channel.SMS, "+14155550100"),
    ):
        await listing.add_suppression(
            Suppression(business, channel, recipient, SuppressionReason.HARD_BOUNCE)
        )
    jobs = {
        "listed, other case": await enqueue(job_store, recipient="Ana@Example.COM"),
        "listed, capital I": await enqueue(job_store, recipient="ISTANBUL@example.com"),
        "listed number": await enqueue(job_store, channel=Channel.SMS, recipient="+14155550100"),
        "not listed": await enqueue(job_store, recipient="bob@example.com"),
        "number listed elsewhere": await enqueue(
            job_store, business_id=OTHER_BUSINESS, channel=Channel.SMS, recipient="+14155550100"
        ),
        "not ASCII": await enqueue(job_store, recipient="zoë@example.com"),
    }

    claimed = await job_store.claim_to_send("w", 10, LEASE)

    assert {job.id for job in claimed.jobs} == {job.id for job in jobs.values()}
    cleared = {name for name, job in jobs.items() if job.id in claimed.unsuppressed}
    # A non-ASCII recipient is left to the lookup by the key Python computes.
    assert cleared == {"not listed", "number listed elsewhere"}
