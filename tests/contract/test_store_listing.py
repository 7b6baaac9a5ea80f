"""Filters, keyset orders and cursors of list_jobs, on every backend."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commq.adapters.store import SqlJobStore
from commq.adapters.store.paging import page_on_driver
from commq.domain.errors import InvalidCursorError
from commq.domain.jobs import Channel, ErrorType, Job, JobStatus
from commq.domain.listing import JobFilter, ListOrder, PageRequest
from commq.domain.transitions import Action

from .support import (
    BUSINESS,
    OTHER_BUSINESS,
    audit,
    claim_one,
    enqueue,
    failed,
    finish,
    now,
    retry_later,
)


@pytest.fixture
async def stored(job_store: SqlJobStore) -> list[Job]:
    """Thirteen jobs in two businesses, in every status but processing."""
    # Failures first, one at a time, so each claim takes the job just made.
    for i, error in enumerate(["Mailbox FULL", "550 unknown user", "100% bounced"]):
        await enqueue(job_store, recipient=f"fail{i}@example.com", communication_id="c-f")
        await finish(job_store, await claim_one(job_store), failed(error))
    await enqueue(job_store, recipient="Retry@Example.COM")
    await finish(job_store, await claim_one(job_store), retry_later("Timeout", timedelta(hours=1)))
    cancelled = await enqueue(job_store, channel=Channel.SMS, recipient="+15550001")
    await job_store.apply_action(cancelled.id, Action.CANCEL, audit("job.cancel"))
    for i in range(6):
        await enqueue(
            job_store,
            channel=Channel.WEBHOOK if i % 2 else Channel.EMAIL,
            recipient=f"r{i % 3}@example.com",
            communication_id="c-1" if i < 3 else None,
            run_at=now() + timedelta(minutes=10 - 3 * i),
        )
    await enqueue(job_store, business_id=OTHER_BUSINESS)
    await enqueue(job_store, business_id=OTHER_BUSINESS, recipient="r0@example.com")
    page = await job_store.list_jobs(JobFilter(), PageRequest(limit=500))
    assert len(page.items) == 13
    return page.items


async def _all_pages(store: SqlJobStore, where: JobFilter, order: ListOrder) -> list[Job]:
    items: list[Job] = []
    cursor = None
    for _ in range(50):
        page = await store.list_jobs(where, PageRequest(order=order, limit=2, cursor=cursor))
        assert len(page.items) <= 2
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items
        assert len(page.items) == 2
    raise AssertionError("paging never ended")


_SORTS: dict[ListOrder, tuple[Callable[[Job], bool], Callable[[Job], Any], bool]] = {
    ListOrder.NEWEST: (lambda j: True, lambda j: j.id, True),
    ListOrder.OLDEST: (lambda j: True, lambda j: j.id, False),
    ListOrder.DUE: (lambda j: j.status is JobStatus.PENDING, lambda j: (j.run_at, j.id), False),
    ListOrder.RECENTLY_FAILED: (
        lambda j: j.status is JobStatus.FAILED,
        lambda j: (j.failed_at, j.id),
        True,
    ),
}


async def test_every_order_pages_through_without_gaps_or_duplicates(
    job_store: SqlJobStore, stored: list[Job]
) -> None:
    for order, (keep, key, descending) in _SORTS.items():
        expected = sorted((j for j in stored if keep(j)), key=key, reverse=descending)
        assert len(expected) >= 3, order  # several pages of two
        got = await _all_pages(job_store, JobFilter(), order)
        assert [j.id for j in got] == [j.id for j in expected], order


_FILTERS: list[tuple[JobFilter, Callable[[Job], bool]]] = [
    (JobFilter(business_id=BUSINESS), lambda j: j.business_id == BUSINESS),
    (JobFilter(status=JobStatus.FAILED), lambda j: j.status is JobStatus.FAILED),
    (JobFilter(status=JobStatus.CANCELLED), lambda j: j.status is JobStatus.CANCELLED),
    (JobFilter(channel=Channel.WEBHOOK), lambda j: j.channel is Channel.WEBHOOK),
    (JobFilter(provider="smtp"), lambda j: j.provider == "smtp"),
    (JobFilter(error_type=ErrorType.PERMANENT), lambda j: j.error_type is ErrorType.PERMANENT),
    (JobFilter(error_type=ErrorType.TRANSIENT), lambda j: j.error_type is ErrorType.TRANSIENT),
    (JobFilter(communication_id="c-1"), lambda j: j.communication_id == "c-1"),
    (JobFilter(recipient="r0@example.com"), lambda j: j.recipient == "r0@example.com"),
    # An e-mail address matches in any case of its ASCII letters; other channels exactly
    # (the webhook job whose recipient is "r0@example.com" is not an e-mail).
    (
        JobFilter(recipient="R0@Example.com"),
        lambda j: j.channel is Channel.EMAIL and j.recipient == "r0@example.com",
    ),
    (JobFilter(recipient="retry@example.com"), lambda j: j.recipient == "Retry@Example.COM"),
    (JobFilter(recipient="+15550001"), lambda j: j.recipient == "+15550001"),
    (JobFilter(q="full"), lambda j: j.last_error == "Mailbox FULL"),
    (JobFilter(q="%"), lambda j: j.last_error == "100% bounced"),
    (JobFilter(q="_"), lambda j: False),
    (JobFilter(q="/"), lambda j: False),  # the escape character is text too
    (
        JobFilter(business_id=OTHER_BUSINESS, recipient="r0@example.com"),
        lambda j: j.business_id == OTHER_BUSINESS and j.recipient == "r0@example.com",
    ),
]


async def test_every_filter_selects_exactly_its_jobs(
    job_store: SqlJobStore, stored: list[Job]
) -> None:
    for where, keep in _FILTERS:
        got = await _all_pages(job_store, where, ListOrder.NEWEST)
        assert {j.id for j in got} == {j.id for j in stored if keep(j)}, where


async def test_created_from_is_inclusive_and_created_to_exclusive(
    job_store: SqlJobStore, stored: list[Job]
) -> None:
    times = sorted({j.created_at for j in stored})
    assert len(times) >= 3
    low, high = times[1], times[-1]
    where = JobFilter(created_from=low, created_to=high)
    got = await _all_pages(job_store, where, ListOrder.OLDEST)
    assert {j.id for j in got} == {j.id for j in stored if low <= j.created_at < high}


async def test_a_filter_and_an_order_combine(job_store: SqlJobStore, stored: list[Job]) -> None:
    where = JobFilter(business_id=BUSINESS, channel=Channel.EMAIL)
    got = await _all_pages(job_store, where, ListOrder.DUE)
    due_email = [
        j
        for j in stored
        if j.status is JobStatus.PENDING
        and j.channel is Channel.EMAIL
        and j.business_id == BUSINESS
    ]
    expected = sorted(due_email, key=lambda j: (j.run_at, j.id))
    assert [j.id for j in got] == [j.id for j in expected]


async def test_the_last_page_has_no_cursor(job_store: SqlJobStore, stored: list[Job]) -> None:
    page = await job_store.list_jobs(JobFilter(), PageRequest(limit=13))
    assert len(page.items) == 13
    assert page.next_cursor is None


def _forge(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


_FOREIGN_CURSORS = [
    "not a cursor",
    "!!!!",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    _forge([1, 2]),
    _forge({"o": "due", "k": ["x"]}),
    _forge({"o": "newest", "k": [1]}),
    _forge({"o": "newest", "k": "abc"}),
    _forge({"o": "newest"}),
]


async def test_a_cursor_this_store_did_not_issue_is_refused(job_store: SqlJobStore) -> None:
    for cursor in _FOREIGN_CURSORS:
        with pytest.raises(InvalidCursorError):
            await job_store.list_jobs(JobFilter(), PageRequest(cursor=cursor))


async def test_a_cursor_of_one_order_is_refused_by_another(
    job_store: SqlJobStore, stored: list[Job]
) -> None:
    page = await job_store.list_jobs(JobFilter(), PageRequest(ListOrder.NEWEST, limit=1))
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursorError):
        await job_store.list_jobs(JobFilter(), PageRequest(ListOrder.DUE, cursor=page.next_cursor))
    due = await job_store.list_jobs(JobFilter(), PageRequest(ListOrder.DUE, limit=1))
    naive = _forge({"o": "due", "k": ["2026-01-01T00:00:00", due.items[0].id]})
    with pytest.raises(InvalidCursorError):
        await job_store.list_jobs(JobFilter(), PageRequest(ListOrder.DUE, cursor=naive))


async def test_a_businesss_jobs_of_one_communication_are_found_through_its_index(
    store_engine: AsyncEngine,
) -> None:
    # The index holds only jobs that have a communication id (migration 0007); the
    # lookup's equality implies that, so both databases may still read it.
    where = JobFilter(business_id=BUSINESS, communication_id="c-1")
    dialect = "postgresql" if store_engine.dialect.name == "postgresql" else "sqlite"
    page, params = page_on_driver(dialect, where, ListOrder.NEWEST, None, 50)
    values = page.statement.bound(params)
    async with store_engine.connect() as conn:
        if dialect == "postgresql":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows only
            explain = f"EXPLAIN {page.statement.text}"
            plan = (await conn.exec_driver_sql(explain, values)).scalars().all()
        else:
            explain = f"EXPLAIN QUERY PLAN {page.statement.text}"
            plan = [row[-1] for row in await conn.exec_driver_sql(explain, tuple(values))]
    assert any("ix_jobs_business_communication" in line for line in plan), plan
