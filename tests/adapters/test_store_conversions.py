"""The store's hand-written conversions give what the plain ones gave.

The claim and the result write convert times and build Jobs on the hot path, with
shortcuts (no ``datetime.replace``, Jobs filled slot by slot): these pin that the
shortcuts change nothing a caller can see.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commq.adapters.store.rows import job_from_row, job_of, job_reader
from commq.adapters.store.tables import utc_from_text, utc_text
from commq.domain.jobs import Channel, Job, JobStatus

_AWARE = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
)


@given(_AWARE)
def test_utc_text_is_the_fixed_width_utc_text_sqlite_stores(moment: datetime) -> None:
    expected = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    assert utc_text(moment) == expected
    assert len(utc_text(moment)) == 26


@given(_AWARE)
def test_utc_text_reads_back_as_the_same_aware_utc_moment(moment: datetime) -> None:
    read = utc_from_text(utc_text(moment))

    assert read == moment
    assert read.tzinfo is UTC


def test_shorter_iso_text_reads_as_utc_too() -> None:
    for text in ("2026-01-02", "2026-01-02 03:04:05", "2026-01-02 03:04:05.123"):
        read = utc_from_text(text)
        assert read == datetime.fromisoformat(text).replace(tzinfo=UTC)
        assert read.tzinfo is UTC


def _row() -> dict[str, object]:
    at = "2026-11-28 10:00:00.000000"
    return {
        "id": "01a22490-9e45-7000-9ff7-564487fb8b6e",
        "business_id": "shop",
        "channel": "email",
        "recipient": "a@example.com",
        "payload": {"subject": "hi"},
        "status": "processing",
        "priority": 5,
        "attempts": 1,
        "max_attempts": 3,
        "run_at": at,
        "created_at": at,
        "updated_at": at,
        "communication_id": None,
        "last_error": None,
        "error_type": None,
        "provider": None,
        "provider_message_id": None,
        "delivery_status": None,
        "idempotency_key": "k1",
        "started_at": at,
        "completed_at": None,
        "failed_at": None,
        "cancelled_at": None,
        "lease_token": "token",
        "lease_expires_at": "2026-11-28 10:01:00.000000",
        "seq": 0,
        "worker_id": "w1",
    }


def test_the_claims_reader_builds_the_job_the_mapping_reader_builds() -> None:
    row = _row()
    names = tuple(row)
    times = ("run_at", "created_at", "updated_at", "started_at", "lease_expires_at")
    readers = {names.index(name): utc_from_text for name in times}
    mapped = {name: utc_from_text(v) if name in times else v for name, v in row.items()}

    job = job_reader(names, readers)(tuple(row.values()))

    assert job == job_from_row(mapped)
    assert job.channel is Channel.EMAIL and job.status is JobStatus.PROCESSING
    assert job.lease_expires_at == datetime(2026, 11, 28, 10, 1, tzinfo=UTC)
    # Every field is set, and the Job stays frozen.
    assert all(hasattr(job, field.name) for field in fields(Job))
    with pytest.raises(FrozenInstanceError):
        job.priority = 1  # type: ignore[misc]


def test_job_of_is_the_job_its_values_construct() -> None:
    job = job_reader(tuple(_row()), {})(tuple(_row().values()))
    values = [getattr(job, field.name) for field in fields(Job)]

    assert job_of(values) == Job(*values)
    with pytest.raises(ValueError):
        job_of(values[:-1])  # one value short: refused, not a Job with a field unset


def test_a_naive_time_is_refused_rather_than_taken_as_local_time() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        utc_text(datetime(2026, 11, 28, 10, 0))
