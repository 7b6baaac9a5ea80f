"""Delivery events and suppression lists, on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.sql_delivery_store import SqlDeliveryStore
from commq.adapters.store.sql_suppression_store import SqlSuppressionStore
from commq.adapters.store.tables import audit_events
from commq.domain.delivery import DeliveryEvent, EventEffect
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import Channel, DeliveryStatus, Job
from commq.domain.outcomes import SendResult
from commq.domain.suppression import Suppression, SuppressionReason

from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    claim_one,
    count_rows,
    enqueue,
    finish,
    reread,
    succeeded,
)


@pytest.fixture
def deliveries(store_engine: AsyncEngine) -> SqlDeliveryStore:
    return SqlDeliveryStore(store_engine)


@pytest.fixture
def suppressions(store_engine: AsyncEngine) -> SqlSuppressionStore:
    return SqlSuppressionStore(store_engine)


async def _sent(store: SqlJobStore, message_id: str, **fields: object) -> Job:
    """A job completed by sendgrid with ``message_id``."""
    await enqueue(store, **fields)
    job = await claim_one(store)
    completed, _ = succeeded()
    assert await finish(store, job, (completed, SendResult.ok("sendgrid", message_id)))
    return job


def _event(event_id: str, status: DeliveryStatus | None, **fields: object) -> DeliveryEvent:
    values: dict[str, object] = {"job_id": None, "provider_message_id": "msg-1"}
    values.update(fields)
    return DeliveryEvent("sendgrid", event_id, status=status, **values)  # type: ignore[arg-type]


async def test_an_event_finds_its_job_by_message_id_and_moves_it_forward_only(
    job_store: SqlJobStore, deliveries: SqlDeliveryStore
) -> None:
    job = await _sent(job_store, "msg-1")
    assert await deliveries.apply_delivery_event(_event("e1", DeliveryStatus.ACCEPTED)) == (
        EventEffect.APPLIED
    )
    delivered = _event("e2", DeliveryStatus.DELIVERED)
    assert await deliveries.apply_delivery_event(delivered) is EventEffect.APPLIED
    late = _event("e3", DeliveryStatus.ACCEPTED)
    assert await deliveries.apply_delivery_event(late) is EventEffect.STALE
    bounced = _event("e4", DeliveryStatus.BOUNCED)
    assert await deliveries.apply_delivery_event(bounced) is EventEffect.STALE
    assert (await reread(job_store, job.id)).delivery_status is DeliveryStatus.DELIVERED


async def test_a_repeated_event_is_applied_once(
    job_store: SqlJobStore, deliveries: SqlDeliveryStore
) -> None:
    await _sent(job_store, "msg-1")
    event = _event("e1", DeliveryStatus.DELIVERED)
    assert await deliveries.apply_delivery_event(event) is EventEffect.APPLIED
    assert await deliveries.apply_delivery_event(event) is EventEffect.DUPLICATE


async def test_an_event_finds_its_job_by_the_job_id_it_carried(
    job_store: SqlJobStore, deliveries: SqlDeliveryStore
) -> None:
    job = await _sent(job_store, "msg-9")
    event = _event("e1", DeliveryStatus.DROPPED, job_id=job.id, provider_message_id=None)
    assert await deliveries.apply_delivery_event(event) is EventEffect.APPLIED
    assert (await reread(job_store, job.id)).delivery_status is DeliveryStatus.DROPPED


async def test_an_event_of_an_unknown_message_changes_nothing(
    job_store: SqlJobStore, deliveries: SqlDeliveryStore
) -> None:
    job = await _sent(job_store, "msg-1")
    unknown = _event("e1", DeliveryStatus.DELIVERED, provider_message_id="msg-2")
    assert await deliveries.apply_delivery_event(unknown) is EventEffect.UNKNOWN_JOB
    other_provider = DeliveryEvent("twilio", "e2", None, "msg-1", DeliveryStatus.DELIVERED)
    assert await deliveries.apply_delivery_event(other_provider) is EventEffect.UNKNOWN_JOB
    assert (await reread(job_store, job.id)).delivery_status is None


async def test_a_bounce_suppresses_the_recipient_of_its_business(
    job_store: SqlJobStore, deliveries: SqlDeliveryStore, suppressions: SqlSuppressionStore
) -> None:
    job = await _sent(job_store, "msg-1", recipient="Ana@Example.com")
    bounce = _event("e1", DeliveryStatus.BOUNCED, suppress=SuppressionReason.HARD_BOUNCE)
    assert await deliveries.apply_delivery_event(bounce) is EventEffect.APPLIED
    later = [
        await enqueue(job_store, recipient="ana@example.com"),
        await enqueue(job_store, recipient="bob@example.com"),
        await enqueue(job_store, business_id=OTHER_BUSINESS, recipient="ana@example.com"),
    ]
    found = await suppressions.find_suppressions(later)
    assert list(found) == [later[0].id]
    entry = found[later[0].id]
    assert (entry.reason, entry.job_id, entry.recipient) == (
        SuppressionReason.HARD_BOUNCE,
        job.id,
        "ana@example.com",
    )
    assert entry.created_at is not None


async def test_suppressions_list_in_pages_per_business(suppressions: SqlSuppressionStore) -> None:
    for name in ("c", "a", "b"):
        entry = Suppression(BUSINESS, Channel.EMAIL, f"{name}@x.io", SuppressionReason.SPAM_REPORT)
        assert await suppressions.add_suppression(entry)
    stop = Suppression(OTHER_BUSINESS, Channel.SMS, "+15550001", SuppressionReason.STOP)
    assert await suppressions.add_suppression(stop)
    assert not await suppressions.add_suppression(stop)  # listed already
    first = await suppressions.list_suppressions(BUSINESS, 2, None)
    assert [s.recipient for s in first.items] == ["a@x.io", "b@x.io"]
    assert first.next_cursor is not None
    rest = await suppressions.list_suppressions(BUSINESS, 2, first.next_cursor)
    assert [s.recipient for s in rest.items] == ["c@x.io"] and rest.next_cursor is None
    everyone = await suppressions.list_suppressions(None, 10, None)
    assert len(everyone.items) == 4
    with pytest.raises(InvalidCursorError):
        await suppressions.list_suppressions(BUSINESS, 2, "not-a-cursor")


async def test_deleting_a_suppression_is_audited_and_scoped_to_the_business(
    suppressions: SqlSuppressionStore, store_engine: AsyncEngine
) -> None:
    for business in (BUSINESS, OTHER_BUSINESS):
        entry = Suppression(business, Channel.EMAIL, "ana@x.io", SuppressionReason.HARD_BOUNCE)
        await suppressions.add_suppression(entry)
    removed = await suppressions.delete_suppression(
        BUSINESS, "ANA@x.io", audit("suppression.delete")
    )
    assert removed == 1
    assert await suppressions.delete_suppression(BUSINESS, "ana@x.io", audit("x")) == 0
    assert await count_rows(store_engine, audit_events, action="suppression.delete") == 1
    left = await suppressions.list_suppressions(None, 10, None)
    assert [(s.business_id, s.recipient) for s in left.items] == [(OTHER_BUSINESS, "ana@x.io")]


async def test_a_recipient_is_found_on_every_channel_as_each_stores_it(
    suppressions: SqlSuppressionStore,
) -> None:
    for business, channel, recipient in (
        (BUSINESS, Channel.EMAIL, "ana@x.io"),
        (BUSINESS, Channel.SMS, "+15550001"),
        (OTHER_BUSINESS, Channel.EMAIL, "ana@x.io"),
    ):
        entry = Suppression(business, channel, recipient, SuppressionReason.HARD_BOUNCE)
        await suppressions.add_suppression(entry)
    [mine] = await suppressions.recipient_suppressions(BUSINESS, "ANA@x.io")
    assert (mine.business_id, mine.channel, mine.recipient) == (BUSINESS, Channel.EMAIL, "ana@x.io")
    everywhere = await suppressions.recipient_suppressions(None, " ana@x.io ")
    assert [s.business_id for s in everywhere] == sorted([BUSINESS, OTHER_BUSINESS])
    [number] = await suppressions.recipient_suppressions(BUSINESS, " +15550001")
    assert number.channel is Channel.SMS
    assert await suppressions.recipient_suppressions(BUSINESS, "+15550002") == []
